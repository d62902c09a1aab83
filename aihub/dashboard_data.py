"""The two readings of the usage rollups the admin's dashboard needs beyond aihub/usage_query.py:
cost by day × model (the stacked chart) and the top few studios or tokens by cost (LIMITed in the
database, not sorted in Python). Both read UsageRollup through usage_query.rollups(f), so they take
the same filters and the same whole-hour range.
"""

from datetime import UTC, datetime
from typing import Any

from django.db.models import F, Sum
from django.db.models.functions import TruncDay

from aihub.rollups import SUMMED
from aihub.usage_query import UsageFilter, rollups

TOP_COLUMNS = {"studio": "studio_id", "token": "token_id"}


def cost_by_day_and_model(f: UsageFilter) -> list[tuple[datetime, str, int]]:
    """(day, model, cost in 1e-12 USD) for every day × model with rows, by day then model. One query."""
    rows = rollups(f).annotate(day=TruncDay("hour", tzinfo=UTC)).values("day", "model").annotate(spent=Sum("cost"))
    return [(row["day"], row["model"], row["spent"] or 0) for row in rows.order_by("day", "model")]


def top(f: UsageFilter, by: str, limit: int) -> list[dict[str, Any]]:
    """The `limit` studios or tokens (`by`) that cost most in the filter: {"key": id, sums…}, cost
    descending. Calls without a token (the admin's) are left out of the tokens. One query."""
    column = TOP_COLUMNS[by]
    found = rollups(f)
    if by == "token":
        found = found.exclude(token_id="")
    rows = found.values(column).annotate(**{name: Sum(name) for name in SUMMED}).order_by(F("cost").desc(), column)[:limit]
    return [{"key": row.pop(column), **row} for row in rows]
