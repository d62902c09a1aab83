"""This month's usage and spend of an account, from the AI hub's usage records (one per call)."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Sum
from django.utils import timezone

from aihub.models import COST_UNITS_PER_USD, UsageRecord
from aihub.spend import month_start


@dataclass(frozen=True)
class Usage:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: int = 0  # 1e-12 USD, as the usage records keep it

    @property
    def dollars(self) -> str:
        """Spend to a hundredth of a cent, e.g. "$0.0042", so that small calls still show."""
        return f"${Decimal(self.cost) / COST_UNITS_PER_USD:.4f}"


@dataclass(frozen=True)
class MonthUsage:
    since: datetime
    total: Usage
    by_token: dict[str, Usage] = field(default_factory=dict)


def month_usage(studio_id: str, account_id: str, now: datetime | None = None) -> MonthUsage:
    """Calls made this calendar month (UTC) with any of the account's tokens, in total and per token. One query."""
    since = month_start(now or timezone.now())
    rows = (
        UsageRecord.objects.filter(studio_id=studio_id, account_id=account_id, created_at__gte=since)
        .values("token_id")
        .annotate(requests=Count("id"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), cost=Sum("cost"))
        .order_by()
    )
    by_token = {row["token_id"] or "": Usage(row["requests"], row["prompt"] or 0, row["completion"] or 0, row["cost"] or 0) for row in rows}
    total = Usage(
        requests=sum(u.requests for u in by_token.values()),
        prompt_tokens=sum(u.prompt_tokens for u in by_token.values()),
        completion_tokens=sum(u.completion_tokens for u in by_token.values()),
        cost=sum(u.cost for u in by_token.values()),
    )
    return MonthUsage(since=since, total=total, by_token=by_token)
