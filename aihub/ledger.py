"""The counters behind plans: rate limits (RPM, TPM, concurrency) and monthly budgets, by reservation.

A call reserves its worst case on every scope (its studio, and its token when it has one) in one
atomic step, then settles exactly once to what it really cost. Guarantees, with Redis (REDIS_URL):
- counted across every process: one Lua script checks and commits all of a call's counters, so no
  interleaving of calls from any number of processes gets past a limit or a budget;
- a refused call consumes nothing (all scopes or none);
- RPM and TPM are an exact sliding log, never fixed windows: each scope keeps the calls it admitted
  in the last PERIOD_MS (time, and tokens reserved), and a call is admitted only if, with it, the log
  holds at most `rpm` calls and `tpm` tokens; so no 60 s span, wherever it starts, ever admits more.
  A settle lowers the call's tokens to its real ones (the TPM refund); its request stays counted;
- a reservation outlives its process: if the process dies before settling, a reaper in any other
  process settles it at its estimate and writes its usage record (status "interrupted"), within
  about HEARTBEAT_TTL_SECONDS + MISSING_CONFIRM_SECONDS + 2 × KEEP_INTERVAL_SECONDS (ledger_keeper.py);
- when Redis cannot be reached, budgets fail closed (503 budget_unavailable) and rate limits fail
  open (the call goes on, uncounted; its usage record is still written). When a reserve's answer is
  lost, a budgeted call is refused and its reservation undone; any other call goes on and its own
  settle settles the reservation if it landed;
- Redis must not evict (maxmemory-policy noeviction): the keeper logs an ERROR at start otherwise.
Without Redis (embedded mode, one process) the same checks run in process (ledger_local.py); this
month's spend is rebuilt from the usage records on first use, so a restart forgets nothing that was
written, and a journal on local disk (ledger_journal.py) gives the calls in flight at a crash their
records at the next start. Counting across processes, and settling a dead process's calls while
City runs on, need Redis. A server starts the keeper (Redis) or replays the journal (embedded) as it
starts (`start`, a CITY_SERVER_STARTUP hook), not at its first call.

Amounts: reservations and budgets in micro-USD (integers), settled costs in 1e-12 USD (the usage
record's `cost`), added exactly.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from django.conf import settings
from django.db import InterfaceError, OperationalError

from aihub.spend import next_month_start
from city.errors import ApiError
from studios.spend import usd_text

# The window every rate limit counts over: L requests (or tokens) per minute.
PERIOD_MS = 60_000
# Seconds a client refused with budget_unavailable is told to wait: a Redis restart takes a few.
UNAVAILABLE_RETRY_AFTER_SECONDS = 5
# Seconds a client refused for concurrency is told to wait: a slot frees when any call ends.
CONCURRENCY_RETRY_AFTER_SECONDS = 1
# Seconds a call that can never fit (request_too_large) is told to wait: one whole window,
# though waiting alone will not help.
NEVER_FITS_RETRY_AFTER_SECONDS = PERIOD_MS // 1000
PICO_PER_MICRO = 1_000_000  # 1e-12 USD units in one micro-USD
# The database does not answer (or a lock timed out): a record that fails so waits for the next try;
# any other failure is the database refusing the record itself.
DATABASE_AWAY: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)


@dataclass(frozen=True)
class ScopeLimits:
    kind: str  # "studio" | "token"
    id: str  # studio id / token id
    monthly_budget: int | None  # micro-USD
    rpm: int | None
    tpm: int | None
    max_concurrency: int | None


@dataclass
class Reservation:
    call_id: str  # unique per AI call, made by City (never the client's request id)
    studio_id: str  # every key of the call carries this studio as its Redis hash tag
    scopes: tuple[ScopeLimits, ...]  # studio scope always first; token scope when the call has a token
    month: str  # "2026-12": UTC calendar month of the call's start
    cost: int  # worst case, micro-USD (rounded up)
    tokens: int  # worst case tokens (input + output cap), for TPM
    record: dict[str, Any] = field(default_factory=dict)  # the usage record written ("interrupted") if the process dies
    # Set by the reserve: the call took a scope's last concurrency slot, or another call like it would not fit
    # a scope's TPM or budget until this one settles. Its answer then waits for the settlement's reply.
    tight: bool = False


class Backend(Protocol):
    def start(self) -> None: ...

    async def reserve(self, r: Reservation) -> dict[str, str]: ...

    async def settle(
        self, call_id: str, studio_id: str, *, cost: int, tokens: int, record: dict[str, Any], on_written: Callable[[], None] | None = None
    ) -> None: ...

    def settle_later(self, call_id: str, studio_id: str, *, cost: int, tokens: int, record: dict[str, Any]) -> None: ...

    def forget(self, records: list[dict[str, Any]]) -> None: ...

    async def refund(self, refund_id: str, studio_id: str, scopes: list[tuple[str, str]], month: str, cost: int) -> bool: ...


_backends: dict[str, Backend] = {}


def backend() -> Backend:
    """Redis's when REDIS_URL is set (one per URL, so tests may point it elsewhere), else the process's."""
    url = settings.REDIS_URL
    found = _backends.get(url)
    if found is None:
        if url:
            from aihub.ledger_redis import RedisLedger

            found = RedisLedger(url)
        else:
            from aihub.ledger_local import LocalLedger

            found = LocalLedger()
        _backends[url] = found
    return found


async def reserve(r: Reservation) -> dict[str, str]:
    """Reserve `r` on all its scopes at once; the x-ratelimit-* headers for the answer (empty when no
    scope has rpm or tpm). Raises ApiError 429 (rate_limit_exceeded, concurrency_limit_exceeded,
    request_too_large), 402 (monthly_budget_exceeded) or 503 (budget_unavailable); a refused call
    consumes nothing."""
    precheck(r)
    return await backend().reserve(r)


async def settle(
    call_id: str, studio_id: str, *, cost: int, tokens: int, record: dict[str, Any], on_written: Callable[[], None] | None = None
) -> None:
    """Settle a reserved call exactly once: `cost` in 1e-12 USD into the budgets, the TPM difference
    refunded, the concurrency slot released, and `record` (its usage record) handed to the usage
    writer. A second settle, or one after the reaper settled the call, changes nothing.
    `on_written()` is called once the settlement is on its way to Redis (written to its socket) and
    Redis's reply is all that is left: whatever reaches Redis after that finds the call settled. In
    process (no Redis) the settlement is done before this returns, and it is not called."""
    await backend().settle(call_id, studio_id, cost=cost, tokens=tokens, record={**record, "call_id": call_id}, on_written=on_written)


def settle_later(call_id: str, studio_id: str, *, cost: int, tokens: int, record: dict[str, Any]) -> None:
    """What to call when `settle` raised unexpectedly: `record` goes to the usage writer now and the
    counters are settled later (the keeper retries), so no slot or budget stays held. Sync; raises
    nothing of its own."""
    backend().settle_later(call_id, studio_id, cost=cost, tokens=tokens, record={**record, "call_id": call_id})


async def refund(refund_id: str, studio_id: str, scopes: list[tuple[str, str]], month: str, cost: int) -> bool:
    """Give `cost` (1e-12 USD, positive) back to `month`'s spend of each scope ((kind, id): the studio,
    and the token when the call had one), once per `refund_id`; True when this call did it. The refund's
    usage record (negative cost) must be written first: a budget counter rebuilt from the records
    (a restart, Redis losing it) then already has it. With Redis, raises RedisDown when it does not answer."""
    return await backend().refund(refund_id, studio_id, scopes, month, cost)


def start() -> None:
    """Start this process's ledger as its server starts (CITY_SERVER_STARTUP): with Redis, the keeper
    (heartbeat, retries, reaper); embedded, the replay of crashed processes' journals. Idempotent, again
    after a fork; never blocks (servers may call it inside their event loop)."""
    backend().start()


def stop() -> None:
    """End this process's keeper threads now rather than at its exit (atexit): for tests, before their
    database is dropped under a keeper still reaping it. Embedded, there is no thread to end."""
    from aihub.ledger_redis import RedisLedger

    for found in _backends.values():
        if isinstance(found, RedisLedger):
            found.keeper.close()


def forget(records: list[dict[str, Any]]) -> None:
    """The usage writer has committed these records: their reservations may go (sync; writer thread)."""
    if any(record.get("call_id") for record in records):
        backend().forget(records)


# --- checks and answers shared by both backends -------------------------------------------------


def precheck(r: Reservation) -> None:
    """The refusal that needs no counter: more tokens than a whole minute's TPM."""
    for scope in r.scopes:
        if scope.tpm is not None and r.tokens > scope.tpm:
            raise ApiError(
                429,
                f"This call may use up to {r.tokens:,} tokens, more than this {scope.kind}'s whole limit of "
                f"{scope.tpm:,} tokens per minute, so it can never fit as it is, however long it waits; "
                "lower max_tokens or shorten the input.",
                code="request_too_large",
                headers={**never_fits_headers(), **rate_headers([("tokens", scope.tpm, scope.tpm, 0)])},
            )


