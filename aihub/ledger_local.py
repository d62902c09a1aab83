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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from aihub.ledger import (
    PERIOD_MS,
    Reservation,
    ScopeLimits,
    Window,
    budget_exceeded,
    concurrency_limited,
    rate_headers,
    rate_limited,
    split_cost,
)
from aihub.ledger_journal import Journal
from aihub.spend import month_cost

log = logging.getLogger("aihub.ledger")


@dataclass(slots=True)
class Entry:
    """An admitted call in a scope's log: when (ms), and the tokens it holds (lowered at settle)."""

    at: int
    tokens: int
    counted: bool = True  # False once it has left the window (its tokens are no longer in `used`)


@dataclass
class Log:
    """One scope's sliding log: the calls admitted in the last PERIOD_MS, oldest first, and the sum of
    their tokens. Each entry is trimmed once, so a reserve costs O(1) amortized."""

    entries: deque[Entry] = field(default_factory=deque)
    used: int = 0

    def trim(self, now: int) -> None:
        edge = now - PERIOD_MS  # an entry at or before it has left the window
        while self.entries and self.entries[0].at <= edge:
            entry = self.entries.popleft()
            entry.counted = False
            self.used -= entry.tokens

    def reset_ms(self, now: int) -> int:
        return self.entries[-1].at + PERIOD_MS - now if self.entries else 0

    def wait_for_requests(self, limit: int, now: int) -> int:
        """Ms until one more call fits under `limit` (0: now): the entry whose leaving makes room."""
        count = len(self.entries)
        return 0 if count < limit else self.entries[count - limit].at + PERIOD_MS - now

    def wait_for_tokens(self, tokens: int, limit: int, now: int) -> int:
        """Ms until `tokens` more fit under `limit` (0: now): oldest entries leave first."""
        need = self.used + tokens - limit
        if need <= 0:
            return 0
        for entry in self.entries:  # only on a refusal, and only as far as the room needed
            need -= entry.tokens
            if need <= 0:
                return entry.at + PERIOD_MS - now
        return self.reset_ms(now)

    def window(self, now: int) -> Window:
        return Window(len(self.entries), self.used, self.reset_ms(now))


@dataclass
class Rate:
    """One scope's sliding log and its calls in flight."""

    log: Log = field(default_factory=Log)
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
    entries: list[tuple[Log, Entry]] = field(default_factory=list)  # its entries in the scopes' logs
    state: str = "reserved"
    record: dict[str, Any] = field(default_factory=dict)


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
        self._refunds: set[str] = set()

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
        rates = [self._rates.get(scope_key(scope)) or Rate() for scope in r.scopes]
        refusal: tuple[int, ScopeLimits, Window, int, int] | None = None
        for scope, rate in zip(r.scopes, rates, strict=True):
            if scope.rpm or scope.tpm:
                rate.log.trim(now)
                wait_requests = rate.log.wait_for_requests(scope.rpm, now) if scope.rpm else 0
                wait_tokens = rate.log.wait_for_tokens(r.tokens, scope.tpm, now) if scope.tpm else 0
                wait = max(wait_requests, wait_tokens)
                if wait and (refusal is None or wait > refusal[0]):  # the scope that keeps the call out longest speaks
                    refusal = (wait, scope, rate.log.window(now), wait_requests, wait_tokens)
        if refusal is not None:
            _, scope, window, wait_requests, wait_tokens = refusal
            raise rate_limited(scope, window, wait_requests, wait_tokens, r.tokens)
        for scope, rate in zip(r.scopes, rates, strict=True):
            if scope.max_concurrency is not None and rate.calls + 1 > scope.max_concurrency:
                raise concurrency_limited(scope)
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
        entries: list[tuple[Log, Entry]] = []
        states: list[tuple[str, int, int, int]] = []
        for scope, rate in zip(r.scopes, rates, strict=True):
            if scope.rpm or scope.tpm:
                entry = Entry(now, r.tokens)
                rate.log.entries.append(entry)
                rate.log.used += r.tokens
                entries.append((rate.log, entry))
                states += rate.log.window(now).states(scope)
            if scope.max_concurrency is not None:
                rate.calls += 1
            if scope.rpm or scope.tpm or scope.max_concurrency is not None:
                self._rates[scope_key(scope)] = rate
        for key in held:
            self._budgets[key].held += r.cost
        call = self._calls[r.call_id] = Call(r, held, entries, record={**r.record, "call_id": r.call_id})
        if self._journal is not None:
            self._journal.append("reserve", r.call_id, call.record)
        return rate_headers(states)

    async def settle(
        self, call_id: str, studio_id: str, *, cost: int, tokens: int, record: dict[str, Any], on_written: Callable[[], None] | None = None
    ) -> None:
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
            for log, entry in call.entries:  # the TPM refund, in the windows the call is still counted in
                lowered = min(entry.tokens, tokens)
                if entry.counted:
                    log.used -= entry.tokens - lowered
                entry.tokens = lowered
            for scope in call.r.scopes:
                rate = self._rates.get(scope_key(scope))
                if rate is not None and scope.max_concurrency is not None:
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

    async def refund(self, refund_id: str, studio_id: str, scopes: list[tuple[str, str]], month: str, cost: int) -> bool:
        """Lower `month`'s spend of each scope ((kind, id)) by `cost` (1e-12 USD), once per `refund_id`, never below zero.
        A counter not built yet is left alone: its rebuild reads the refund's usage record, as does the
        rebuild after a restart."""
        micro, pico = split_cost(cost)
        with self._lock:
            if refund_id in self._refunds:
                return False
            self._refunds.add(refund_id)
            for kind, scope_id in scopes:
                budget = self._budgets.get(f"{kind}:{scope_id}:{month}")
                if budget is None:
                    continue
                budget.pico -= pico
                borrow, budget.pico = divmod(budget.pico, 1_000_000)
                budget.micro += borrow - micro
                if budget.micro < 0:  # it holds the refunded charge: only one that lost it could go below
                    budget.micro, budget.pico = 0, 0
        return True

    # For tests and the admin: a scope's counters.
    def budget(self, scope: ScopeLimits, month: str) -> Budget | None:
        return self._budgets.get(f"{scope_key(scope)}:{month}")

    def in_flight(self, scope: ScopeLimits) -> int:
        rate = self._rates.get(scope_key(scope))
        return rate.calls if rate else 0
