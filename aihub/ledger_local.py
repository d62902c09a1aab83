"""The ledger in process memory (embedded mode: no REDIS_URL, one process).

The same checks as ledger_redis.py's scripts, under one lock (settle may come from any thread), on a
monotonic clock. A scope's spend for a month is rebuilt from the usage records on its first use, so a
restart forgets nothing that was written. Each call is journaled on local disk (ledger_journal.py)
until its record is written, so the calls in flight when a process dies get their records when
City starts again. What needs Redis: counting across processes (each process here counts alone,
so N embedded processes would allow N times each limit), and settling a dead process's calls
while City runs on (here they are written at the next start, and their concurrency slots died
with the process).
"""

import asyncio
import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from aihub.ledger import (
    PERIOD_MS,
    Reservation,
    ScopeLimits,
    budget_exceeded,
    concurrency_limited,
    per_unit,
    rate_headers,
    rate_limited,
    remaining,
    reset_ms,
    split_cost,
)
from aihub.ledger_journal import Journal
from aihub.spend import month_cost

log = logging.getLogger("aihub.ledger")


@dataclass
class Rate:
    """One scope's GCRA clocks (ms + remainder in 1/L ms) and its calls in flight."""

    rt: int = 0
    rf: int = 0
    tt: int = 0
    tf: int = 0
    calls: int = 0


@dataclass
class Budget:
    micro: int  # settled, micro-USD
    pico: int  # the remainder, 1e-12 USD (0 … 999,999)
    held: int = 0  # reserved by calls in flight, micro-USD


@dataclass
class Call:
    r: Reservation
    held: list[str]  # the budget counters it holds `cost` on
    state: str = "reserved"
    record: dict[str, Any] = field(default_factory=dict)


def take(tat: int, frac: int, now: int, q: int, r: int, limit: int) -> tuple[int, int]:
    """A GCRA clock moved by (q ms + r/limit ms) from max(tat, now)."""
    if tat < now:
        tat, frac = now, 0
    tat, frac = tat + q, frac + r
    if frac >= limit:
        tat, frac = tat + 1, frac - limit
    return tat, frac


def over(tat: int, frac: int, now: int) -> bool:
    ahead = tat - now
    return ahead > PERIOD_MS or (ahead == PERIOD_MS and frac > 0)


def ahead_of(tat: int, frac: int, now: int) -> tuple[int, int]:
    return (0, 0) if tat < now else (tat - now, frac)


def admit_unit(
    scope: ScopeLimits, unit: str, limit: int, units: int, tat: int, frac: int, now: int, states: list[tuple[str, int, int, int]]
) -> tuple[int, int]:
    """The GCRA clock of one unit (requests or tokens) moved by `units`, its header state appended to
    `states`; raises the 429 when it would run more than a period ahead."""
    q, rem = per_unit(units, limit)
    new_tat, new_frac = take(tat, frac, now, q, rem, limit)
    if over(new_tat, new_frac, now):
        ahead, ahead_frac = ahead_of(tat, frac, now)
        wait = new_tat - PERIOD_MS - now + (1 if new_frac else 0)
        raise rate_limited(scope, unit, limit, remaining(limit, ahead, ahead_frac), wait, reset_ms(ahead, ahead_frac))
    ahead, ahead_frac = ahead_of(new_tat, new_frac, now)
    states.append((unit, limit, remaining(limit, ahead, ahead_frac), reset_ms(ahead, ahead_frac)))
    return new_tat, new_frac


def scope_key(scope: ScopeLimits) -> str:
    return f"{scope.kind}:{scope.id}"