def split_cost(cost: int) -> tuple[int, int]:
    """1e-12 USD → (whole micro-USD, the remainder in 1e-12 USD)."""
    return divmod(cost, PICO_PER_MICRO)


def duration(ms: int) -> str:
    """A duration as OpenAI's headers write it (Go's time.Duration): `12ms`, `1s`, `1m30.5s`, `6m0s`."""
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds = f"{rest // 1000}" + (f".{rest % 1000:03d}".rstrip("0") if rest % 1000 else "")
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


def rate_headers(states: list[tuple[str, int, int, int]]) -> dict[str, str]:
    """x-ratelimit-* from (unit "requests"|"tokens", limit, remaining, reset ms) of every scope: for each
    unit, the scope with the least remaining (the one that refuses first)."""
    headers: dict[str, str] = {}
    for unit in ("requests", "tokens"):
        mine = [state for state in states if state[0] == unit]
        if not mine:
            continue
        _, limit, left, reset = min(mine, key=lambda state: (state[2], -state[3]))
        headers[f"x-ratelimit-limit-{unit}"] = str(limit)
        headers[f"x-ratelimit-remaining-{unit}"] = str(left)
        headers[f"x-ratelimit-reset-{unit}"] = duration(reset)
    return headers


def never_fits_headers() -> dict[str, str]:
    seconds = NEVER_FITS_RETRY_AFTER_SECONDS
    return {"Retry-After": str(seconds), "retry-after-ms": str(seconds * 1000)}


