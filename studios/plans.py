"""The plans that apply to one AI call, read without a database query on the hot path.

A user token's identity carries its own plan id and its studio's (studios/credentials.py reads
both with the token's row). The plans themselves come from a per-process cache of every plan, read
in one query, dropped when a plan changes (invalidation topic "plan") and re-read once older than
CITY_TOKEN_CACHE_SECONDS, the bound when a broadcast is lost. The admin credential names its studio
per call; that studio's state and plan come from a small per-process cache dropped on topic "studio".
"""

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from city import refresh_ahead
from city.errors import ApiError
from city.identity import Identity
from studios.models import Plan, Studio

MAX_CACHED_STUDIOS = 50_000  # bounds memory when an admin names many studios, or unknown ones


@dataclass(frozen=True)
class PlanLimits:
    """The runtime view of a plan: what the AI pipeline reads."""

    id: str  # "plan_…"
    name: str
    models: tuple[str, ...] | None  # ids and glob patterns (fnmatchcase); None: every model; (): none
    max_cost_per_request: int | None  # micro-USD; None: no cap (the same for every limit below)
    monthly_budget: int | None  # micro-USD
    rpm: int | None
    tpm: int | None
    max_concurrency: int | None

    def allows(self, model_id: str) -> bool:
        if self.models is None:
            return True
        return any(pattern == model_id or fnmatchcase(model_id, pattern) for pattern in self.models)

    @classmethod
    def of(cls, plan: Plan | dict[str, Any]) -> "PlanLimits":
        row = plan if isinstance(plan, dict) else {field: getattr(plan, field) for field in PLAN_FIELDS}
        models = row["models"]
        return cls(
            id=row["id"],
            name=row["name"],
            models=None if models is None else tuple(models),
            max_cost_per_request=row["max_cost_per_request"],
            monthly_budget=row["monthly_budget"],
            rpm=row["rpm"],
            tpm=row["tpm"],
            max_concurrency=row["max_concurrency"],
        )


PLAN_FIELDS = ("id", "name", "models", "max_cost_per_request", "monthly_budget", "rpm", "tpm", "max_concurrency")


@dataclass(frozen=True)
class PlanScopes:
    """What applies to one call."""

    studio_id: str
    token_id: str | None
    studio_plan: PlanLimits | None  # limits the studio as a whole (all its tokens together)
    token_plan: PlanLimits | None  # limits that token alone

    @property
    def effective(self) -> PlanLimits | None:
        """The plan whose whitelist and per-request cap apply: the token's, else the studio's."""
        return self.token_plan or self.studio_plan


class PlanCache:
    """Every plan, by id, read in one query; dropped whole when any plan changes."""

    clock: Callable[[], float] = time.monotonic  # seconds; tests move it

    def __init__(self) -> None:
        self._plans: dict[str, PlanLimits] | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()
        self.generation = 0  # counts drops: plans read before one are not kept after it
        self._reading: dict[asyncio.AbstractEventLoop, asyncio.Task[dict[str, PlanLimits]]] = {}

    def current(self) -> dict[str, PlanLimits] | None:
        plans = self._plans
        if plans is None or self.clock() - self._loaded_at >= settings.CITY_TOKEN_CACHE_SECONDS:
            return None
        return plans

    def put(self, plans: dict[str, PlanLimits], generation: int, loaded_at: float) -> None:
        with self._lock:
            if generation == self.generation:
                self._plans, self._loaded_at = plans, loaded_at

    def forget(self, plan_id: str = "") -> None:
        with self._lock:
            self.generation += 1
            self._plans = None

    async def plans(self, *, fresh: bool = False) -> dict[str, PlanLimits]:
        """The cached plans; read again when stale, dropped, or `fresh` is asked (a plan id it lacks)."""
        plans = None if fresh else self.current()
        if plans is not None:
            if refresh_ahead.due(self.clock() - self._loaded_at, settings.CITY_TOKEN_CACHE_SECONDS):
                generation, loaded_at = self.generation, self.clock()
                refresh_ahead.refresher.start("plans", _read_plans, lambda read: self.put(read, generation, loaded_at))
            return plans
        if fresh:
            return await self._read()
        # The requests that find the copy stale together share one read (not one query each, every TTL).
        loop = asyncio.get_running_loop()
        reading = self._reading.get(loop)
        if reading is None:
            reading = self._reading[loop] = loop.create_task(self._read())
            reading.add_done_callback(lambda _: self._reading.pop(loop, None))
        return await asyncio.shield(reading)

    async def _read(self) -> dict[str, PlanLimits]:
        generation, loaded_at = self.generation, self.clock()
        plans = await sync_to_async(_read_plans)()
        self.put(plans, generation, loaded_at)
        return plans

    async def get(self, plan_id: str | None) -> PlanLimits | None:
        if plan_id is None:
            return None
        plan = (await self.plans()).get(plan_id)
        if plan is None:
            # Assigned after this copy was read (its broadcast lost or not here yet): read once more.
            # A plan that is still missing was removed, which needs it unassigned first: no plan then.
            plan = (await self.plans(fresh=True)).get(plan_id)
        return plan