class LocalLedger:
    clock: Callable[[], float] = time.monotonic  # tests may move it

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rates: dict[str, Rate] = {}
        self._budgets: dict[str, Budget] = {}  # "<scope>:<month>"
        self._calls: dict[str, Call] = {}
        self._rebuilds: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Task[None]] = {}
        self._journal: Journal | None = None
        self._journal_pid = 0  # the process that opened the journal (a forked child opens its own)
        self._journal_lock = threading.Lock()
        self._started_pid = 0

    def start(self) -> None:
        """Replay crashed processes' journals and open ours now, on a thread of its own (the server may
        call this inside its event loop); the first reserve waits for it. Idempotent per process."""
        with self._lock:
            if self._started_pid == os.getpid():
                return
            self._started_pid = os.getpid()
        threading.Thread(target=self._open_journal_at_start, name="aihub-ledger-journal", daemon=True).start()

    def _open_journal_at_start(self) -> None:
        try:
            self.open_journal()
        except Exception:
            log.exception("could not replay the ledger's crash journals; the first AI call tries again")
        finally:
            close_old_connections()

    async def reserve(self, r: Reservation) -> dict[str, str]:
        if self._journal_pid != os.getpid():
            await sync_to_async(self.open_journal)()
        for _ in range(len(r.scopes) + 1):
            missing = self._missing_budgets(r)
            if not missing:
                with self._lock:
                    if not self._missing_budgets(r):
                        return self._reserve(r)
                continue
            for scope in missing:
                await self._rebuild(scope, r.month)
        raise RuntimeError("budget counters were rebuilt but are still missing")

    def open_journal(self) -> None:
        """Once, before the first reserve: write what crashed processes left unwritten, then journal ours
        (before any budget is rebuilt, so the rebuilt spend includes those records)."""
        with self._journal_lock:
            if self._journal_pid == os.getpid():
                return
            if self._journal_pid:  # a forked child: the journal and the calls in flight are the parent's
                with self._lock:
                    self._journal, self._calls = None, {}
            try:
                journal = Journal()
                try:
                    replayed = journal.replay_orphans()
                except BaseException:
                    journal.close(idle=True)
                    raise
                if replayed:
                    log.warning("wrote %s usage records left unwritten by a process that crashed", replayed)
                self._journal = journal
                atexit.register(self.close_journal)  # after the usage writer's drain (registered later, runs first)
            except OSError as exc:
                log.warning("the ledger's crash journal is off (%s): a crash loses the calls in flight", exc)
            self._journal_pid = os.getpid()

    def close_journal(self) -> None:
        with self._lock:
            if self._journal is not None:
                self._journal.close(idle=not self._calls)
                self._journal = None

    async def _rebuild(self, scope: ScopeLimits, month: str) -> None:
        """This month's spend of `scope` from the usage records; concurrent calls share one query."""
        key = f"{scope_key(scope)}:{month}"
        loop = asyncio.get_running_loop()
        running = self._rebuilds.get((loop, key))
        if running is None:
            running = loop.create_task(self._rebuild_once(scope, month, key))
            self._rebuilds[(loop, key)] = running
            running.add_done_callback(lambda _: self._rebuilds.pop((loop, key), None))
        await asyncio.shield(running)

    async def _rebuild_once(self, scope: ScopeLimits, month: str, key: str) -> None:
        spent = await sync_to_async(month_cost)(scope.kind, scope.id, month)
        micro, pico = split_cost(spent)
        with self._lock:
            self._budgets.setdefault(key, Budget(micro, pico))

    def _missing_budgets(self, r: Reservation) -> list[ScopeLimits]:
        return [s for s in r.scopes if s.monthly_budget is not None and f"{scope_key(s)}:{r.month}" not in self._budgets]

    def _reserve(self, r: Reservation) -> dict[str, str]:
        """Under the lock: check every limit of every scope, then commit all or nothing."""
        if r.call_id in self._calls:
            raise RuntimeError(f"call id {r.call_id} was reserved twice")
        now = int(self.clock() * 1000)
        moved: list[Rate] = []
        states: list[tuple[str, int, int, int]] = []
        for scope in r.scopes:
            rate = self._rates.get(scope_key(scope)) or Rate()
            new = Rate(rate.rt, rate.rf, rate.tt, rate.tf, rate.calls)
            if scope.rpm:
                new.rt, new.rf = admit_unit(scope, "requests", scope.rpm, 1, rate.rt, rate.rf, now, states)
            if scope.tpm:
                new.tt, new.tf = admit_unit(scope, "tokens", scope.tpm, r.tokens, rate.tt, rate.tf, now, states)
            if scope.max_concurrency is not None:
                if rate.calls + 1 > scope.max_concurrency:
                    raise concurrency_limited(scope)
                new.calls += 1
            moved.append(new)
        held: list[str] = []
        for scope in r.scopes:
            key = f"{scope_key(scope)}:{r.month}"
            budget = self._budgets.get(key)
            if budget is None:
                continue
            if scope.monthly_budget is not None:
                spent = budget.micro + (1 if budget.pico else 0)
                if spent + budget.held + r.cost > scope.monthly_budget:
                    raise budget_exceeded(scope, r.month, spent, budget.held, r.cost)
            held.append(key)
        for scope, new in zip(r.scopes, moved, strict=True):
            if scope.rpm or scope.tpm or scope.max_concurrency is not None:
                self._rates[scope_key(scope)] = new
        for key in held:
            self._budgets[key].held += r.cost
        call = self._calls[r.call_id] = Call(r, held, record={**r.record, "call_id": r.call_id})
        if self._journal is not None:
            self._journal.append("reserve", r.call_id, call.record)
        return rate_headers(states)

    async def settle(self, call_id: str, studio_id: str, *, cost: int, tokens: int, record: dict[str, Any]) -> None:
        from aihub.metering import writer

        if self.settle_now(call_id, cost=cost, tokens=tokens, record=record) != 0:
            writer.submit(record)

    def settle_later(self, call_id: str, studio_id: str, *, cost: int, tokens: int, record: dict[str, Any]) -> None:
        """In process there is nothing to wait for: settle again now, and hand the record over anyway."""
        from aihub.metering import writer

        try:
            self.settle_now(call_id, cost=cost, tokens=tokens, record=record)
        except Exception:
            log.exception("settling call %s failed again; its counters stay held until City restarts", call_id)
        writer.submit(record)

    def settle_now(self, call_id: str, *, cost: int, tokens: int, record: dict[str, Any]) -> int:
        """1 settled now, 0 settled before, -1 no such reservation (any thread)."""
        micro, pico = split_cost(cost)
        with self._lock:
            call = self._calls.get(call_id)
            if call is None:
                return -1
            if call.state != "reserved":
                return 0
            now = int(self.clock() * 1000)
            refund = max(0, call.r.tokens - tokens)
            for scope in call.r.scopes:
                rate = self._rates.get(scope_key(scope))
                if rate is None:
                    continue
                if scope.tpm and refund:
                    q, rem = per_unit(refund, scope.tpm)
                    rate.tt, rate.tf = rate.tt - q, rate.tf - rem
                    if rate.tf < 0:
                        rate.tt, rate.tf = rate.tt - 1, rate.tf + scope.tpm
                    if rate.tt < now:
                        rate.tt, rate.tf = now, 0
                if scope.max_concurrency is not None:
                    rate.calls = max(0, rate.calls - 1)
            for key in call.held:
                budget = self._budgets[key]
                budget.held -= call.r.cost
                budget.pico += pico
                carry, budget.pico = divmod(budget.pico, 1_000_000)
                budget.micro += micro + carry
            call.state, call.record = "settled", record
            if self._journal is not None:
                self._journal.append("settle", call_id, record)
            return 1

    def forget(self, records: list[dict[str, Any]]) -> None:
        with self._lock:
            for record in records:
                call = self._calls.get(record.get("call_id") or "")
                if call is not None and call.state == "settled":
                    del self._calls[call.r.call_id]
                    if self._journal is not None:
                        self._journal.append("written", call.r.call_id)
            if self._journal is not None and not self._calls:
                self._journal.rotate_if_idle()

    # For tests and the admin: a scope's counters.
    def budget(self, scope: ScopeLimits, month: str) -> Budget | None:
        return self._budgets.get(f"{scope_key(scope)}:{month}")

    def in_flight(self, scope: ScopeLimits) -> int:
        rate = self._rates.get(scope_key(scope))
        return rate.calls if rate else 0
