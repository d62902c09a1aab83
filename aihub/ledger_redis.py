"""The ledger on Redis: every process counts on the same keys, one Lua script per step (ledger_scripts.py).

reserve: one EVALSHA checks and commits all of a call's counters and stores its reservation (owner
process, amounts, the usage record to write if the owner dies); pipelined with it, the studio joins
the set of studios with open calls that reapers walk. settle: one EVALSHA, exactly once (a state
check), then the record goes to the usage writer, which drops the reservation once the record is
committed (`forget`).

When Redis fails (refused, reset, or past REDIS_TIMEOUT_SECONDS) it is left alone for
DOWN_PAUSE_SECONDS, as city/sharedcache.py does, so requests fail at once instead of each waiting out
a timeout. Meanwhile: budgeted calls get 503 budget_unavailable; others go on uncounted (rate limits
fail open) and their settle only writes the record; a settle that fails on a reserved call writes
its record at once and leaves the counters to the keeper, which retries until Redis answers. A reserve
whose answer was lost may stand in Redis: a call refused for it is undone by the keeper, a call that
goes on settles it with its own settle (never undone: that would free a slot the call still holds).
"""

import asyncio
import functools
import hashlib
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
import redis
import redis.asyncio as aredis
from asgiref.sync import sync_to_async
from django.conf import settings
from redis.exceptions import NoScriptError, RedisError

from aihub import ledger_scripts as scripts
from aihub import redis_client
from aihub.ledger import (
    PERIOD_MS,
    Reservation,
    ScopeLimits,
    Window,
    budget_exceeded,
    budget_unavailable,
    concurrency_limited,
    has_budget,
    rate_headers,
    rate_limited,
    split_cost,
)
from aihub.redis_client import LeanBlockingPool
from aihub.spend import month_cost, next_month_start

log = logging.getLogger("aihub.ledger")

# Seconds Redis is not called after a failure (requests fail fast meanwhile).
DOWN_PAUSE_SECONDS = 1.0
# Days a month's budget counter outlives the month (late settles of calls started in it).
BUDGET_KEEP_DAYS = 40
# The set of studios with open calls, which reapers walk (not hash-tagged: one key for all studios).
STUDIOS_KEY = "city:ledger:studios"
# Connections per process (event loop) to the ledger's Redis.
POOL_CONNECTIONS = 50
# How long a call waits for one of them when all are busy (a burst), before Redis counts as away.
POOL_WAIT_SECONDS = 10.0
# How often a process adds a studio it reserves for to STUDIOS_KEY: well within the keeper's
# STUDIO_PRUNE_SECONDS, after which a studio with no open call leaves the set.
STUDIO_MARK_SECONDS = 60.0
# Calls dropped by one FORGET script at most (a script holds Redis while it runs).
FORGET_CHUNK = 200
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)


class RedisDown(Exception):
    """Redis did not answer (or failed within the last DOWN_PAUSE_SECONDS); `maybe_done`: the command was
    sent, so Redis may have run it (a timeout after it arrived)."""

    def __init__(self, *, maybe_done: bool = False) -> None:
        super().__init__()
        self.maybe_done = maybe_done


def call_key(studio_id: str, call_id: str) -> str:
    return f"city:{{{studio_id}}}:call:{call_id}"


def open_key(studio_id: str) -> str:
    return f"city:{{{studio_id}}}:open"


def rate_key(studio_id: str, scope: ScopeLimits) -> str:
    return f"city:{{{studio_id}}}:rate:{scope.kind}:{scope.id}"


def log_key(studio_id: str, scope_name: str) -> str:
    """A scope's sliding log ("studio:<id>" or "token:<id>"): call_id → admission time (ms)."""
    return f"city:{{{studio_id}}}:log:{scope_name}"


def log_tokens_key(studio_id: str, scope_name: str) -> str:
    """The tokens of a scope's log entries (call_id → tokens) and their sum (`used`)."""
    return f"city:{{{studio_id}}}:logtokens:{scope_name}"


def budget_key(studio_id: str, scope: ScopeLimits, month: str) -> str:
    return f"city:{{{studio_id}}}:budget:{scope.kind}:{scope.id}:{month}"