@dataclass(frozen=True)
class Window:
    """One scope's sliding log as a reserve saw it: `calls` and `tokens` counted in the last PERIOD_MS
    (with the call, when admitted), and `reset_ms`, the time until its newest entry leaves (then the
    scope is back to its initial state)."""

    calls: int
    tokens: int
    reset_ms: int

    def states(self, scope: ScopeLimits) -> list[tuple[str, int, int, int]]:
        """Header states (unit, limit, remaining, reset ms) of `scope`'s limits."""
        states = []
        if scope.rpm:
            states.append(("requests", scope.rpm, max(0, scope.rpm - self.calls), self.reset_ms if self.calls else 0))
        if scope.tpm:
            states.append(("tokens", scope.tpm, max(0, scope.tpm - self.tokens), self.reset_ms if self.tokens else 0))
        return states


def rate_limited(scope: ScopeLimits, window: Window, wait_requests: int, wait_tokens: int, tokens: int) -> ApiError:
    """429 rate_limit_exceeded for `scope`, the one whose log keeps the call out longest: Retry-After
    and retry-after-ms say when enough entries have left for it to fit (wait_* 0: that unit fits now),
    and the headers give both units of the scope."""
    wait_ms = max(wait_requests, wait_tokens, 1)
    seconds = math.ceil(wait_ms / 1000)
    headers = {"Retry-After": str(seconds), "retry-after-ms": str(wait_ms)}
    headers.update(rate_headers(window.states(scope)))
    reached = []
    if wait_requests:
        reached.append(f"{scope.rpm or 0:,} requests")
    if wait_tokens:
        reached.append(f"{scope.tpm or 0:,} tokens")
    limits = " and ".join(reached)
    tokens_note = f" ({window.tokens:,} tokens counted, this call may use {tokens:,})" if wait_tokens else ""
    message = (
        f"This {scope.kind}'s rate limit{'s' if len(reached) > 1 else ''} of {limits} per minute "
        f"{'are' if len(reached) > 1 else 'is'} reached{tokens_note}; retry in {seconds} s."
    )
    return ApiError(429, message, code="rate_limit_exceeded", headers=headers)


def concurrency_limited(scope: ScopeLimits) -> ApiError:
    limit = scope.max_concurrency or 0
    seconds = CONCURRENCY_RETRY_AFTER_SECONDS
    return ApiError(
        429,
        f"This {scope.kind} already has {limit:,} calls in flight, its plan's limit; retry when one ends.",
        code="concurrency_limit_exceeded",
        headers={"Retry-After": str(seconds), "retry-after-ms": str(seconds * 1000)},
    )


def budget_exceeded(scope: ScopeLimits, month: str, spent: int, held: int, cost: int) -> ApiError:
    """402 monthly_budget_exceeded: which scope, its budget, what is spent and held, when it resets."""
    budget = scope.monthly_budget or 0
    resets = next_month_start(datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC))
    in_flight = f" and {dollars(held)} is reserved by calls in flight" if held else ""
    return ApiError(
        402,
        f"This {scope.kind}'s monthly budget of {dollars(budget)} does not cover this call (up to {dollars(cost)}): "
        f"{dollars(spent)} is spent in {month}{in_flight}. It resets at {resets:%Y-%m-%dT%H:%M:%SZ}; "
        "ask the studio admin to raise it, or lower max_tokens.",
        code="monthly_budget_exceeded",
    )


def budget_unavailable() -> ApiError:
    return ApiError(
        503,
        "City's budget counters (REDIS_URL) do not answer, so calls under a monthly budget are refused. Try again in a few seconds.",
        code="budget_unavailable",
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)},
    )


def dollars(micro: int) -> str:
    """Micro-USD as people read dollars, exactly: '$12.50', '$0.000123' (as the admin pages show them)."""
    return usd_text(Decimal(micro).scaleb(-6))


def has_budget(r: Reservation) -> bool:
    return any(scope.monthly_budget is not None for scope in r.scopes)
