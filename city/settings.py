"""City settings: every value comes from the environment (or the git-ignored `.env`)."""

import os
from pathlib import Path
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

from city.bootstrap import ensure_local_secrets
from city.envconfig import CityEnv

BASE_DIR = Path(__file__).resolve().parent.parent
ENV_FILE = BASE_DIR / ".env"

env = CityEnv()  # FOO_FILE=/run/secrets/foo works for every key; errors name the key
if ENV_FILE.exists():
    env.read_env(str(ENV_FILE), overwrite=False)  # the process environment wins over .env

# Missing secrets are generated once into .env and the admin key is printed once (embedded mode).
ensure_local_secrets(env, ENV_FILE)

# Characters a secret key needs at least: a guessable admin key would open everything.
SECRET_KEY_MIN_LENGTH = 32
# The admin identity's bearer credential. Compared in constant time; never logged.
ADMIN_SECRET_KEY = env.secret("ADMIN_SECRET_KEY", min_length=SECRET_KEY_MIN_LENGTH)
# Server key that never enters the database: token digests (HMAC) and env encryption derive from it.
CITY_SECRET_KEY = env.secret("CITY_SECRET_KEY", min_length=SECRET_KEY_MIN_LENGTH)
# Older CITY_SECRET_KEY values, comma-separated, still accepted for decryption after a rotation.
CITY_SECRET_KEY_FALLBACKS = env.list("CITY_SECRET_KEY_FALLBACKS", default=[])

# Whether this process keeps Prometheus metrics (GET /metrics, city/metrics.py); off: every metric is a no-op.
CITY_METRICS = env.bool("CITY_METRICS", default=True)
# The bearer key a Prometheus scraper sends to GET /metrics (the admin key works too); empty: only the admin key.
CITY_METRICS_KEY = env.optional_secret("CITY_METRICS_KEY", min_length=SECRET_KEY_MIN_LENGTH)
# One OpenTelemetry span per AI call, sent over OTLP/HTTP (aihub/tracing.py), when either of the SDK's
# standard endpoint keys is set; the exporter reads them (and OTEL_EXPORTER_OTLP_HEADERS) itself.
CITY_OTLP_TRACES = bool(env.str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", default="") or env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default=""))

DEBUG = env.bool("CITY_DEBUG", default=False)
# Address Daphne binds to with `make run`.
CITY_HOST = env.str("CITY_HOST", default="127.0.0.1")
CITY_PORT = env.int("CITY_PORT", default=43127)
# The URL users reach City at; OAuth callbacks are built from it.
CITY_PUBLIC_URL = env.str("CITY_PUBLIC_URL", default=f"http://{CITY_HOST}:{CITY_PORT}").rstrip("/")
ALLOWED_HOSTS = env.list("CITY_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CITY_CSRF_TRUSTED_ORIGINS", default=[])

# Largest request body accepted on /v1/, in bytes; larger ones get 413 before they are read.
CITY_MAX_BODY_BYTES = env.int("CITY_MAX_BODY_BYTES", default=1_048_576)
# Largest body of the routes that take uploads (audio to transcribe, images to edit), multipart or JSON
# with base64: OpenAI's own file limits are 25 MB (audio) and 50 MB (images), plus the encoding.
CITY_MAX_UPLOAD_BYTES = env.int("CITY_MAX_UPLOAD_BYTES", default=64 * 1_048_576)
# Threads per process that run the sync parts of /v1/ requests (ORM calls); reused across requests.
CITY_SYNC_THREADS = env.int("CITY_SYNC_THREADS", default=8)
# Seconds a process trusts a resolved token: the bound on revocation, pause and removal when a broadcast is lost.
CITY_TOKEN_CACHE_SECONDS = env.float("CITY_TOKEN_CACHE_SECONDS", default=2.0)
# Seconds a process trusts its snapshot of the runtime env stored in the database (when a broadcast is lost).
CITY_ENV_CACHE_SECONDS = env.float("CITY_ENV_CACHE_SECONDS", default=2.0)
# Seconds between two writes of a token's last-used time.
CITY_TOKEN_LAST_USED_RESOLUTION_SECONDS = env.int("CITY_TOKEN_LAST_USED_RESOLUTION_SECONDS", default=60)

# Seconds to wait for an upstream to accept a connection.
UPSTREAM_CONNECT_TIMEOUT_SECONDS = env.float("UPSTREAM_CONNECT_TIMEOUT_SECONDS", default=5.0)
# Seconds to wait between two chunks of an upstream response.
UPSTREAM_READ_TIMEOUT_SECONDS = env.float("UPSTREAM_READ_TIMEOUT_SECONDS", default=120.0)

SECRET_KEY = CITY_SECRET_KEY  # Django's signing key (sessions, CSRF); a derived key is not needed here

# The ASGI server this process runs under: `python -m city.serve_prod` sets "uvicorn" for its
# processes. Daphne's app (its `runserver`, for `manage.py serve` and `make run`) installs Twisted's
# reactor as it loads: about 290 modules and 19 MB per process that a uvicorn worker never uses.
CITY_ASGI_SERVER = env.str("CITY_ASGI_SERVER", default="daphne")

INSTALLED_APPS = [
    *(["daphne"] if CITY_ASGI_SERVER != "uvicorn" else []),
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "drf_spectacular_sidecar",  # Swagger UI's files, served as City's static files (the API reference page)
    "city",
    "studios",
    "aihub",
    "accounts",
]

# Modules declaring the /v1 services (each a `SERVICE` or `SERVICES` of city.registry.Service), in
# the order GET /v1/services and the OpenAPI document list them. City discovers none by itself.
CITY_SERVICES = ["city.services", "studios.services", "aihub.services", "accounts.services"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "city.storable.RefuseNulMiddleware",  # before CSRF, which reads the posted form
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "city.errors.DatabaseBusyMiddleware",
]

ROOT_URLCONF = "city.urls"
APPEND_SLASH = False  # /v1/ routes are exact; a redirect would drop a POST body

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "city.asgi.application"

# The links of the page at `/` (and the admin's "View site"): (title, href, one line of text).
CITY_HOME_LINKS = [
    ("Admin", "/admin/", "Studios, tokens, provider keys and the audit log, for City's administrators."),
    ("Your API keys", "/dashboard/keys", "Sign in to your studio's account to create and revoke your own keys."),
    ("API reference", "/v1/reference", "Every route with its input and answers, and a console to try them (OpenAPI: /v1/openapi.json)."),
    ("API services", "/v1/services", "Every service and its routes as JSON; the README documents each route."),
]
WSGI_APPLICATION = None

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'city.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # Seconds a SQLite writer waits for another's lock before City answers 503 database_busy.
            "timeout": env.float("DATABASE_BUSY_TIMEOUT_SECONDS", default=20.0),
            # Writers take the lock at BEGIN, one at a time: no deadlock, no lost update.
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        }
    )
    # A file, not memory, so that Daphne processes started by the tests share the test database;
    # one per test run, so that runs side by side do not collide.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-{os.getpid()}.sqlite3")}
