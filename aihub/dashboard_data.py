"""The readings of the usage rollups the admin's dashboard makes beyond aihub/usage_query.py: the
sums by day × model, and the top few studios or tokens by cost (LIMITed in the database, not sorted
in Python). Both read UsageRollup through usage_query.rollups(f), so they take the same filters and
the same whole-hour range.

One scan by day × model serves three parts of the page: the stacked chart, the requests and errors
per day, and the totals (sums of its rows, so equal to usage_query.totals(f)). Over the 90 days of
rollups of 5 million records that is one pass over the rows where totals() and grouped(f, "day")
would make two more (bench/admin_usage_pages.py).
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.db.models import F, Sum
from django.db.models.functions import TruncDay

from aihub.rollups import SUMMED
from aihub.usage_query import UsageFilter, rollups

# What the page shows: every sum but the latency (each SUM costs its share of a scan of the range).
SHOWN = tuple(name for name in SUMMED if name != "latency_ms")
RANKED = ("requests", "errors", "cost")  # the columns of the top studios and tokens

TOP_COLUMNS = {"studio": "studio_id", "token": "token_id"}


def by_day_and_model(f: UsageFilter) -> list[dict[str, Any]]:
    """{"day": a UTC datetime at midnight, "model", and the sums of SHOWN} for every day × model with
    rows, by day then model. One query."""
    if connection.vendor == "sqlite":
        # SQLite truncates dates in a Python function called per row (tens of µs each: 2.6 s over 30 days
        # of 5 million records' rollups); summing by hour in SQL and folding the hours here is cheaper.
        return _fold_hours_into_days(rollups(f).values("hour", "model").annotate(**_sums(SHOWN)).order_by("hour", "model"))
    rows = rollups(f).annotate(day=TruncDay("hour", tzinfo=UTC)).values("day", "model").annotate(**_sums(SHOWN))
    return [dict(row) for row in rows.order_by("day", "model")]


def _fold_hours_into_days(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    days: dict[tuple[datetime, str], dict[str, Any]] = {}
    for row in rows:
        day = row["hour"].astimezone(UTC).replace(hour=0)
        sums = days.setdefault((day, row["model"]), {"day": day, "model": row["model"], **dict.fromkeys(SHOWN, 0)})
        for name in SHOWN:
            sums[name] += row[name] or 0
    return [days[key] for key in sorted(days)]


def totals_of(rows: list[dict[str, Any]]) -> dict[str, int]:
    """The sums over rows of by_day_and_model: usage_query.totals(f) (but the latency), without another query."""
    return {name: sum(row[name] or 0 for row in rows) for name in SHOWN}


def per_day(rows: list[dict[str, Any]]) -> dict[datetime, dict[str, int]]:
    """The sums by day, over the models, of rows of by_day_and_model."""
    days: dict[datetime, dict[str, int]] = {}
    for row in rows:
        day = days.setdefault(row["day"], dict.fromkeys(SHOWN, 0))
        for name in SHOWN:
            day[name] += row[name] or 0
    return days


def _sums(names: tuple[str, ...]) -> dict[str, Any]:
    return {name: Sum(name) for name in names}


def top(f: UsageFilter, by: str, limit: int) -> list[dict[str, Any]]:
    """The `limit` studios or tokens (`by`) that cost most in the filter: {"key": id, and the sums of
    RANKED}, cost descending. Calls without a token (the admin's) are left out of the tokens. One query."""
    column = TOP_COLUMNS[by]
    found = rollups(f)
    if by == "token":
        found = found.exclude(token_id="")
    rows = found.values(column).annotate(**_sums(RANKED)).order_by(F("cost").desc(), column)[:limit]
    return [{"key": row.pop(column), **row} for row in rows]
