"""Usage records: one per call that went upstream, written off the response path.

Why a writer thread: a record must never delay the answer, and none may be lost on a normal
shutdown. Daphne gives an app no shutdown hook (it speaks no ASGI lifespan), and an asyncio task
would die with whatever loop it was started on. So `Meter.finish()` only puts the record on a
thread-safe queue (a microsecond, in the request's `finally`); one writer thread per process
wakes at most every FLUSH_INTERVAL_SECONDS and inserts everything queued with one `executemany`
(raw SQL: the ORM's per-row Python work would hold the GIL that the event loop needs); and an
`atexit` hook — which runs after Daphne's or uvicorn's graceful stop — drains the rest before the
process exits.
"""

import atexit
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from aihub.catalog_types import Model
from city.calls import Call
from city.ids import new_id

log = logging.getLogger("aihub.metering")

MAX_BATCH_RECORDS = 2000  # records per transaction
FLUSH_INTERVAL_SECONDS = 0.2  # a record reaches the database within about this long
SHUTDOWN_FLUSH_SECONDS = 10.0  # how long exit waits for the last records
_STOP = object()

# Statuses recorded for calls that did not finish normally.
CLIENT_CLOSED = 499  # the client went away before the answer was complete (nginx's convention)
# The error code of a refund's record (aihub/refunds.py: a failed video job's money and units given
# back), which is no call of its own.
REFUNDED = "refunded"


@dataclass
class Meter:
    """Measures one call from its creation; `finish()` queues its usage record."""

    call: Call
    studio_id: str
    model: Model
    modality: str
    # The reservation's (input tokens, output cap): City's counts stay within it (see estimate()).
    ceiling: tuple[int, int]
    # Media: the units the call is billed in (Model.unit) and their price, micro-USD per million (the
    # model's unit_price, or the variant's the route chose); `units` is what was made, `worst_units` reserved.
    unit_price: int = 0
    units: int = 0
    worst_units: int = 0
    started: float = field(default_factory=time.monotonic)
    created_at: datetime = field(default_factory=timezone.now)
    provider: str = ""
    deployment: str = ""  # the upstream's model name, at the provider that answered (or failed last)
    streamed: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0  # of the writes, those kept an hour (priced apart; not a column of their own)
    # The input price the reservation used when not the model's (Worst.input_price: a request asking
    # for prompt caching), so that a crash bills the worst case it reserved.
    worst_input_price: int | None = None
    reasoning_tokens: int = 0
    usage_estimated: bool = False
    ttft_ms: int | None = None
    finished: bool = False
    call_id: str = field(default_factory=lambda: new_id("call"))  # City's own, unique: the client's request id may repeat
    on_finish: Callable[[dict[str, Any]], None] = field(default=lambda record: _submit(record), repr=False)

    def first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = int((time.monotonic() - self.started) * 1000)

    def use(self, usage: dict[str, Any] | None) -> bool:
        """Take the upstream's own usage (OpenAI shape); False when it reported none."""
        if not isinstance(usage, dict):
            return False
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not isinstance(prompt, int):
            return False
        self.prompt_tokens = prompt
        self.completion_tokens = completion if isinstance(completion, int) else 0
        # DeepSeek reports its cache hits as prompt_cache_hit_tokens (besides, lately, OpenAI's field).
        self.cached_tokens = _detail(usage, "prompt_tokens_details", "cached_tokens") or _count(usage.get("prompt_cache_hit_tokens"))
        # Anthropic's cache writes, as its adapter reports them (OpenAI's usage has no such count).
        self.cache_write_tokens = _detail(usage, "prompt_tokens_details", "cache_creation_tokens") or _detail(
            usage,
            "prompt_tokens_details",
            "cache_write_tokens",  # OpenRouter's name for them
        )
        self.cache_write_1h_tokens = _detail(usage, "prompt_tokens_details", "cache_creation_1h_tokens")
        self.reasoning_tokens = _detail(usage, "completion_tokens_details", "reasoning_tokens")
        self.usage_estimated = False
        return True

    def estimate(self, completion_tokens: int) -> None:
        """Counted by City, only when the upstream reported no usage: the prompt as the reservation
        counted it (exactly, where a plan needs it), the output as counted but never past its cap, so
        a rough count never bills past what was reserved."""
        prompt_tokens, output_cap = self.ceiling
        self.prompt_tokens, self.completion_tokens, self.usage_estimated = prompt_tokens, min(completion_tokens, output_cap), True

    def estimate_worst(self) -> None:
        """The worst case the call reserved: the model may have run without telling what it used."""
        self.estimate(self.ceiling[1])
        self.units = self.worst_units

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }

    def record(self, status: int, error_code: str = "", *, at_worst: bool = False) -> dict[str, Any]:
        """The call's usage record as it stands (UsageRecord's attribute names); `at_worst`, with the
        reservation's worst case instead of what was measured (billed if the process dies)."""
        identity = self.call.identity
        prompt, completion = self.ceiling if at_worst else (self.prompt_tokens, self.completion_tokens)
        units = self.worst_units if at_worst else self.units
        return {
            "created_at": self.created_at,
            "call_id": self.call_id,
            "studio_id": self.studio_id,
            "token_id": identity.token_id,
            "account_id": identity.account_id,
            "request_id": self.call.request_id,
            "model": self.model.id,
            "provider": self.provider,
            "modality": self.modality,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "usage_estimated": self.usage_estimated or at_worst,
            "cost": (
                (
                    prompt * (self.model.input_price if self.worst_input_price is None else self.worst_input_price)
                    if at_worst
                    else self.model.prompt_cost(prompt, self.cached_tokens, self.cache_write_tokens, self.cache_write_1h_tokens)
                )
                + completion * self.model.output_price
                + units * self.unit_price
            ),
            "latency_ms": int((time.monotonic() - self.started) * 1000),
            "ttft_ms": self.ttft_ms,
            "status": status,
            "error_code": (error_code or "")[:100],
            "route": self.call.action.name,
            "deployment": self.deployment[:200],
            "streamed": self.streamed,
            "cancelled": status == CLIENT_CLOSED,
            "cached_tokens": 0 if at_worst else self.cached_tokens,
            "cache_write_tokens": 0 if at_worst else self.cache_write_tokens,
            "reasoning_tokens": 0 if at_worst else self.reasoning_tokens,
            "unit": self.model.unit,
            "units": units,
        }

    def finish(self, status: int = 200, error_code: str = "") -> None:
        """Once per call: hand the record to `on_finish` (the pipeline settles the call with it)."""
        if self.finished:
            return
        self.finished = True
        self.on_finish(self.record(status, error_code))


