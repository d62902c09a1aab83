"""This month's spend, calls and last call of a studio or a token, for the admin pages.

Studios do not know where usage is recorded: settings.STUDIOS_MONTH_SPEND names a function
`month_cost(kind, scope_id, month) -> int`, kind "studio" or "token", month "2026-12" (UTC), the
cost in 1e-12 USD, and settings.STUDIOS_MONTH_ACTIVITY a function `month_activity(kind, scope_id,
month) -> (calls, last call's datetime or None)` (by default aihub.spend's, which read the hourly
usage rollups).
"""

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from studios.money import picousd_to_decimal

log = logging.getLogger("studios.spend")

MonthCost = Callable[[str, str, str], int]
MonthActivity = Callable[[str, str, str], tuple[int, datetime | None]]


@cache
def _month_cost() -> MonthCost:
    return import_string(settings.STUDIOS_MONTH_SPEND)


@cache
def _month_activity() -> MonthActivity:
    return import_string(settings.STUDIOS_MONTH_ACTIVITY)


def month_key(when: datetime) -> str:
    """'2026-12': the UTC calendar month budgets count `when` in."""
    return when.astimezone(UTC).strftime("%Y-%m")


def month_spend(kind: str, scope_id: str, when: datetime | None = None) -> Decimal:
    """Dollars spent by the studio or token in `when`'s month (now by default), exact to 1e-12."""
    return picousd_to_decimal(_month_cost()(kind, scope_id, month_key(when or timezone.now())))


def spend_text(kind: str, scope_id: str) -> str:
    """'$12.34 in 2026-12 (UTC)' for a page; says so when the spend cannot be read, rather than failing the page."""
    now = timezone.now()
    try:
        dollars = month_spend(kind, scope_id, now)
    except Exception:
        log.exception("this month's spend of %s %s could not be read", kind, scope_id)
        return "unknown: the usage records could not be read"
    return f"{usd_text(dollars)} in {month_key(now)} (UTC)"


def activity_text(kind: str, scope_id: str) -> tuple[str, str]:
    """('1,234 in 2026-12 (UTC)', '2026-12-06 13:21 UTC') for a page: this month's calls and the last
    one's time; says so when they cannot be read, rather than failing the page."""
    now = timezone.now()
    month = month_key(now)
    try:
        calls, last_at = _month_activity()(kind, scope_id, month)
    except Exception:
        log.exception("this month's calls of %s %s could not be read", kind, scope_id)
        return "unknown: the usage could not be read", "unknown"
    last = f"{last_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if last_at else f"no call in {month} (UTC)"
    return f"{calls:,} in {month} (UTC)", last


def usd_text(dollars: Decimal) -> str:
    """Exact, with at least cents: $0.00, $12.50, $0.000001234."""
    text = f"{dollars.normalize():f}"
    whole, _, decimals = text.partition(".")
    return f"${int(whole):,}.{decimals.ljust(2, '0')}"
