"""Usage, summed from the rollups (aihub/rollups.py): what `ai/usage` and the admin's dashboard show.

Rollups are hourly, so a range is whole UTC hours: `start` is taken down to its hour and `end`
(exclusive) up to the next one.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import F, QuerySet, Sum
from django.db.models.functions import TruncDay

from aihub.models import UsageRollup
from aihub.rollups import SUMMED, hour_of

# group_by → the rollup column (or expression) rows are keyed by
GROUPS = {"hour": "hour", "day": "day", "model": "model", "token": "token_id", "studio": "studio_id", "account": "account_id"}
TIME_GROUPS = ("hour", "day")


@dataclass(frozen=True)
class UsageFilter:
    start: datetime
    end: datetime
    studio_id: str | None = None
    token_id: str | None = None
    account_id: str | None = None
    model: str | None = None

    def hours(self) -> tuple[datetime, datetime]:
        end = hour_of(self.end)
        return hour_of(self.start), end if end == self.end.astimezone(UTC) else end + timedelta(hours=1)


def rollups(f: UsageFilter) -> QuerySet[UsageRollup]:
    start, end = f.hours()
    found = UsageRollup.objects.filter(hour__gte=start, hour__lt=end)
    for column, wanted in (("studio_id", f.studio_id), ("token_id", f.token_id), ("account_id", f.account_id), ("model", f.model)):
        if wanted is not None:
            found = found.filter(**{column: wanted})
    return found


def _sums() -> dict[str, Any]:
    return {name: Sum(name) for name in SUMMED}


def totals(f: UsageFilter) -> dict[str, int]:
    """The sums over the whole filter (zeros when nothing matched)."""
    found = rollups(f).aggregate(**_sums())
    return {name: found[name] or 0 for name in SUMMED}


def grouped(f: UsageFilter, group_by: str) -> list[dict[str, Any]]:
    """One row per group: {"key": the hour or day (a datetime), model, token, studio or account id, and the
    sums}; by time ascending, else by cost descending."""
    column = GROUPS[group_by]
    found = rollups(f)
    if group_by == "day":
        found = found.annotate(day=TruncDay("hour", tzinfo=UTC))
    rows = found.values(column).annotate(**_sums())
    ordered = rows.order_by(column) if group_by in TIME_GROUPS else rows.order_by(F("cost").desc(), column)
    return [{"key": row.pop(column), **row} for row in ordered]