def _read_plans() -> dict[str, PlanLimits]:
    return {row["id"]: PlanLimits.of(row) for row in Plan.objects.values(*PLAN_FIELDS)}


@dataclass(frozen=True)
class CachedStudio:
    status: str | None  # None: no such studio (cached too, so that a wrong id costs one query per TTL)
    plan_id: str | None
    loaded_at: float


class StudioCache:
    """A studio's state and plan, for the admin credential, which names a studio per call."""

    clock: Callable[[], float] = time.monotonic

    def __init__(self) -> None:
        self._entries: OrderedDict[str, CachedStudio] = OrderedDict()
        self._lock = threading.Lock()
        self.generation = 0

    def get(self, studio_id: str) -> CachedStudio | None:
        entry = self._entries.get(studio_id)
        if entry is None or self.clock() - entry.loaded_at >= settings.CITY_TOKEN_CACHE_SECONDS:
            return None
        return entry

    def put(self, studio_id: str, entry: CachedStudio, generation: int) -> None:
        with self._lock:
            if generation != self.generation:
                return
            self._entries[studio_id] = entry
            self._entries.move_to_end(studio_id)
            while len(self._entries) > MAX_CACHED_STUDIOS:
                self._entries.popitem(last=False)

    def forget(self, studio_id: str) -> None:
        with self._lock:
            self.generation += 1
            self._entries.pop(studio_id, None)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()

    async def load(self, studio_id: str) -> CachedStudio:
        entry = self.get(studio_id)
        if entry is None:
            generation, loaded_at = self.generation, self.clock()
            row = await sync_to_async(_read_studio)(studio_id)
            if row is None:
                entry = CachedStudio(status=None, plan_id=None, loaded_at=loaded_at)
            else:
                entry = CachedStudio(status=row["status"], plan_id=row["plan_id"], loaded_at=loaded_at)
            self.put(studio_id, entry, generation)
        return entry


def _read_studio(studio_id: str) -> dict[str, Any] | None:
    row = Studio.objects.filter(id=studio_id).values("status", "plan_id").first()
    return None if row is None else dict(row)


plan_cache = PlanCache()
studio_cache = StudioCache()


async def plan_scopes(identity: Identity, studio_id: str) -> PlanScopes:
    """The studio's plan and the token's for a call on `studio_id`.

    A user token's studio state was checked when its identity was resolved. The admin credential
    naming a studio: 404 studio_not_found, 403 studio_paused, 403 studio_removed.
    """
    if identity.is_admin:
        studio = await studio_cache.load(studio_id)
        _check_studio_state(studio_id, studio.status)
        return PlanScopes(studio_id=studio_id, token_id=None, studio_plan=await plan_cache.get(studio.plan_id), token_plan=None)
    if identity.studio_id is None:
        raise ApiError(401, "This call needs a studio token: send 'Authorization: Bearer ub_…'.", code="missing_credential")
    if identity.studio_id != studio_id:
        raise ApiError(403, "studio_id does not match the studio of this token.", param="studio_id", code="studio_mismatch")
    return PlanScopes(
        studio_id=studio_id,
        token_id=identity.token_id,
        studio_plan=await plan_cache.get(identity.studio_plan_id),
        token_plan=await plan_cache.get(identity.plan_id),
    )


def _check_studio_state(studio_id: str, status: str | None) -> None:
    if status is None:
        raise ApiError(404, f"No studio {studio_id}; studios/list shows the studios.", param="studio_id", code="studio_not_found")
    if status == Studio.Status.PAUSED:
        raise ApiError(403, f"Studio {studio_id} is paused; activate it to call models for it.", param="studio_id", code="studio_paused")
    if status == Studio.Status.REMOVED:
        raise ApiError(403, f"Studio {studio_id} is removed; removal is final.", param="studio_id", code="studio_removed")
