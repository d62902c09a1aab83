"""User token → identity, with a small per-process cache.

Guarantee: a revocation, rotation, pause, removal or account disable made through any process is
refused by every process at once: the operation publishes an invalidation after it commits
(city/invalidation.py), and each process drops the entries it names (studios/apps.py registers the
handlers). A broadcast can be lost (Redis away, a process subscribing late): each process also re-reads a
token's row once its cache entry is older than CITY_TOKEN_CACHE_SECONDS (default 2 s), which stays
the bound; an entry past half that age is read again in the background (city/refresh_ahead.py), so
that steady traffic never waits for the read. Expiry is checked on every request against the cached time.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from city import refresh_ahead
from city.errors import ApiError
from city.identity import Identity
from city.keys import token_digest
from city.registry import USER
from studios.models import Studio, UserToken

MAX_CACHED_TOKENS = 50_000  # bounds memory when clients send many distinct bad tokens
RAW_TOKEN_LENGTHS = range(20, 129)


@dataclass(frozen=True)
class CachedToken:
    token_id: str | None  # None: no such token (cached too, so that guessing costs no query)
    studio_id: str = ""
    account_id: str | None = None  # the account the token belongs to, if any
    plan_id: str | None = None  # the token's own plan
    studio_plan_id: str | None = None  # its studio's plan (studios/plans.py reads both, no query)
    studio_status: str = ""
    revoked: bool = False
    expires_at: datetime | None = None
    loaded_at: float = 0.0


class TokenCache:
    clock: Callable[[], float] = time.monotonic  # seconds; tests move it

    def __init__(self) -> None:
        self._entries: OrderedDict[str, CachedToken] = OrderedDict()
        self._lock = threading.Lock()
        # Counts invalidations: a row read before one is not cached after it (it may be the old state).
        self.generation = 0

    def get(self, digest: str) -> CachedToken | None:
        entry = self._entries.get(digest)
        if entry is None or self.clock() - entry.loaded_at >= settings.CITY_TOKEN_CACHE_SECONDS:
            return None
        return entry

    def put(self, digest: str, entry: CachedToken, generation: int | None = None) -> None:
        """With `generation` (read before the row was), nothing is cached if an invalidation came since."""
        with self._lock:
            if generation is not None and generation != self.generation:
                return
            self._entries[digest] = entry
            self._entries.move_to_end(digest)
            while len(self._entries) > MAX_CACHED_TOKENS:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()

    def forget_studio(self, studio_id: str) -> None:
        with self._lock:
            self.generation += 1
            for digest in [d for d, e in self._entries.items() if e.studio_id == studio_id]:
                del self._entries[digest]

    def forget_account(self, account_id: str) -> None:
        with self._lock:
            self.generation += 1
            for digest in [d for d, e in self._entries.items() if e.account_id == account_id]:
                del self._entries[digest]

    def forget(self, digest: str) -> None:
        with self._lock:
            self.generation += 1
            self._entries.pop(digest, None)


token_cache = TokenCache()


def _load(digest: str) -> CachedToken:
    row = (
        UserToken.objects.filter(digest=digest)
        .values("id", "studio_id", "account_id", "plan_id", "studio__plan_id", "studio__status", "revoked_at", "expires_at", "last_used_at")
        .first()
    )
    if row is None:
        return CachedToken(token_id=None, loaded_at=TokenCache.clock())
    now = timezone.now()
    resolution = timedelta(seconds=settings.CITY_TOKEN_LAST_USED_RESOLUTION_SECONDS)
    if row["last_used_at"] is None or now - row["last_used_at"] >= resolution:
        # Filtered on the old value: two processes refreshing at once write it once.
        UserToken.objects.filter(id=row["id"], last_used_at=row["last_used_at"]).update(last_used_at=now)
    return CachedToken(
        token_id=row["id"],
        studio_id=row["studio_id"],
        account_id=row["account_id"],
        plan_id=row["plan_id"],
        studio_plan_id=row["studio__plan_id"],
        studio_status=row["studio__status"],
        revoked=row["revoked_at"] is not None,
        expires_at=row["expires_at"],
        loaded_at=TokenCache.clock(),
    )


async def resolve_user_token(raw: str) -> Identity:
    """Raises ApiError 401 (unknown, revoked, expired, studio removed) or 403 (studio paused)."""
    if not raw.startswith("ub_") or len(raw) not in RAW_TOKEN_LENGTHS:
        raise ApiError(401, "The bearer credential is not a City token; tokens start with 'ub_'.", code="invalid_api_key")
    digest = token_digest(raw)
    entry = token_cache.get(digest)
    if entry is None:
        generation = token_cache.generation
        entry = await sync_to_async(_load)(digest)
        token_cache.put(digest, entry, generation)
    elif refresh_ahead.due(token_cache.clock() - entry.loaded_at, settings.CITY_TOKEN_CACHE_SECONDS):
        generation = token_cache.generation
        refresh_ahead.refresher.start(("token", digest), lambda: _load(digest), lambda fresh: token_cache.put(digest, fresh, generation))
    return identity_for(entry)


def identity_for(entry: CachedToken) -> Identity:
    if entry.token_id is None:
        raise ApiError(401, "This token is not valid; check it, or ask the studio admin for one.", code="invalid_api_key")
    if entry.revoked:
        raise ApiError(401, "This token was revoked; ask the studio admin for a new one.", code="token_revoked")
    if entry.expires_at is not None and entry.expires_at <= timezone.now():
        raise ApiError(401, "This token has expired; ask the studio admin for a new one.", code="token_expired")
    if entry.studio_status == Studio.Status.REMOVED:
        raise ApiError(401, "This token's studio was removed.", code="studio_removed")
    if entry.studio_status == Studio.Status.PAUSED:
        raise ApiError(403, "This token's studio is paused; an admin can activate it again.", code="studio_paused")
    return Identity(
        kind=USER,
        studio_id=entry.studio_id,
        token_id=entry.token_id,
        account_id=entry.account_id,
        plan_id=entry.plan_id,
        studio_plan_id=entry.studio_plan_id,
        label=entry.token_id,
    )
