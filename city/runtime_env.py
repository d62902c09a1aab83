"""The runtime env: a key's effective value is the database's if set, else the process's.

Each process keeps a decrypted snapshot of the database rows, re-read once per
CITY_ENV_CACHE_SECONDS at most (one query per refresh, never one per request; past half that age, in
the background: city/refresh_ahead.py). A write through any
process drops every process's snapshot at once (`invalidate`, broadcast by city/invalidation.py); the
TTL is the bound when a broadcast is lost.
"""

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings

from city import invalidation, refresh_ahead
from city.keys import decrypt_or_none

log = logging.getLogger("city.runtime_env")


@dataclass(frozen=True)
class Snapshot:
    values: dict[str, str]
    loaded_at: float


class RuntimeEnv:
    clock: Callable[[], float] = time.monotonic  # seconds; tests move it

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._generation = 0  # counts drops: a snapshot read before one is not kept after it

    def get(self, key: str, default: str | None = None) -> str | None:
        """Effective value of `key` (sync code only: it may query the database)."""
        return self._effective(self._fresh_snapshot(), key, default)

    async def aget(self, key: str, default: str | None = None) -> str | None:
        return self._effective(await self._current(), key, default)

    async def asnapshot(self) -> dict[str, str]:
        """The database's values (not the process's), for code that reads many keys at once."""
        return (await self._current()).values

    async def _current(self) -> Snapshot:
        """The snapshot, read on this request if it expired, else read again in the background once past half its age."""
        snapshot = self._snapshot
        if snapshot is None or self._stale(snapshot):
            return await sync_to_async(self._fresh_snapshot)()
        if refresh_ahead.due(self.clock() - snapshot.loaded_at, settings.CITY_ENV_CACHE_SECONDS):
            refresh_ahead.refresher.start("runtime env", self._read, lambda _: None)
        return snapshot

    def source(self, key: str) -> str | None:
        """ "db", "process" or None: where the effective value comes from."""
        if key in self._fresh_snapshot().values:
            return "db"
        return "process" if os.environ.get(key) else None

    def invalidate(self) -> None:
        """The env changed through this process: drop the snapshot here now, and in every process once committed."""
        self.drop()
        invalidation.publish("env")

    def drop(self) -> None:
        self._generation += 1
        self._snapshot = None

    def _effective(self, snapshot: Snapshot, key: str, default: str | None) -> str | None:
        if key in snapshot.values:
            return snapshot.values[key]
        value = os.environ.get(key)
        return value if value else default

    def _stale(self, snapshot: Snapshot) -> bool:
        return self.clock() - snapshot.loaded_at >= settings.CITY_ENV_CACHE_SECONDS

    def _fresh_snapshot(self) -> Snapshot:
        snapshot = self._snapshot
        if snapshot is not None and not self._stale(snapshot):
            return snapshot
        return self._read()

    def _read(self) -> Snapshot:
        """Read the rows now (one query) and keep them, unless the env was dropped meanwhile."""
        with self._lock:
            from city.models import EnvVar

            generation = self._generation
            values = {}
            for key, ciphertext in EnvVar.objects.values_list("key", "ciphertext"):
                value = decrypt_or_none(ciphertext)
                if value is None:
                    # Unreadable after a CITY_SECRET_KEY change: treated as unset rather than failing every request.
                    log.warning("runtime env key %s cannot be decrypted with CITY_SECRET_KEY or its fallbacks; set it again", key)
                    continue
                values[key] = value
            snapshot = Snapshot(values=values, loaded_at=self.clock())
            if generation == self._generation:
                self._snapshot = snapshot
            return snapshot


runtime_env = RuntimeEnv()
invalidation.register("env", lambda _key: runtime_env.drop())
