"""This month's usage and spend of an account, from the AI hub's usage rollups (aihub/usage_query.py)."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from aihub.models import COST_UNITS_PER_USD
from aihub.spend import month_start
from aihub.usage_query import UsageFilter, grouped


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
    """Calls made this calendar month (UTC) with any of the account's tokens, in total and per token; at most two queries."""
    now = now or timezone.now()
    since = month_start(now)
    rows = grouped(UsageFilter(start=since, end=now, studio_id=studio_id, account_id=account_id), "token")
    by_token = {row["key"]: Usage(row["requests"], row["prompt_tokens"], row["completion_tokens"], row["cost"]) for row in rows}
    total = Usage(
        requests=sum(u.requests for u in by_token.values()),
        prompt_tokens=sum(u.prompt_tokens for u in by_token.values()),
        completion_tokens=sum(u.completion_tokens for u in by_token.values()),
        cost=sum(u.cost for u in by_token.values()),
    )
    return MonthUsage(since=since, total=total, by_token=by_token)