else:
    # Seconds a database connection is kept for reuse by the next request.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE_SECONDS", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

REDIS_URL = env.str("REDIS_URL", default="")
# Seconds to wait for Redis to accept a connection, and for each answer, before a cache call fails
# (callers then answer 503 cache_unavailable or fall back; see city/sharedcache.py), never hanging.
REDIS_TIMEOUT_SECONDS = env.float("REDIS_TIMEOUT_SECONDS", default=1.0)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": REDIS_TIMEOUT_SECONDS, "socket_timeout": REDIS_TIMEOUT_SECONDS},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# The Redis that carries invalidations between processes (city/invalidation.py); empty: this process only.
CITY_CHANNEL_LAYER_URL = env.str("CITY_CHANNEL_LAYER_URL", default=REDIS_URL)
if CITY_CHANNEL_LAYER_URL:
    # Pub/sub reaches every process listening on the server, whatever its database number: the prefix
    # keeps City installations that share a Redis server on different databases apart.
    _channel_db = urlparse(CITY_CHANNEL_LAYER_URL).path.strip("/") or "0"
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [CITY_CHANNEL_LAYER_URL], "prefix": f"city-db{_channel_db}"},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"

# Browser-facing safety: cookies are HTTP-only, and HTTPS-only whenever City is reached over HTTPS.
SESSION_COOKIE_HTTPONLY = True
CITY_SECURE_COOKIES = env.bool("CITY_SECURE_COOKIES", default=CITY_PUBLIC_URL.startswith("https://"))
SESSION_COOKIE_SECURE = CITY_SECURE_COOKIES
CSRF_COOKIE_SECURE = CITY_SECURE_COOKIES
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Django's own body limit: the larger of City's two, which city/bodylimit.py and the dispatcher apply
# per route (a multipart form's files do not count against it, its other fields do).
DATA_UPLOAD_MAX_MEMORY_SIZE = max(CITY_MAX_BODY_BYTES, CITY_MAX_UPLOAD_BYTES)

