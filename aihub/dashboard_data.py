"""What the admin's dashboard reads of the usage rollups beyond aihub/usage_query.py's totals: the
sums by day × model, and the top few studios or tokens by cost, with usage_query's filters, range
and split (whole days from the daily rollups, ragged ends from the hourly ones).

One reading by day × model serves three parts of the page: the stacked chart, the requests and
errors per day, and the totals (sums of its rows, so equal to usage_query.totals(f)): one pass over
the rows where totals() and grouped(f, "day") would make two more (timed by bench/usage_scale.py).
"""

from datetime import UTC, datetime, time
from typing import Any

from django.db.models import Sum

from aihub.models import UsageDailyRollup
from aihub.rollups import SUMMED
from aihub.usage_query import UsageFilter, grouped, parts

# What the page shows: every sum but the latency (each SUM costs its share of a scan of the range).
SHOWN = tuple(name for name in SUMMED if name != "latency_ms")


def by_day_and_model(f: UsageFilter) -> list[dict[str, Any]]:
    """{"day": a UTC datetime at midnight, "model", and the sums of SHOWN} for every day × model with
    rows, by day then model. The whole days from the daily rollups, the ragged ends from the hourly
    ones (folded into their days here: at most two days of hours, and SQLite would truncate each
    row's date in a Python function): one query, or two."""
    days: dict[tuple[datetime, str], dict[str, Any]] = {}
    for part in parts(f):
        daily = part.model is UsageDailyRollup
        for row in part.values("day" if daily else "hour", "model").annotate(**_sums(SHOWN)).order_by():
            day = datetime.combine(row["day"], time(), tzinfo=UTC) if daily else row["hour"].astimezone(UTC).replace(hour=0)
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
    """The `limit` studios or tokens (`by`) that cost most in the filter: {"key": id, and the sums},
    cost descending. Calls without a token (the admin's) are left out of the tokens. One query, or two."""
    rows = grouped(f, by)
    if by == "token":
        rows = [row for row in rows if row["key"]]
    return rows[:limit]
