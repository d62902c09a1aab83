"""Refresh-ahead for the per-process caches on the request path (tokens, plans, the runtime env).

Each of those caches re-reads its rows once they are CITY_*_CACHE_SECONDS old, the bound on how
long a lost invalidation broadcast can leave a process serving an old state. Read on the request
that finds the copy expired, that read (a thread hop and a query) lands in one request every
interval, per process, per cache: measured with bench/timeline.py, about a tenth of the slow
requests at concurrency 1 were waiting for one.

So a copy past half its lifetime is still served, and read again in the background: one read per
key at a time, on one thread of its own (which keeps its database connection, with Django's
per-request hygiene before each read). Under steady traffic a copy never expires; the bound is
unchanged, because a copy past its full lifetime is read on the request as before.
"""

import logging
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import close_old_connections, reset_queries

log = logging.getLogger("city.refresh_ahead")

# A copy older than this share of its lifetime is read again in the background.
REFRESH_AT = 0.5


def due(age: float, lifetime: float) -> bool:
    return refresher.enabled and age >= REFRESH_AT * lifetime


class Refresher:
    def __init__(self) -> None:
        # Server processes only (settings.CITY_SERVER_STARTUP: `enable`): a test's in-process requests
        # read as before, so that no thread of its own reads the database behind a test's transaction.
        self.enabled = False
        self._executor: ThreadPoolExecutor | None = None
        self._running: set[Hashable] = set()
        self._lock = threading.Lock()

    def start(self, key: Hashable, read: Callable[[], Any], keep: Callable[[Any], None]) -> None:
        """`keep(read())` on the refresh thread, unless a read of `key` is under way. A failed read is
        logged and changes nothing: the copy expires as it would have."""
        with self._lock:
            if key in self._running:
                return
            self._running.add(key)
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="city-refresh")
        self._executor.submit(self._refresh, key, read, keep)

    def _refresh(self, key: Hashable, read: Callable[[], Any], keep: Callable[[Any], None]) -> None:
        try:
            # What Django does around a request, for this thread's connection.
            reset_queries()
            close_old_connections()
            keep(read())
        except Exception as exc:
            log.warning("refreshing %s failed: %s", key, exc)
        finally:
            with self._lock:
                self._running.discard(key)

    def idle(self) -> bool:
        """No read under way (tests)."""
        return not self._running


refresher = Refresher()


def enable() -> None:
    """A server process's start (settings.CITY_SERVER_STARTUP)."""
    refresher.enabled = True