def _detail(usage: dict[str, Any], details: str, name: str) -> int:
    """usage[details][name] when the upstream reported it as a count, else 0."""
    found = usage.get(details)
    return _count(found.get(name) if isinstance(found, dict) else None)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


class UsageWriter:
    """The process's one writer of usage records (see the module docstring)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._unwritten = 0  # records submitted and not yet through _write

    def submit(self, record: dict[str, Any]) -> None:
        if self._thread is None:
            self._start()
        with self._lock:
            self._unwritten += 1
        self._queue.put(record)

    def wait_idle(self, timeout: float = SHUTDOWN_FLUSH_SECONDS) -> bool:
        """Wait until every record submitted so far went through the writer (tests); False past `timeout`."""
        deadline = time.monotonic() + timeout
        while self._unwritten and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._unwritten

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="aihub-usage-writer", daemon=True)
                thread.start()
                atexit.register(self.close)
                self._thread = thread

    def close(self, timeout: float = SHUTDOWN_FLUSH_SECONDS) -> None:
        """Write what is queued and stop the writer (atexit; safe to call twice)."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        self._queue.put(_STOP)
        thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            if batch[0] is not _STOP:
                time.sleep(FLUSH_INTERVAL_SECONDS)  # let records gather: one INSERT for many calls
            while len(batch) < MAX_BATCH_RECORDS:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if _STOP in batch:
                stopping = True
                batch = [record for record in batch if record is not _STOP]
            if batch:
                try:
                    self._write(batch)
                finally:
                    with self._lock:
                        self._unwritten -= len(batch)
        close_old_connections()

    def _write(self, batch: list[dict[str, Any]]) -> None:
        """One INSERT for the batch; if it fails, each record alone (a record the database refuses,
        such as one whose studio was deleted meanwhile, must not take the others down with it).
        Then the ledger drops the reservations of the records written (they are durable now); a
        record that could not be written keeps its reservation, for the ledger's reaper to retry."""
        try:
            close_old_connections()
            insert_records(batch)
            self._forget(batch)
            return
        except Exception:
            if len(batch) == 1:
                time.sleep(0.5)  # perhaps the database was briefly away: one more try
        for record in batch:
            try:
                insert_records([record])
                self._forget([record])
            except Exception:
                log.exception("could not write the usage record of request %s", record.get("request_id"))

    def _forget(self, records: list[dict[str, Any]]) -> None:
        from aihub import ledger

        try:
            ledger.forget(records)
        except Exception:
            log.exception("could not drop the reservations of %s written records", len(records))


def insert_records(records: list[dict[str, Any]]) -> None:
    """INSERT the records (dicts keyed by UsageRecord's attribute names; `created_at` a datetime or an ISO
    string; `call_id` optional) and add them to the rollups, in one transaction. Idempotent per
    call_id: a record whose call_id is already written is skipped, in the rollups too (ON CONFLICT
    DO NOTHING … RETURNING tells which rows were new, on PostgreSQL and SQLite alike)."""
    from aihub import rollups
    from aihub.models import UsageRecord

    fields = [f for f in UsageRecord._meta.concrete_fields if not f.primary_key]
    records = once_per_call(records)
    insert = _insert_unnested if connection.vendor == "postgresql" else _insert_rows
    with transaction.atomic(), connection.cursor() as cursor:
        new = insert(cursor, fields, records)
        written = [(record, created_at(record)) for record in records if record.get("call_id") is None or record["call_id"] in new]
        rollups.add(rollups.sums_of(written))


