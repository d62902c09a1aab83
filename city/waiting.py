"""Waiting in tests for something to happen: poll a condition until it holds or a deadline passes,
instead of sleeping a fixed time and hoping it was long enough (the machine may be loaded)."""

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

INTERVAL_SECONDS = 0.05


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, *, interval: float = INTERVAL_SECONDS, message: str = "") -> T:
    """The first truthy value of `predicate()`, checked every `interval` seconds; past `timeout`
    seconds an AssertionError (a test failure) saying what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {message or predicate}")
        time.sleep(interval)


async def wait_until_async(
    predicate: Callable[[], T], timeout: float = 10.0, *, interval: float = INTERVAL_SECONDS, message: str = ""
) -> T:
    """`wait_until` in a coroutine: the event loop goes on running between checks."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {message or predicate}")
        await asyncio.sleep(interval)
