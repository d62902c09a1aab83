"""What a studio or a token has spent this month, and how often and how lately it called, read from
the hourly usage rollups (aihub/rollups.py): exact (1e-12 USD), and a month is at most 744 hours of
rows per scope, however many records it holds.

The budget counters are rebuilt from month_cost when they are missing (embedded mode at start, Redis
after a flush), and the admin's studio and token pages show both (through settings.STUDIOS_MONTH_SPEND
and settings.STUDIOS_MONTH_ACTIVITY, so that studios never import aihub).
"""

from datetime import UTC, datetime

from django.db.models import Max, QuerySet, Sum

from aihub.models import UsageRollup


def month_start(when: datetime) -> datetime:
    """The first instant of `when`'s calendar month in UTC: budgets reset then."""
    when = when.astimezone(UTC)
    return when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(when: datetime) -> datetime:
    start = month_start(when)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


def _month_rollups(kind: str, scope_id: str, month: str) -> QuerySet[UsageRollup]:
    # A month starts on an hour, so its hourly rows hold exactly its records (indexes by studio or token, then hour).
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    rows = UsageRollup.objects.filter(hour__gte=start, hour__lt=next_month_start(start))
    return rows.filter(studio_id=scope_id) if kind == "studio" else rows.filter(token_id=scope_id)


def month_cost(kind: str, scope_id: str, month: str) -> int:
    """The cost (1e-12 USD) of the usage of a studio (`kind` "studio") or a token ("token") in
    `month` ('2026-12'). One query."""
    return _month_rollups(kind, scope_id, month).aggregate(total=Sum("cost"))["total"] or 0


def month_activity(kind: str, scope_id: str, month: str) -> tuple[int, datetime | None]:
    """(calls, the last call's time) of a studio or a token in `month`; (0, None) without calls. One query."""
    found = _month_rollups(kind, scope_id, month).aggregate(requests=Sum("requests"), last_at=Max("last_at"))
    return found["requests"] or 0, found["last_at"]
