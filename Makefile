# `make run` serves City with embedded defaults; `make test` runs the whole test suite; `make lint` runs ruff and mypy.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run serve-prod test coverage lint browser redis-server migrate superuser bench clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

migrate: $(VENV)/.installed
	mkdir -p var
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py collectstatic --noinput -v 0

run: migrate
	$(PY) manage.py serve

# Production on one machine: uvicorn (uvloop, httptools, no access log), one process per core, on
# CITY_HOST:CITY_PORT, through city/serve_prod.py rather than uvicorn's command, so that its processes exit
# normally on SIGTERM and flush their last usage records (atexit).
# Several processes share limits and budgets only through REDIS_URL (and PostgreSQL: DATABASE_URL).
# bench/README.md has the measurement behind this choice; `make run` (Daphne) stays the embedded default.
# Prometheus' multiprocess mode (city/metrics.py): every worker writes its metrics to files in
# PROMETHEUS_MULTIPROC_DIR and GET /metrics sums them; emptied here, before the workers start, so that
# no earlier run's counts are summed in.
WORKERS ?= $(shell nproc)
PROMETHEUS_MULTIPROC_DIR ?= $(CURDIR)/var/prometheus
serve-prod: migrate
	mkdir -p $(PROMETHEUS_MULTIPROC_DIR) && rm -f $(PROMETHEUS_MULTIPROC_DIR)/*.db
	PROMETHEUS_MULTIPROC_DIR=$(PROMETHEUS_MULTIPROC_DIR) $(PY) -m city.serve_prod --host $${CITY_HOST:-127.0.0.1} --port $${CITY_PORT:-43127} \
		--workers $(WORKERS)

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser of its own).
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

# Debian's redis-server: the Redis-down test starts and stops one of its own.
redis-server:
	command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server)

# The Node clients the tests drive (the Vercel AI SDK, Claude Code, Codex CLI), exactly as package-lock.json
# pins them, with the machine's Node.js and npm; again only when package.json or the lock changes.
NODE_STAMP := node_modules/.city-npm-ci
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The suite, in TEST_WORKERS pytest-xdist processes side by side (0: in this one). Each takes whole
# test classes (--dist loadscope: a class's City processes start once) and has its own test database
# and Redis database (conftest.py). Most of a live test is waiting on other processes: two workers
# keep two cores busy. The dev requirements too: the OpenAI Agents SDK is a test client.
TEST_WORKERS ?= 2
test: $(VENV)/.installed-dev $(NODE_STAMP) browser redis-server
	mkdir -p var
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

# The suite measured: the coverage of the application code ([tool.coverage.run] in pyproject.toml),
# in the test process and in every City process the live tests start; the files not fully covered
# and the TOTAL. Tracing every line of every process makes the suite about a third slower.
coverage: $(VENV)/.installed-dev $(NODE_STAMP) browser redis-server
	mkdir -p var
	$(PY) -m pytest --cov --cov-report=term:skip-covered $(PYTEST_ARGS)

# The dev tools (ruff, mypy with django-stubs), pinned in requirements-dev.txt.
$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# mypy loads the settings (django-stubs' plugin), which refuse to start without these keys: fake ones,
# as in pytest.ini, unless the environment has its own.
LINT_ENV := ADMIN_SECRET_KEY=$${ADMIN_SECRET_KEY:-test-admin-key-not-secret-0123456789} \
	CITY_SECRET_KEY=$${CITY_SECRET_KEY:-test-city-key-not-secret-0123456789}

# mypy checks the packages that pyproject.toml's [tool.mypy] lists.
lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(LINT_ENV) $(VENV)/bin/mypy

# The data-plane benchmark (bench/README.md): City against Portkey's gateway and LiteLLM, about 15 minutes
# (the first run installs both); BENCH_ARGS="--quick --no-litellm" for a 3-minute smoke run.
bench: $(VENV)/.installed
	mkdir -p var
	$(PY) bench/run.py $(BENCH_ARGS)

# Asks for the user name, email and password; with DJANGO_SUPERUSER_USERNAME, DJANGO_SUPERUSER_EMAIL and
# DJANGO_SUPERUSER_PASSWORD set, it asks nothing (Django's --noinput reads them).
superuser: migrate
	$(PY) manage.py createsuperuser $${DJANGO_SUPERUSER_PASSWORD:+--noinput}

clean:
	rm -rf $(VENV) var