def proc_key(proc_id: str) -> str:
    return f"city:proc:{proc_id}"


def sha(source: str) -> str:
    return hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 (Redis names scripts by SHA-1)


SHAS = {name: sha(getattr(scripts, name)) for name in ("RESERVE", "SETTLE", "INIT_BUDGET", "FORGET", "REFUND")}


def record_json(record: dict[str, Any]) -> bytes:
    """A usage record as the ledger keeps it (datetimes in ISO 8601, anything else unknown as its str)."""
    try:
        return orjson.dumps(record, default=str)
    except orjson.JSONEncodeError:  # an integer past 64 bits, which only the standard library writes
        return json.dumps(record, default=lambda value: value.isoformat() if isinstance(value, datetime) else str(value)).encode()


@functools.lru_cache(maxsize=16)
def budget_expire_at_ms(month: str) -> int:
    """When a month's budget counters expire (epoch ms): BUDGET_KEEP_DAYS after the month ends."""
    expire_at = next_month_start(datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)) + timedelta(days=BUDGET_KEEP_DAYS)
    return int(expire_at.timestamp() * 1000)


def settle_plan(opened: tuple[list[str], dict[str, Any]], tokens: int) -> tuple[list[str], list[Any]]:
    """KEYS and the per-scope ARGV of the settle script for a reservation's (keys, plan) and its real tokens."""
    keys, plan = opened
    refund = max(0, plan["tokens"] - tokens)
    args = [f"{tpm or 0} {refund} 0 {1 if took_slot else 0}" for tpm, took_slot in plan["scopes"]]
    return keys, args


