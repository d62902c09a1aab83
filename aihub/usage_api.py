"""GET or POST /v1/ai/usage: requests, errors, tokens and cost summed from the hourly rollups,
by day, hour, model, token, studio or account, as JSON or CSV.

Who sees what: the admin any studio (every studio when it names none); a studio token its own
studio; a token that belongs to an account only that account's usage (its keys). A filter naming
another studio or account is refused (403); a token id or model of another studio is ANDed with
what the caller may see, so it finds nothing. Costs are dollars, exact: up to 12 decimals.
"""

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from rest_framework import serializers

from aihub.catalog import models_by_id
from aihub.money_json import usd_number, usd_text
from aihub.usage_query import GROUPS, UsageFilter, grouped
from aihub.visibility import visible_scope
from city.calls import Call
from city.validation import StrictCharField

DEFAULT_DAYS = 30
MAX_DAYS = 400  # a year and a bit: a year-on-year view, not a full scan of history
MAX_HOURLY_DAYS = 31  # group_by=hour: at most 744 rows
# The rollups' names as the answer spells them (OpenAI's input/output rather than prompt/completion).
SUMS = {
    "requests": "requests",
    "errors": "errors",
    "cancelled": "cancelled",
    "input_tokens": "prompt_tokens",
    "output_tokens": "completion_tokens",
    "cached_tokens": "cached_tokens",
    "cost": "cost",
}
# group_by → the name of the row's key in the answer
KEY_NAMES = {"hour": "hour", "day": "day", "model": "model", "token": "token_id", "studio": "studio_id", "account": "account_id"}


class InstantField(serializers.CharField):
    """An ISO 8601 datetime ("2026-12-01T10:00:00Z"; without an offset: UTC) or date ("2026-12-01": its midnight, UTC).
    A string field to the OpenAPI document, which has no format for "date or date-time"."""

    default_error_messages = {"invalid": "must be an ISO 8601 date or datetime, such as 2026-12-01 or 2026-12-01T10:00:00Z"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_length, self.max_length = 10, 40  # for the document; checked below (CharField's validators would see the datetime)

    def to_internal_value(self, data: Any) -> datetime:  # type: ignore[override]  # a datetime, not the string
        if not isinstance(data, str) or not 10 <= len(data) <= 40:
            self.fail("invalid")
        try:
            parsed = datetime.fromisoformat(data) if len(data) > 10 else datetime.combine(date.fromisoformat(data), time())
            parsed = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
        except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved to UTC
            self.fail("invalid")
        if not 1970 <= parsed.year <= 9000:  # so that the defaults and the hour rounding stay in datetime's range
            self.fail("invalid")
        return parsed

    def to_representation(self, value: Any) -> str:
        return value.isoformat() if isinstance(value, datetime) else str(value)


class UsageInput(serializers.Serializer):
    start = InstantField(required=False, help_text=f"Inclusive; default: {DEFAULT_DAYS} days before end. Taken down to its hour.")
    end = InstantField(
        required=False, help_text=f"Exclusive; default: now. Taken up to the next hour; at most {MAX_DAYS} days after start."
    )
    studio_id = StrictCharField(max_length=40, required=False, help_text="The admin: one studio (default: all). A token: its own only.")
    token_id = StrictCharField(max_length=40, required=False)
    account_id = StrictCharField(max_length=40, required=False)
    model = StrictCharField(max_length=100, required=False)
    group_by = serializers.ChoiceField(choices=list(GROUPS), default="day", help_text=f"hour: at most {MAX_HOURLY_DAYS} days")
    format = serializers.ChoiceField(choices=["json", "csv"], default="json")

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        end = data.get("end") or timezone.now().astimezone(UTC)
        start = data.get("start") or end - timedelta(days=DEFAULT_DAYS)
        if end <= start:
            raise serializers.ValidationError({"end": "must be after start"})
        if end - start > timedelta(days=MAX_DAYS):
            raise serializers.ValidationError({"end": f"must be at most {MAX_DAYS} days after start"})
        if data["group_by"] == "hour" and end - start > timedelta(days=MAX_HOURLY_DAYS):
            raise serializers.ValidationError({"group_by": f"hour covers at most {MAX_HOURLY_DAYS} days; use day for longer ranges"})
        return {**data, "start": start, "end": end}


def usage_filter(call: Call) -> UsageFilter:
    """The caller's filters, within what it may see."""
    data = call.data
    studio_id, account_id = visible_scope(call)
    return UsageFilter(
        start=data["start"],
        end=data["end"],
        studio_id=studio_id,
        token_id=data.get("token_id"),
        account_id=account_id,
        model=data.get("model"),
    )


def usage(call: Call) -> Any:
    """The grouped rows (one query, two for a range with ragged days: aihub/usage_query.py); the totals
    are their sums, as every rollup row is in exactly one group."""
    f = usage_filter(call)
    group_by = call.data["group_by"]
    rows = [_row(group_by, found) for found in grouped(f, group_by)]
    start, end = f.hours()
    if call.data["format"] == "csv":
        return csv_response(group_by, rows, start, end)
    totals = {name: sum(row[name] for row in rows) for name in SUMS}
    return {
        "object": "usage",
        "start": _instant(start),
        "end": _instant(end),
        "group_by": group_by,
        "rows": [_dollars(row) for row in rows],
        "totals": _dollars(totals),
    }


def _row(group_by: str, found: dict[str, Any]) -> dict[str, Any]:
    key = found["key"]
    if group_by == "day":
        key = key.astimezone(UTC).date().isoformat()
    elif group_by == "hour":
        key = _instant(key)
    elif group_by in ("token", "account"):
        key = key or None  # '' in the rollups: the admin's calls, made without a token or account
    row = {KEY_NAMES[group_by]: key, **{name: found[column] or 0 for name, column in SUMS.items()}}
    if group_by == "model":  # one model bills one unit: its media units add up only per model
        model = models_by_id().get(key)
        row["unit"], row["units"] = (model.unit or None) if model else None, found["units"] or 0
    return row


def _instant(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dollars(row: dict[str, Any]) -> dict[str, Any]:
    """The cost as a JSON number written from its exact decimal text (orjson writes no Decimal, and a
    float would round 12 decimals of a large amount)."""
    return {**row, "cost": usd_number(row["cost"])}


# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_response(group_by: str, rows: list[dict[str, Any]], start: datetime, end: datetime) -> HttpResponse:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    media = ["unit", "units"] if group_by == "model" else []
    writer.writerow([KEY_NAMES[group_by], *SUMS, *media])
    for row in rows:
        sums = [row[name] for name in SUMS if name != "cost"]
        writer.writerow([_cell(row[KEY_NAMES[group_by]]), *sums, usd_text(row["cost"]), *(row[name] or "" for name in media)])
    response = HttpResponse(out.getvalue().encode(), content_type="text/csv; charset=utf-8")
    name = f"usage-{group_by}-{start:%Y%m%dT%H}-{end:%Y%m%dT%H}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
