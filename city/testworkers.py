"""The Redis database of each pytest-xdist worker (`make test` runs two; the root conftest.py applies this).

pytest-django gives each worker its own test database (PostgreSQL's name gets `_gw0`, `_gw1`; SQLite's
file name carries the process id), and the City processes a worker starts use it (city/livecity.py).
The Redis that REDIS_URL names is one for the run: worker N takes its database number + N, so that the
cache, the ledger's counters and the channel layer (whose prefix city/settings.py derives from the
number) stay each worker's own, and its City processes' too (they inherit REDIS_URL).
"""

import re

# Redis's default number of databases ("databases 16" in redis.conf).
REDIS_DATABASES = 16
_REDIS_URL = re.compile(r"^(rediss?://[^/?#]*)(?:/(\d*))?$")


class WorkerRedisError(ValueError):
    pass


def redis_url_of_worker(url: str, index: int) -> str:
    """`url` with its database number moved up by `index`: ("redis://h:6379/6", 1) → "redis://h:6379/7"."""
    found = _REDIS_URL.match(url)
    if not found:
        raise WorkerRedisError(f"{url!r}: the test workers need a Redis URL ending in its database number, to give each its own")
    number = int(found.group(2) or 0) + index
    if number >= REDIS_DATABASES:
        raise WorkerRedisError(f"{url!r}: test worker {index} would use Redis database {number}; Redis has {REDIS_DATABASES}")
    return f"{found.group(1)}/{number}"


def worker_environment(environ: dict[str, str] | None, index: int) -> dict[str, str]:
    """The variables to set in worker `index`'s environment: its own Redis for each Redis URL set."""
    environ = environ or {}
    return {name: redis_url_of_worker(environ[name], index) for name in ("REDIS_URL", "CITY_CHANNEL_LAYER_URL") if environ.get(name)}