# Media results City keeps (finished videos, images made for a client that left) go through Django's
# storage API: a local folder by default, any django-storages backend by its dotted path and options
# (e.g. CITY_MEDIA_STORAGE=storages.backends.s3.S3Storage, CITY_MEDIA_STORAGE_OPTIONS={"bucket_name": "…"}).
MEDIA_ROOT = env.path("CITY_MEDIA_ROOT", default=BASE_DIR / "var" / "media")
STORAGES = {
    "default": {
        "BACKEND": env.str("CITY_MEDIA_STORAGE", default="django.core.files.storage.FileSystemStorage"),
        "OPTIONS": env.json("CITY_MEDIA_STORAGE_OPTIONS", default={}),
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Hours a kept media result stays retrievable before it is deleted.
CITY_MEDIA_RETENTION_HOURS = env.int("CITY_MEDIA_RETENTION_HOURS", default=72)
# Days a stored response of the Responses API (`store`, on by default) stays retrievable and usable as
# a `previous_response_id`, counted from its creation (OpenAI keeps them 30 days too);
# `manage.py purge_responses` deletes it after.
CITY_RESPONSES_RETENTION_DAYS = env.int("CITY_RESPONSES_RETENTION_DAYS", default=30)
if CITY_RESPONSES_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("CITY_RESPONSES_RETENTION_DAYS must be a whole number of days, 1 or more.")

# Dotted path of the function that turns a user bearer token into an identity.
CITY_USER_TOKEN_RESOLVER = "studios.credentials.resolve_user_token"
# Dotted path of the check studios run before issuing a token to an account (accounts depend on
# studios, never the reverse).
STUDIOS_TOKEN_ACCOUNT_CHECK = "accounts.operations.lock_account_for_new_token"
# Dotted path of month_cost(kind, scope_id, month) -> 1e-12 USD, the spend the studios admin shows
# (studios read usage only through it).
STUDIOS_MONTH_SPEND = "aihub.spend.month_cost"
# Dotted path of month_activity(kind, scope_id, month) -> (calls, last call's datetime or None), shown
# beside the spend.
STUDIOS_MONTH_ACTIVITY = "aihub.spend.month_activity"
# Dotted paths of functions a server process runs as it builds its ASGI application (city/asgi.py),
# in every worker, before its first request; never in management commands or tests. Each must be
# idempotent and must not block: uvicorn --workers imports the application inside its event loop.
# city.server_tuning's stays last: it freezes the heap built before it (city/server_tuning.py).
CITY_SERVER_STARTUP = ["aihub.ledger.start", "city.refresh_ahead.enable", "city.server_tuning.apply_at_start"]
# Pages the apps serve beside /v1/ and /admin/: URL prefix -> the app's URLconf module.
CITY_APP_PAGES = {"dashboard/": "accounts.dashboard.urls"}
# The apps' pages inside the Django admin (staff only, through admin.site.admin_view), mounted before
# the admin's own URLs so that its catch-all does not take them: prefix → urlconf module.
CITY_ADMIN_PAGES = {"admin/": "aihub.admin_pages"}

# Argon2 first: new passwords are hashed with it; older hashes still verify and are upgraded at sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

# Accounts (accounts/): sign-in by password or OAuth, and the /dashboard/keys pages.
# Seconds a user token issued at sign-in (password or OAuth) stays valid.
ACCOUNTS_SIGNIN_TOKEN_SECONDS = env.int("ACCOUNTS_SIGNIN_TOKEN_SECONDS", default=30 * 24 * 3600)
# Failed sign-ins allowed for one email in one studio per window; more get 429 until the window ends.
ACCOUNTS_LOGIN_MAX_FAILURES_PER_ACCOUNT = env.int("ACCOUNTS_LOGIN_MAX_FAILURES_PER_ACCOUNT", default=5)
# Failed sign-ins allowed from one client address per window, whatever the email.
ACCOUNTS_LOGIN_MAX_FAILURES_PER_ADDRESS = env.int("ACCOUNTS_LOGIN_MAX_FAILURES_PER_ADDRESS", default=20)
# Self-registrations (accounts/register) allowed from one client address per window.
ACCOUNTS_REGISTER_MAX_PER_ADDRESS = env.int("ACCOUNTS_REGISTER_MAX_PER_ADDRESS", default=10)
# OAuth sign-ins started (oauth/start, dashboard buttons) from one client address per window.
ACCOUNTS_OAUTH_MAX_STARTS_PER_ADDRESS = env.int("ACCOUNTS_OAUTH_MAX_STARTS_PER_ADDRESS", default=60)
# Length of the window in which failed sign-ins, registrations and OAuth starts are counted, in seconds.
ACCOUNTS_THROTTLE_WINDOW_SECONDS = env.int("ACCOUNTS_THROTTLE_WINDOW_SECONDS", default=900)
# Proxies in front of City whose X-Forwarded-For entry is trusted for the client address (0: none).
ACCOUNTS_TRUSTED_PROXY_COUNT = env.int("ACCOUNTS_TRUSTED_PROXY_COUNT", default=0)
# Whether a studio with no setting of its own lets people create their own accounts (accounts/settings).
ACCOUNTS_SELF_REGISTRATION_DEFAULT = env.bool("ACCOUNTS_SELF_REGISTRATION_DEFAULT", default=False)
# Seconds a /dashboard/keys sign-in lasts in the browser before it asks again.
ACCOUNTS_DASHBOARD_SESSION_SECONDS = env.int("ACCOUNTS_DASHBOARD_SESSION_SECONDS", default=12 * 3600)
# Seconds an OAuth sign-in may take from oauth/start to the pickup of its result.
ACCOUNTS_OAUTH_FLOW_SECONDS = env.int("ACCOUNTS_OAUTH_FLOW_SECONDS", default=600)
# Seconds a client should wait between two polls of oauth/result.
ACCOUNTS_OAUTH_POLL_INTERVAL_SECONDS = env.int("ACCOUNTS_OAUTH_POLL_INTERVAL_SECONDS", default=2)
# Seconds to wait for an OAuth provider to answer (token exchange, profile, discovery).
ACCOUNTS_OAUTH_HTTP_TIMEOUT_SECONDS = env.float("ACCOUNTS_OAUTH_HTTP_TIMEOUT_SECONDS", default=10.0)
# Seconds a process keeps an OpenID Connect discovery document (Google's endpoints).
ACCOUNTS_OIDC_DISCOVERY_CACHE_SECONDS = env.int("ACCOUNTS_OIDC_DISCOVERY_CACHE_SECONDS", default=3600)

LOG_LEVEL = env.str("CITY_LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"without_traceback": {"()": "city.logfilters.WithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        # A request for a host City does not serve (ALLOWED_HOSTS): one line, no stack trace.
        "django.security.DisallowedHost": {"level": "WARNING", "filters": ["without_traceback"]},
        # One INFO line per upstream call is noise on the hot path (and the URL is the admin's business).
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # While Redis is away the pub/sub layer retries every second: one line each, not a stack trace.
        "channels_redis.pubsub": {"filters": ["without_traceback"]},
    },
}

# Fetching a URL a user gives (city/safe_fetch.py: /v1/ai/asr's `url`). Addresses that are private,
# loopback, link-local, shared, multicast or reserved are always refused, except in these networks
# (comma-separated CIDRs, e.g. "10.20.0.0/16" for an internal media host; the tests allow 127.0.0.1/32
# to reach their loopback servers). Empty: none.
CITY_FETCH_ALLOWED_NETWORKS = env.list("CITY_FETCH_ALLOWED_NETWORKS", default=[])
import ipaddress  # noqa: E402 (kept beside the one setting that needs it)

try:
    [ipaddress.ip_network(network, strict=False) for network in CITY_FETCH_ALLOWED_NETWORKS]
except ValueError:
    raise ImproperlyConfigured("CITY_FETCH_ALLOWED_NETWORKS must be comma-separated networks such as 10.20.0.0/16.") from None
# Seconds a whole fetch may take (resolution, redirects and the body), and the redirects it follows.
CITY_FETCH_TIMEOUT_SECONDS = env.float("CITY_FETCH_TIMEOUT_SECONDS", default=30.0)
CITY_FETCH_MAX_REDIRECTS = env.int("CITY_FETCH_MAX_REDIRECTS", default=3)