def _insert_unnested(cursor: Any, fields: list[Any], records: list[dict[str, Any]]) -> set[str]:
    """PostgreSQL: one statement whose text never changes, an array per column, sent in binary. The
    usage writer's time is mostly Python's, holding the GIL the event loop needs: a statement of one
    `%s` per value (thousands) is parsed anew each time and quotes each value alone (three times the
    work of an array per column); and Django's cursor binds on the client, where psycopg writes each
    array as text, escaping every element with a regular expression: half the writer's CPU again, which
    binary arrays on psycopg's own cursor (bound by the server, in the same transaction) do not cost."""
    with psycopg.Cursor(connection.connection) as raw:

        def execute(sql: str, params: list[Any], many: bool, context: dict[str, Any]) -> None:
            # prepare=False: no server-side prepared statement, which a pooler in transaction mode loses.
            raw.execute(sql, params, prepare=False)

        # As Django's own cursor does: the connection's execute_wrappers see the statement, and psycopg's
        # errors come out as Django's (the ledger tells a database that is away, OperationalError, from
        # one that refuses a record) and mark the connection for Django to close.
        for wrapper in reversed(connection.execute_wrappers):
            execute = functools.partial(wrapper, execute)
        with connection.wrap_database_errors:
            execute(
                _unnest_insert(tuple(fields)),
                [column_values(records, f.attname) for f in fields],
                False,
                {"connection": connection, "cursor": raw},
            )
            return {call_id for (call_id,) in raw.fetchall()}


@functools.cache
def _unnest_insert(fields: tuple[Any, ...]) -> str:
    from aihub.models import UsageRecord

    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    arrays = ", ".join(f"%b::{f.db_type(connection)}[]" for f in fields)
    return (
        f"INSERT INTO {quote(UsageRecord._meta.db_table)} ({columns}) SELECT * FROM unnest({arrays}) "  # noqa: S608 (names from the model, values as parameters)
        f"ON CONFLICT ({quote('call_id')}) DO NOTHING RETURNING {quote('call_id')}"
    )


def _insert_rows(cursor: Any, fields: list[Any], records: list[dict[str, Any]]) -> set[str]:
    """SQLite: multi-row INSERTs of at most ROWS_PER_STATEMENT rows."""
    from aihub.models import UsageRecord

    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    names = [f.attname for f in fields]
    row = f"({', '.join(['%s'] * len(fields))})"
    new: set[str] = set()
    for start in range(0, len(records), ROWS_PER_STATEMENT):
        chunk = records[start : start + ROWS_PER_STATEMENT]
        cursor.execute(
            "INSERT INTO {} ({}) VALUES {} ON CONFLICT ({}) DO NOTHING RETURNING {}".format(  # noqa: S608 (names from the model, values as parameters)
                quote(UsageRecord._meta.db_table), columns, ", ".join([row] * len(chunk)), quote("call_id"), quote("call_id")
            ),
            [value for values in zip(*(column_values(chunk, name) for name in names), strict=True) for value in values],
        )
        new.update(call_id for (call_id,) in cursor.fetchall())
    return new


def once_per_call(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first record of each call_id: a call whose record reached one batch twice (settled and also
    handed to settle_later after a failure) would have both copies pass RETURNING's test."""
    seen: set[str] = set()
    kept = []
    for record in records:
        call_id = record.get("call_id")
        if call_id is not None:
            if call_id in seen:
                continue
            seen.add(call_id)
        kept.append(record)
    return kept


# Rows per INSERT: under SQLite's 32,766 and PostgreSQL's 65,535 parameters, with room for new columns.
ROWS_PER_STATEMENT = 500


def created_at(record: dict[str, Any]) -> datetime:
    """A record's created_at as a datetime (records from the ledger carry it as an ISO string)."""
    when = record["created_at"]
    return datetime.fromisoformat(when) if isinstance(when, str) else when


def column_values(records: list[dict[str, Any]], name: str) -> list[Any]:
    """A column's values: `created_at` adapted to the database, `call_id` None for records made
    without one, the columns added after the ledger's records were made their defaults."""
    if name == "created_at":
        adapt = connection.ops.adapt_datetimefield_value
        return [adapt(created_at(record)) for record in records]
    if name in DEFAULTS:
        default = DEFAULTS[name]
        return [record.get(name, default) for record in records]
    return [record[name] for record in records]


# Columns a record may lack: older records kept by a ledger (journal, Redis) across an upgrade.
DEFAULTS: dict[str, Any] = {
    "call_id": None,
    "route": "",
    "deployment": "",
    "streamed": False,
    "cancelled": False,
    "cached_tokens": 0,
    "cache_write_tokens": 0,
    "reasoning_tokens": 0,
    "unit": "",
    "units": 0,
}


writer = UsageWriter()


def _submit(record: dict[str, Any]) -> None:
    """A meter's default end: its record to the writer (the AI pipeline settles the call instead)."""
    writer.submit(record)


def estimate_tokens(text: str) -> int:
    """A rough count (about four characters a token) for upstreams that report no usage."""
    return (len(text) + 3) // 4 if text else 0
