"""Usage rollups: each usage record, as it is written, added to its hour × studio × token × model row,
and to the same row of its UTC day.

Only the records an INSERT really wrote are added (the insert's RETURNING says which): a record
written twice — by this process's writer and by the ledger's reaper, say — is skipped the second
time, so the rollups stay the exact sums of the records, across any number of writers.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection

from aihub.metering import CLIENT_CLOSED, REFUNDED

SUMMED = ("requests", "errors", "cancelled", "prompt_tokens", "completion_tokens", "cached_tokens", "units", "cost", "latency_ms")
KEY = ("hour", "studio_id", "token_id", "account_id", "model")


@dataclass
class Sums:
    requests: int = 0
    errors: int = 0
    cancelled: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    units: int = 0
    cost: int = 0
    latency_ms: int = 0
    last_at: datetime | None = None

    def add(self, record: dict[str, Any], when: datetime) -> None:
        status = record["status"]
        if record.get("error_code") != REFUNDED:  # a refund gives back a call's cost and units: it is no request
            self.requests += 1
            self.latency_ms += record["latency_ms"]
        if status == CLIENT_CLOSED:
            self.cancelled += 1
        elif not 200 <= status < 300:
            self.errors += 1
        self.prompt_tokens += record["prompt_tokens"]
        self.completion_tokens += record["completion_tokens"]
        self.cached_tokens += record.get("cached_tokens") or 0
        self.units += record.get("units") or 0
        self.cost += record["cost"]
        if self.last_at is None or when > self.last_at:
            self.last_at = when


def hour_of(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def sums_of(records: Iterable[tuple[dict[str, Any], datetime]]) -> dict[tuple[Any, ...], Sums]:
    """The records' sums by rollup key; `records` pairs each record with its created_at as a datetime."""
    sums: dict[tuple[Any, ...], Sums] = {}
    for record, when in records:
        key = (hour_of(when), record["studio_id"], record.get("token_id") or "", record.get("account_id") or "", record["model"])
        sums.setdefault(key, Sums()).add(record, when)
    return sums


def by_day(sums: dict[tuple[Any, ...], Sums]) -> dict[tuple[Any, ...], Sums]:
    """Hourly sums added up by UTC day: the keys of aihub_usagedailyrollup."""
    days: dict[tuple[Any, ...], Sums] = {}
    for (hour, *rest), s in sums.items():
        day = days.setdefault((hour.date(), *rest), Sums())
        for name in SUMMED:
            setattr(day, name, getattr(day, name) + getattr(s, name))
        if day.last_at is None or (s.last_at is not None and s.last_at > day.last_at):
            day.last_at = s.last_at
    return days


def add(sums: dict[tuple[Any, ...], Sums]) -> None:
    """Add to the hourly and the daily rollups, inside the caller's transaction."""
    if not sums:
        return
    from aihub.models import UsageDailyRollup, UsageRollup

    adapt = connection.ops.adapt_datetimefield_value
    _upsert(UsageRollup._meta.db_table, KEY, sums, adapt)
    _upsert(UsageDailyRollup._meta.db_table, ("day", *KEY[1:]), by_day(sums), connection.ops.adapt_datefield_value)


def _upsert(db_table: str, key: tuple[str, ...], sums: dict[tuple[Any, ...], Sums], adapt_first: Any) -> None:
    """Keys in sorted order, so that two writers adding to the same rows lock them in the same order
    (no deadlock on PostgreSQL)."""
    quote = connection.ops.quote_name
    table = quote(db_table)
    columns = [*key, *SUMMED, "last_at"]
    updates = ", ".join(f"{quote(name)} = {table}.{quote(name)} + excluded.{quote(name)}" for name in SUMMED)
    last_at = quote("last_at")
    sql = (
        f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "  # noqa: S608 (names from the model)
        f"ON CONFLICT ({', '.join(quote(c) for c in key)}) DO UPDATE SET {updates}, "
        f"{last_at} = CASE WHEN excluded.{last_at} > {table}.{last_at} THEN excluded.{last_at} ELSE {table}.{last_at} END"
    )
    adapt = connection.ops.adapt_datetimefield_value
    rows = []
    for k in sorted(sums):
        s = sums[k]
        rows.append([adapt_first(k[0]), *k[1:], *(getattr(s, name) for name in SUMMED), adapt(s.last_at)])
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
