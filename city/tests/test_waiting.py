"""city/waiting.py: what tests use instead of fixed sleeps."""

import asyncio
import threading
import time
import unittest

from city.waiting import wait_until, wait_until_async


class WaitUntilTests(unittest.TestCase):
    def test_it_returns_the_first_truthy_value_once_the_thing_happened(self) -> None:
        happened = threading.Event()
        threading.Timer(0.2, happened.set).start()
        started = time.monotonic()
        self.assertEqual(wait_until(lambda: happened.is_set() and "done", timeout=30, interval=0.01), "done")
        self.assertGreaterEqual(time.monotonic() - started, 0.2)

    def test_past_its_deadline_it_fails_saying_what_did_not_happen(self) -> None:
        started = time.monotonic()
        with self.assertRaisesRegex(AssertionError, r"not within 0.2 s: the flag was set"):
            wait_until(lambda: False, timeout=0.2, interval=0.01, message="the flag was set")
        self.assertGreaterEqual(time.monotonic() - started, 0.2)

    def test_the_async_form_lets_the_loop_run_between_checks(self) -> None:
        async def scenario() -> int:
            box: list[int] = []
            asyncio.get_running_loop().call_later(0.1, box.append, 7)
            value = await wait_until_async(lambda: box[0] if box else 0, timeout=30, interval=0.01)
            with self.assertRaisesRegex(AssertionError, "not within 0.1 s"):
                await wait_until_async(lambda: [], timeout=0.1, interval=0.01)
            return value

        self.assertEqual(asyncio.run(scenario()), 7)
