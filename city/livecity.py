"""Real City processes for tests: Daphne (or uvicorn) on a free loopback port, sharing the test database.

Use from a TransactionTestCase (or LiveCityTestCase), so that what the test writes is committed and
the server process sees it.
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import CommandError
from django.db import OperationalError, connection
from django.test import TransactionTestCase

from city.testing import ApiTestMixin

BASE_DIR = Path(settings.BASE_DIR)


def end_process(process: subprocess.Popen) -> None:
    """Ask a process this test started to stop (SIGTERM, as a supervisor would); kill it after 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """The URL of the database the tests run on (the test database, not the configured one)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


class LiveCity:
    """One Daphne process serving City (or uvicorn, with `workers` processes); `stop()` ends it (also on test failure, via addCleanup)."""

    def __init__(self, *, extra_env: dict[str, str] | None = None, server: str = "daphne", workers: int = 1, wait: bool = True) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
        env.update(
            {
                "DATABASE_URL": database_url(),
                "ADMIN_SECRET_KEY": settings.ADMIN_SECRET_KEY,
                "CITY_SECRET_KEY": settings.CITY_SECRET_KEY,
                "CITY_LOG_LEVEL": "WARNING",
                "CITY_PUBLIC_URL": self.url,  # its own address, so that the OAuth callback comes back to it
                "CITY_MEDIA_ROOT": str(settings.MEDIA_ROOT),  # the test run's media folder (conftest.py)
                "PYTHONUNBUFFERED": "1",
            }
        )
        if settings.REDIS_URL:
            env["REDIS_URL"] = settings.REDIS_URL
        env.update(extra_env or {})
        bin_dir = Path(sys.executable).parent
        if server == "uvicorn":
            argv = [
                str(bin_dir / "uvicorn"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                *(["--workers", str(workers)] if workers > 1 else []),
                "city.asgi:application",
            ]
        else:
            # Daphne as `manage.py serve` runs it (city/daphne_server.py), not Daphne's bare command.
            argv = [sys.executable, "-m", "city.daphne_server", "-b", "127.0.0.1", "-p", str(self.port), "-v", "0", "city.asgi:application"]
        self.log_path = BASE_DIR / "var" / f"livecity-{self.port}.log"
        self.log_path.parent.mkdir(exist_ok=True)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(argv, cwd=BASE_DIR, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()

    @classmethod
    def many(cls, *configs: dict[str, Any]) -> list["LiveCity"]:
        """City processes started side by side (each config: LiveCity's keyword arguments), ready when
        returned. A start is mostly Python importing City: on two cores, two take about the time of one."""
        cities: list[LiveCity] = []
        try:
            for config in configs:
                cities.append(cls(**config, wait=False))
        except BaseException:
            for city in cities:
                city.stop()
            raise
        return cls.all_ready(*cities)

    @staticmethod
    def all_ready(*cities: "LiveCity") -> list["LiveCity"]:
        """Wait until each of these (started with wait=False) answers; if one does not, stop them all."""
        try:
            for city in cities:
                city.wait_ready()
        except BaseException:
            for city in cities:
                city.stop()
            raise
        return list(cities)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"City exited early; see {self.log_path}:\n{self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/v1/services", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"City did not answer within {timeout} s; see {self.log_path}")

    def stop(self) -> None:
        end_process(self.process)
        self._log.close()


FLUSH_TRIES = 3


class LiveCityTestCase(ApiTestMixin, TransactionTestCase):
    """Tests against real City processes. `self.start_city()` starts one more and returns it."""

    def start_city(self, **kwargs) -> LiveCity:
        city = LiveCity(**kwargs)
        self.addCleanup(city.stop)
        return city

    def start_cities(self, *configs: dict[str, Any]) -> list[LiveCity]:
        """Several more, started side by side (LiveCity.many); each config is start_city's keyword arguments."""
        cities = LiveCity.many(*configs)
        for city in cities:
            self.addCleanup(city.stop)
        return cities

    def _fixture_teardown(self) -> None:
        """Empty the database, again if PostgreSQL broke a deadlock by cancelling the flush: a live
        City may still be writing the test's last usage records (its writer flushes every 0.2 s), and
        the flush's TRUNCATE and such an INSERT wait on each other's locks. The insert that loses (or
        comes after) fails its studio's foreign key, which is only log noise for a test that ended."""
        for attempt in range(FLUSH_TRIES):
            try:
                super()._fixture_teardown()  # type: ignore[misc]  # Django's own hook, absent from the stubs
                return
            except CommandError as exc:
                if attempt == FLUSH_TRIES - 1 or not isinstance(exc.__cause__, OperationalError):
                    raise
                time.sleep(0.3)

    @classmethod
    def captureOnCommitCallbacks(cls, *, using: str = "default", execute: bool = False) -> AbstractContextManager[list[Callable[[], Any]]]:
        # TransactionTestCase commits for real; hooks run by themselves.
        return nullcontext([])
