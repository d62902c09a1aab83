"""Suite-wide guards (city/network_guard.py): no test reaches beyond loopback. And the pytest-xdist
workers `make test` runs side by side: each its own Redis database."""

import os
import re
import shutil
import tempfile
from typing import Any

import pytest
from django.conf import settings

from city import network_guard


def pytest_configure(config: pytest.Config) -> None:
    # Before any test module is imported, so nothing at import time escapes either.
    network_guard.install()
    # The test process is no server: a test importing city.asgi must not start the server's threads
    # (the ledger's keeper, the crash journal's replay). The City processes tests start keep them.
    settings.CITY_SERVER_STARTUP = []
    # Media results (videos, kept images) go to a folder of this run, shared with the City processes
    # tests start (city/livecity.py passes it on), and removed at the end.
    settings.MEDIA_ROOT = tempfile.mkdtemp(prefix="city-test-media-")


# Redis's default number of databases ("databases 16" in redis.conf).
REDIS_DATABASES = 16
_REDIS_URL = re.compile(r"^(rediss?://[^/?#]*)(?:/(\d*))?$")


def redis_url_of_worker(url: str, index: int) -> str:
    """`url` with its database number moved up by `index`: ("redis://h:6379/6", 1) → "redis://h:6379/7"."""
    found = _REDIS_URL.match(url)
    if not found:
        raise pytest.UsageError(f"{url!r}: the test workers need a Redis URL ending in its database number, to give each its own")
    number = int(found.group(2) or 0) + index
    if number >= REDIS_DATABASES:
        raise pytest.UsageError(f"{url!r}: test worker {index} would use Redis database {number}; Redis has {REDIS_DATABASES}")
    return f"{found.group(1)}/{number}"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config, specs: list[Any]) -> None:
    """pytest-xdist's workers (`make test` runs two) each get their own test database from pytest-django
    (PostgreSQL's name ends in _gw0, _gw1; SQLite's file name carries the process id), which the City
    processes a worker starts use too (city/livecity.py). The Redis REDIS_URL names is one for the run:
    worker N takes its database number + N, set in the worker's environment before it loads the
    settings, so that the cache, the ledger's counters and the channel layer (whose prefix
    city/settings.py derives from the number) stay each worker's own, and its City processes' too."""
    for index, spec in enumerate(specs):
        for name in ("REDIS_URL", "CITY_CHANNEL_LAYER_URL"):
            if os.environ.get(name):
                spec.env[name] = redis_url_of_worker(os.environ[name], index)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)


@pytest.fixture(autouse=True)
def _refuse_outside_connections():
    """Fail the test that tried to reach beyond loopback, even if the code under test swallowed the
    refusal; and put the guard back if something (a plugin, a mock) took it off."""
    if not network_guard.installed():
        network_guard.install()
    before = len(network_guard.refused)
    yield
    attempts = network_guard.refused[before:]
    if attempts:
        pytest.fail(f"the test tried to connect beyond loopback: {attempts}", pytrace=False)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's, then, before it drops the test database: this process's usage writer and ledger
    keeper stopped (they would otherwise write to, and reap, a database that is gone), and on
    PostgreSQL every other session on it ended. Threads keep their connections (CONN_MAX_AGE) until
    the process exits: the writer's, the keeper's, asgiref's sync_to_async thread's; PostgreSQL refuses
    to drop a database in use ("being accessed by other users"), which stays behind."""
    yield
    from django.db import connection

    from aihub import ledger
    from aihub.metering import writer

    with django_db_blocker.unblock():
        writer.close()
        ledger.stop()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
