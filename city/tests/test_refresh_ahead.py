"""Refresh-ahead (city/refresh_ahead.py): a cached copy past half its lifetime is served and read again
in the background, so that steady traffic never waits for the read; the lifetime stays the bound."""

import threading
import time

from django.test import TransactionTestCase, override_settings

from city.keys import env_cipher
from city.models import EnvVar
from city.refresh_ahead import Refresher, due, refresher
from city.runtime_env import RuntimeEnv
from city.testing import MovableClock


def wait_idle(r: Refresher, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not r.idle():
        if time.monotonic() > deadline:
            raise AssertionError("the background read did not finish")
        time.sleep(0.005)


class RefresherTests(TransactionTestCase):
    def setUp(self) -> None:
        self.refresher = Refresher()
        self.refresher.enabled = True

    def test_one_read_per_key_at_a_time_and_its_result_kept(self) -> None:
        release = threading.Event()
        kept: list[str] = []
        reads: list[int] = []

        def read() -> str:
            reads.append(1)
            release.wait(5)
            return "fresh"

        self.refresher.start("k", read, kept.append)
        self.refresher.start("k", read, kept.append)  # while the first is under way: nothing more
        self.assertFalse(self.refresher.idle())
        release.set()
        wait_idle(self.refresher)
        self.assertEqual((len(reads), kept), (1, ["fresh"]))
        self.refresher.start("k", lambda: "again", kept.append)  # done: the key may be read again
        wait_idle(self.refresher)
        self.assertEqual(kept, ["fresh", "again"])

    def test_a_failed_read_changes_nothing_and_frees_its_key(self) -> None:
        kept: list[str] = []

        def fail() -> str:
            raise RuntimeError("database away")

        with self.assertLogs("city.refresh_ahead", "WARNING") as logs:
            self.refresher.start("k", fail, kept.append)
            wait_idle(self.refresher)
        self.assertIn("database away", logs.output[0])
        self.assertEqual(kept, [])
        self.assertTrue(self.refresher.idle())

    def test_due_past_half_the_lifetime_only_in_a_server_process(self) -> None:
        self.assertFalse(refresher.enabled, "the test process is no server: conftest empties CITY_SERVER_STARTUP")
        self.assertFalse(due(1.5, 2.0))
        refresher.enabled = True
        self.addCleanup(setattr, refresher, "enabled", False)
        self.assertFalse(due(0.9, 2.0))
        self.assertTrue(due(1.0, 2.0))


@override_settings(CITY_ENV_CACHE_SECONDS=2.0)
class RuntimeEnvRefreshAheadTests(TransactionTestCase):
    """The runtime env as a server process reads it: a value another process committed (no broadcast)
    is taken in the background before the snapshot expires, and no request waits for the read."""

    def setUp(self) -> None:
        refresher.enabled = True
        self.addCleanup(setattr, refresher, "enabled", False)
        self.addCleanup(wait_idle, refresher)
        self.clock = MovableClock()

    def test_the_runtime_env_is_read_again_behind_the_request(self) -> None:
        from asgiref.sync import async_to_sync

        env = RuntimeEnv()
        env.clock = self.clock
        self.assertIsNone(async_to_sync(env.aget)("REFRESH_AHEAD_PROBE"))
        operations_env_write("REFRESH_AHEAD_PROBE", "set elsewhere")
        self.clock.now += 1.5
        self.assertIsNone(async_to_sync(env.aget)("REFRESH_AHEAD_PROBE"))  # the copy, at once
        wait_idle(refresher)
        self.assertEqual(async_to_sync(env.aget)("REFRESH_AHEAD_PROBE"), "set elsewhere")


def operations_env_write(key: str, value: str) -> None:
    """An env row written as another process would: encrypted, committed, no broadcast here."""
    EnvVar.objects.create(key=key, ciphertext=env_cipher().encrypt(value.encode()).decode())
