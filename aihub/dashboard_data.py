"""The readings of the usage rollups the admin's dashboard makes beyond aihub/usage_query.py: the
sums by day × model, and the top few studios or tokens by cost (LIMITed in the database, not sorted
in Python). Both read UsageRollup through usage_query.rollups(f), so they take the same filters and
the same whole-hour range.

One scan by day × model serves three parts of the page: the stacked chart, the requests and errors
per day, and the totals (sums of its rows, so equal to usage_query.totals(f)). Over the 90 days of
rollups of 5 million records that is one pass over the rows where totals() and grouped(f, "day")
would make two more (bench/admin_usage_pages.py).
"""

from datetime import UTC, datetime
from typing import Any

from django.db.models import F, Sum
from django.db.models.functions import TruncDay

from aihub.rollups import SUMMED
from aihub.usage_query import UsageFilter, rollups

TOP_COLUMNS = {"studio": "studio_id", "token": "token_id"}


def by_day_and_model(f: UsageFilter) -> list[dict[str, Any]]:
    """{"day": a UTC datetime at midnight, "model", and the sums of SUMMED} for every day × model with
    rows, by day then model. One query."""
    rows = rollups(f).annotate(day=TruncDay("hour", tzinfo=UTC)).values("day", "model").annotate(**_sums())
    return [dict(row) for row in rows.order_by("day", "model")]


def totals_of(rows: list[dict[str, Any]]) -> dict[str, int]:
    """The sums over rows of by_day_and_model: usage_query.totals(f), without another query."""
    return {name: sum(row[name] or 0 for row in rows) for name in SUMMED}


def per_day(rows: list[dict[str, Any]]) -> dict[datetime, dict[str, int]]:
    """The sums by day, over the models, of rows of by_day_and_model."""
    days: dict[datetime, dict[str, int]] = {}
    for row in rows:
        day = days.setdefault(row["day"], dict.fromkeys(SUMMED, 0))
        for name in SUMMED:
            day[name] += row[name] or 0
    return days


def _sums() -> dict[str, Any]:
    return {name: Sum(name) for name in SUMMED}


def top(f: UsageFilter, by: str, limit: int) -> list[dict[str, Any]]:
    """The `limit` studios or tokens (`by`) that cost most in the filter: {"key": id, sums…}, cost
    descending. Calls without a token (the admin's) are left out of the tokens. One query."""
    column = TOP_COLUMNS[by]
    found = rollups(f)
    if by == "token":
        found = found.exclude(token_id="")
    rows = found.values(column).annotate(**_sums()).order_by(F("cost").desc(), column)[:limit]
    return [{"key": row.pop(column), **row} for row in rows]