class RedisLedger:
    clock: Callable[[], float] = time.monotonic

    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis] = weakref.WeakKeyDictionary()
        self._sync: redis.Redis | None = None
        self._down_until = 0.0
        self._lock = threading.Lock()
        # Calls this process reserved and has not settled: their keys and limits, so settle needs no read.
        self._open: dict[str, tuple[list[str], dict[str, Any]]] = {}
        # Calls admitted uncounted while Redis was down: their settle only writes the record.
        self._uncounted: set[str] = set()
        self._rebuilds: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Task[None]] = {}
        self._marked: dict[str, float] = {}  # studio id → when this process last added it to STUDIOS_KEY
        from aihub.ledger_keeper import Keeper

        self.keeper = Keeper(self)

    # --- connections -------------------------------------------------------------------------

    def client(self) -> aredis.Redis:
        """This event loop's pooled client (asyncio connections belong to the loop that made them)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            timeout = settings.REDIS_TIMEOUT_SECONDS
            # A blocking pool: a burst waits for one of POOL_CONNECTIONS instead of failing. Up to
            # POOL_WAIT_SECONDS, not the socket timeout: a queue of calls is not Redis being away, and
            # counted as such it refused budgeted calls (503) in a burst of 500 a worker.
            pool = LeanBlockingPool.from_url(
                self.url,
                max_connections=POOL_CONNECTIONS,
                timeout=max(timeout, POOL_WAIT_SECONDS),
                socket_connect_timeout=timeout,
                socket_timeout=timeout,
            )
            client = aredis.Redis(connection_pool=pool)
            self._clients[loop] = client
        return client

    def sync_client(self) -> redis.Redis:
        """The threads' client (keeper, usage writer)."""
        if self._sync is None:
            timeout = settings.REDIS_TIMEOUT_SECONDS
            self._sync = redis.Redis.from_url(self.url, socket_connect_timeout=timeout, socket_timeout=timeout)
        return self._sync

    def is_down(self) -> bool:
        return self.clock() < self._down_until

    def mark_down(self, exc: BaseException) -> None:
        with self._lock:
            if self.clock() >= self._down_until:  # one log line per pause, not one per request
                log.warning(
                    "the ledger's Redis (REDIS_URL) does not answer: %s; calls pause for %s s", type(exc).__name__, DOWN_PAUSE_SECONDS
                )
            self._down_until = self.clock() + DOWN_PAUSE_SECONDS

    def mark_up(self) -> None:
        self._down_until = 0.0

    async def _evalsha(self, name: str, keys: list[str], args: list[Any], *, studio_id: str | None = None) -> Any:
        """Run script `name` (loading it on NOSCRIPT); with `studio_id`, the studio joins the set reapers walk in
        the same round trip. Raises RedisDown."""
        if self.is_down():
            raise RedisDown
        client = self.client()
        mark = studio_id is not None and self._mark_due(studio_id)
        try:
            for _ in range(2):
                try:
                    if mark:
                        pipe = client.pipeline(transaction=False)
                        pipe.evalsha(SHAS[name], len(keys), *keys, *args)
                        pipe.zadd(STUDIOS_KEY, {cast(str, studio_id): int(time.time() * 1000)})
                        results = await pipe.execute(raise_on_error=False)
                        for result in results:
                            if isinstance(result, BaseException):
                                raise result
                        self._marked[cast(str, studio_id)] = self.clock()
                        return results[0]
                    return await client.evalsha(SHAS[name], len(keys), *keys, *args)
                except NoScriptError:
                    await client.script_load(getattr(scripts, name))
            raise RedisError(f"script {name} could not be loaded")
        except REDIS_ERRORS as exc:
            self.mark_down(exc)
            raise RedisDown(maybe_done=True) from exc

    def _mark_due(self, studio_id: str) -> bool:
        """Whether to add the studio to the set reapers walk now: at most once per STUDIO_MARK_SECONDS per
        process (one command fewer per call); the reaper keeps a studio with open calls in the set itself."""
        marked = self._marked.get(studio_id)
        return marked is None or self.clock() - marked >= STUDIO_MARK_SECONDS

    def evalsha_sync(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """The same from a thread (keeper, writer); raises RedisError/OSError."""
        client = self.sync_client()
        try:
            return client.evalsha(SHAS[name], len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(getattr(scripts, name))
            return client.evalsha(SHAS[name], len(keys), *keys, *args)

    # --- reserve ------------------------------------------------------------------------------

    def start(self) -> None:
        self.keeper.ensure_started()

    async def reserve(self, r: Reservation) -> dict[str, str]:
        self.keeper.ensure_started()
        try:
            return await self._reserve(r)
        except RedisDown as down:
            # A reserve whose answer was lost (`maybe_done`) may stand in Redis. A refused call (it has a
            # budget) is undone by the keeper once Redis answers; a call that goes on is never undone
            # (that would free a slot it holds): its own settle settles the reservation if it landed.
            if has_budget(r):
                if down.maybe_done:
                    self.keeper.settle_later(r.studio_id, r.call_id, 0, 0, 0, None, self._opened(r))
                raise budget_unavailable() from None
            if down.maybe_done:
                self._open[r.call_id] = self._opened(r)
                r.tight = True  # what it holds is not known
            else:
                self._uncounted.add(r.call_id)  # rate limits fail open: the call goes on, uncounted
            return {}

    def _opened(self, r: Reservation) -> tuple[list[str], dict[str, Any]]:
        """The call's keys (call, open, then per scope: rate, budget, log, log tokens) and the plan settle reads."""
        s = r.studio_id
        names = [f"{scope.kind}:{scope.id}" for scope in r.scopes]
        keys = [call_key(s, r.call_id), open_key(s)]
        keys += [rate_key(s, scope) for scope in r.scopes]
        keys += [budget_key(s, scope, r.month) for scope in r.scopes]
        keys += [log_key(s, name) for name in names] + [log_tokens_key(s, name) for name in names]
        plan = {
            "tokens": r.tokens,
            "scopes": [[scope.tpm, scope.max_concurrency is not None] for scope in r.scopes],
            "ids": [f"{scope.kind}:{scope.id}" for scope in r.scopes],
        }
        return keys, plan

    async def _reserve(self, r: Reservation) -> dict[str, str]:
        keys, plan = self._opened(r)
        args: list[Any] = [self.keeper.proc_id, r.month, r.cost, r.tokens, record_json({**r.record, "call_id": r.call_id}), len(r.scopes)]
        args += [budget_expire_at_ms(r.month), orjson.dumps(plan)]
        for scope in r.scopes:
            concurrency = -1 if scope.max_concurrency is None else scope.max_concurrency
            budget = -1 if scope.monthly_budget is None else scope.monthly_budget
            args.append(f"{scope.rpm or 0} {scope.tpm or 0} {concurrency} {budget}")
        for _ in range(len(r.scopes) + 1):  # at most one rebuild per scope
            result = await self._evalsha("RESERVE", keys, args, studio_id=r.studio_id)
            verdict = result[0].decode() if isinstance(result[0], bytes) else result[0]
            if verdict == "ok":
                self._open[r.call_id] = (keys, plan)
                r.tight = int(result[2]) == 1
                return self._headers(r.scopes, [int(value) for value in result[1].split()])
            scope = r.scopes[int(result[1]) - 1] if len(result) > 1 else r.scopes[0]
            if verdict == "rebuild":
                await self._rebuild(keys[2 + len(r.scopes) + int(result[1]) - 1], scope, r.month, int(args[6]))
                continue
            if verdict == "rate":
                wait_requests, wait_tokens, calls, tokens, reset = (int(value) for value in result[2:7])
                raise rate_limited(scope, Window(calls, tokens, reset), wait_requests, wait_tokens, r.tokens)
            if verdict == "conc":
                raise concurrency_limited(scope)
            if verdict == "budget":
                raise budget_exceeded(scope, r.month, int(result[2]), int(result[3]), r.cost)
            raise RuntimeError(f"call id {r.call_id} was reserved twice")
        raise RuntimeError("budget counters were rebuilt but are still missing")

    def _headers(self, scopes: tuple[ScopeLimits, ...], values: list[int]) -> dict[str, str]:
        states: list[tuple[str, int, int, int]] = []
        for i, scope in enumerate(scopes):
            states += Window(*values[3 * i : 3 * i + 3]).states(scope)
        return rate_headers(states)

    async def _rebuild(self, key: str, scope: ScopeLimits, month: str, expire_at_ms: int) -> None:
        """A budget counter is missing (first use, or Redis lost it): rebuild it from the usage records,
        unless another process did meanwhile. Concurrent calls of this event loop share one rebuild
        (one query, not one per waiting request)."""
        loop = asyncio.get_running_loop()
        running = self._rebuilds.get((loop, key))
        if running is None:
            running = loop.create_task(self._rebuild_once(key, scope, month, expire_at_ms))
            self._rebuilds[(loop, key)] = running
            running.add_done_callback(lambda _: self._rebuilds.pop((loop, key), None))
        await asyncio.shield(running)

    async def _rebuild_once(self, key: str, scope: ScopeLimits, month: str, expire_at_ms: int) -> None:
        spent = await sync_to_async(month_cost)(scope.kind, scope.id, month)
        micro, pico = split_cost(spent)
        await self._evalsha("INIT_BUDGET", [key], [micro, pico, expire_at_ms])

    # --- settle -------------------------------------------------------------------------------

    async def settle(
        self, call_id: str, studio_id: str, *, cost: int, tokens: int, record: dict[str, Any], on_written: Callable[[], None] | None = None
    ) -> None:
        from aihub.metering import writer

        if call_id in self._uncounted:
            self._uncounted.discard(call_id)
            writer.submit(record)
            return
        micro, pico = split_cost(cost)
        opened = self._open.pop(call_id, None)
        try:
            if opened is None:
                opened = await self._read_plan(studio_id, call_id)
                if opened is None:  # never reserved here, or Redis lost it: only the record remains to write
                    writer.submit(record)
                    return
            keys, args = settle_plan(opened, tokens)
            hook = redis_client.written.set(on_written)
            try:
                result = await self._evalsha("SETTLE", keys, [micro, pico, record_json(record), len(opened[1]["scopes"]), *args])
            finally:
                redis_client.written.reset(hook)
        except RedisDown:
            writer.submit(record)  # the record goes to the database at once; the counters wait for Redis
            self.keeper.settle_later(studio_id, call_id, micro, pico, tokens, record, opened)
            return
        if int(result[0]) != 0:  # 0: settled before (by the reaper, whose record is the one that counts)
            writer.submit(record)

    def settle_later(self, call_id: str, studio_id: str, *, cost: int, tokens: int, record: dict[str, Any]) -> None:
        from aihub.metering import writer

        writer.submit(record)
        if call_id in self._uncounted:  # nothing was counted: the record is all
            self._uncounted.discard(call_id)
            return
        micro, pico = split_cost(cost)
        self.keeper.settle_later(studio_id, call_id, micro, pico, tokens, record, self._open.pop(call_id, None))

    async def _read_plan(self, studio_id: str, call_id: str) -> tuple[list[str], dict[str, Any]] | None:
        if self.is_down():
            raise RedisDown
        try:
            raw = await self.client().hmget(call_key(studio_id, call_id), ["plan", "month"])
        except REDIS_ERRORS as exc:
            self.mark_down(exc)
            raise RedisDown from exc
        return plan_keys(studio_id, call_id, raw)

    # --- refund -------------------------------------------------------------------------------

    async def refund(self, refund_id: str, studio_id: str, scopes: list[tuple[str, str]], month: str, cost: int) -> bool:
        """Lower `month`'s settled spend of each scope ((kind, id)) by `cost` (1e-12 USD), in one script,
        once per `refund_id`; True when this call did it. Raises RedisDown."""
        micro, pico = split_cost(cost)
        keys = [f"city:{{{studio_id}}}:refund:{refund_id}"]
        keys += [f"city:{{{studio_id}}}:budget:{kind}:{scope_id}:{month}" for kind, scope_id in scopes]
        return int(await self._evalsha("REFUND", keys, [-micro, -pico, budget_expire_at_ms(month)])) == 1

    # --- forget -------------------------------------------------------------------------------

    def forget(self, records: list[dict[str, Any]]) -> None:
        """Drop the reservations of written records (one pipelined round trip, one script per studio and
        FORGET_CHUNK calls; writer thread). A failure is harmless: the reaper writes such a record again
        (idempotently) and drops it later."""
        by_studio: dict[str, list[str]] = {}
        for record in records:
            if record.get("call_id"):
                by_studio.setdefault(record["studio_id"], []).append(record["call_id"])
        if not by_studio:
            return
        try:
            client = self.sync_client()
            for _ in range(2):
                pipe = client.pipeline(transaction=False)
                for studio_id, call_ids in by_studio.items():
                    for start in range(0, len(call_ids), FORGET_CHUNK):
                        chunk = call_ids[start : start + FORGET_CHUNK]
                        keys = [open_key(studio_id), *(call_key(studio_id, call_id) for call_id in chunk)]
                        pipe.evalsha(SHAS["FORGET"], len(keys), *keys, *chunk)
                results = pipe.execute(raise_on_error=False)
                if any(isinstance(result, NoScriptError) for result in results):
                    client.script_load(scripts.FORGET)
                    continue
                return
        except REDIS_ERRORS as exc:
            log.warning("could not drop %s written reservations: %s", sum(map(len, by_studio.values())), type(exc).__name__)


def plan_keys(studio_id: str, call_id: str, raw: list[Any]) -> tuple[list[str], dict[str, Any]] | None:
    """The settle script's keys and the plan, from a reservation's `plan` and `month` fields (None: no such call)."""
    plan_raw, month_raw = raw[0], raw[1]
    if plan_raw is None:
        return None
    plan = json.loads(plan_raw)
    month = month_raw.decode() if isinstance(month_raw, bytes) else month_raw
    scopes = plan["ids"]
    keys = [call_key(studio_id, call_id), open_key(studio_id)]
    keys += [f"city:{{{studio_id}}}:rate:{scope}" for scope in scopes]
    keys += [f"city:{{{studio_id}}}:budget:{scope}:{month}" for scope in scopes]
    keys += [log_key(studio_id, scope) for scope in scopes] + [log_tokens_key(studio_id, scope) for scope in scopes]
    return keys, plan


__all__ = ["PERIOD_MS", "RedisDown", "RedisLedger"]
