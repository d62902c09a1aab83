"""What a studio or a token has spent this month, read from the usage records (exact, 1e-12 USD).

The budget counters are rebuilt from this when they are missing (embedded mode at start, Redis after
a flush), and the admin's studio and token pages show it.
"""

from datetime import UTC, datetime

from django.db.models import Sum

from aihub.models import UsageRecord


def month_start(when: datetime) -> datetime:
    """The first instant of `when`'s calendar month in UTC: budgets reset then."""
    when = when.astimezone(UTC)
    return when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(when: datetime) -> datetime:
    start = month_start(when)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


def month_cost(kind: str, scope_id: str, month: str) -> int:
    """The cost (1e-12 USD) of the usage records of a studio (`kind` "studio") or a token ("token")
    in `month` ('2026-12')."""
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    records = UsageRecord.objects.filter(created_at__gte=start, created_at__lt=next_month_start(start))
    records = records.filter(studio_id=scope_id) if kind == "studio" else records.filter(token_id=scope_id)
    return records.aggregate(total=Sum("cost"))["total"] or 0
