"""Suite-wide guards (city/network_guard.py): no test reaches beyond loopback. And the pytest-xdist
workers `make test` runs side by side: each its own Redis database."""

import os
import shutil
import tempfile
from typing import Any

import pytest
from django.conf import settings

from city import network_guard, testworkers


def pytest_configure(config: pytest.Config) -> None:
    # Before any test module is imported, so nothing at import time escapes either.
    network_guard.install()
    # The test process is no server: a test importing city.asgi must not start the server's threads
    # (the ledger's keeper, the crash journal's replay). The City processes tests start keep them.
    settings.CITY_SERVER_STARTUP = []
    # Media results (videos, kept images) go to a folder of this run, shared with the City processes
    # tests start (city/livecity.py passes it on), and removed at the end.
    settings.MEDIA_ROOT = tempfile.mkdtemp(prefix="city-test-media-")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config, specs: list[Any]) -> None:
    """Each pytest-xdist worker (`make test` runs two) its own Redis database (city/testworkers.py), set in
    its environment before it starts, so before it loads the settings."""
    for index, spec in enumerate(specs):
        try:
            spec.env.update(testworkers.worker_environment(dict(os.environ), index))
        except testworkers.WorkerRedisError as exc:
            raise pytest.UsageError(str(exc)) from None


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
