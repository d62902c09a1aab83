"""Calls to Django's cache (Redis when REDIS_URL is set) that fail fast and typed when it is down.

When a call fails (refused, reset, or past REDIS_TIMEOUT_SECONDS), `CacheUnavailable` is raised and
the cache is left alone for CACHE_RETRY_SECONDS: callers then fail at once instead of each waiting
out a timeout on the few threads that serve every request. The first call after that pause tries
again, so City is back to normal within about that long once Redis answers.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import BaseCache, cache
from redis.exceptions import RedisError

from city.errors import ApiError

log = logging.getLogger("city.sharedcache")

T = TypeVar("T")

# Seconds the cache is not called after a failure.
CACHE_RETRY_SECONDS = 1.0
# Seconds a client refused with cache_unavailable is told to wait: a Redis restart takes a few.
RETRY_AFTER_SECONDS = 5
# What a cache backend raises when its server does not answer (redis-py wraps socket errors, mostly).
CACHE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)


class CacheUnavailable(Exception):
    """The shared cache did not answer (or failed within the last CACHE_RETRY_SECONDS)."""


class SharedCache:
    clock: Callable[[], float] = time.monotonic

    def __init__(self) -> None:
        self._down_until = 0.0
        self._lock = threading.Lock()

    def call(self, operation: Callable[[BaseCache], T]) -> T:
        """`operation(cache)`, or CacheUnavailable. Other errors (such as incr's ValueError) pass through."""
        if self.clock() < self._down_until:
            raise CacheUnavailable
        try:
            return operation(cache)
        except CACHE_ERRORS as exc:
            with self._lock:
                if self.clock() >= self._down_until:  # one log line per pause, not one per request
                    log.warning("the cache (REDIS_URL) does not answer: %s; calls pause for %s s", type(exc).__name__, CACHE_RETRY_SECONDS)
                self._down_until = self.clock() + CACHE_RETRY_SECONDS
            raise CacheUnavailable from exc

    def reset(self) -> None:
        """Forget a failure: the next call tries the cache (tests)."""
        self._down_until = 0.0


shared_cache = SharedCache()


def cache_unavailable(refused: str) -> ApiError:
    """503 `cache_unavailable` with Retry-After; `refused` says what is refused and why."""
    return ApiError(
        503,
        f"City's cache (REDIS_URL) does not answer, so {refused}. Try again in a few seconds.",
        code="cache_unavailable",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
