"""Usage, summed from the rollups (aihub/rollups.py): what `ai/usage` and the admin's dashboard show.

Rollups are hourly and daily, so a range is whole UTC hours: `start` is taken down to its hour and
`end` (exclusive) up to the next one. The whole UTC days of a range are read from the daily rollups,
its ragged ends (and any range grouped by hour) from the hourly ones: one query for a range of whole
days or of hours only, two otherwise.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import TruncDay

from aihub.models import UsageDailyRollup, UsageRollup
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

    def split(self) -> tuple[list[tuple[datetime, datetime]], tuple[date, date] | None]:
        """The range as hour spans for the hourly rollups and [first day, end day) for the daily ones."""
        start, end = self.hours()
        first_day = _midnight(start) if start == _midnight(start) else _midnight(start) + timedelta(days=1)
        end_day = _midnight(end)
        if first_day >= end_day:
            return [(start, end)], None
        edges = [(a, b) for a, b in ((start, first_day), (end_day, end)) if a < b]
        return edges, (first_day.date(), end_day.date())


def _midnight(when: datetime) -> datetime:
    return datetime.combine(when.date(), time(), tzinfo=UTC)


def _filtered(found: QuerySet, f: UsageFilter) -> QuerySet:
    for column, wanted in (("studio_id", f.studio_id), ("token_id", f.token_id), ("account_id", f.account_id), ("model", f.model)):
        if wanted is not None:
            found = found.filter(**{column: wanted})
    return found


def rollups(f: UsageFilter, spans: list[tuple[datetime, datetime]] | None = None) -> QuerySet[UsageRollup]:
    """The hourly rollups of the filter (of `spans` of it, if given)."""
    within = Q()
    for start, end in spans if spans is not None else [f.hours()]:
        within |= Q(hour__gte=start, hour__lt=end)
    return _filtered(UsageRollup.objects.filter(within), f)


def daily_rollups(f: UsageFilter, days: tuple[date, date]) -> QuerySet[UsageDailyRollup]:
    return _filtered(UsageDailyRollup.objects.filter(day__gte=days[0], day__lt=days[1]), f)


def parts(f: UsageFilter, by_hour: bool = False) -> list[QuerySet]:
    if by_hour:
        return [rollups(f)]
    spans, days = f.split()
    parts: list[QuerySet] = [rollups(f, spans)] if spans else []
    return [*parts, daily_rollups(f, days)] if days is not None else parts


def _sums() -> dict[str, Any]:
    return {name: Sum(name) for name in SUMMED}


def totals(f: UsageFilter) -> dict[str, int]:
    """The sums over the whole filter (zeros when nothing matched)."""
    found = {name: 0 for name in SUMMED}
    for part in parts(f):
        for name, value in part.aggregate(**_sums()).items():
            found[name] += value or 0
    return found


def grouped(f: UsageFilter, group_by: str) -> list[dict[str, Any]]:
    """One row per group: {"key": the hour or day (a datetime), model, token, studio or account id, and the
    sums}; by time ascending, else by cost descending."""
    column = GROUPS[group_by]
    merged: dict[Any, dict[str, int]] = {}
    for part in parts(f, by_hour=group_by == "hour"):
        if group_by == "day" and part.model is UsageRollup:
            part = part.annotate(day=TruncDay("hour", tzinfo=UTC))
        for row in part.values(column).annotate(**_sums()).order_by():
            key = row.pop(column)
            if group_by == "day" and not isinstance(key, datetime):
                key = datetime.combine(key, time(), tzinfo=UTC)  # a daily rollup's date
            sums = merged.setdefault(key, dict.fromkeys(SUMMED, 0))
            for name in SUMMED:
                sums[name] += row[name] or 0
    keys = sorted(merged) if group_by in TIME_GROUPS else sorted(merged, key=lambda k: (-merged[k]["cost"], k))
    return [{"key": key, **merged[key]} for key in keys]
