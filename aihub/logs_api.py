"""`ai/logs`: the request log, one row per AI call (its usage record), newest first.

Who sees what: the admin any studio (every studio when it names none); a studio token its own
studio; a token issued to an account only that account's calls. No prompt or answer is stored, so
none is shown.

Every filter is answered from an index ending in (created_at, id) (aihub/models.py): the page is
one index range whichever filters are set, on 5 million rows as on 50.
"""

import re
from typing import Any

from django.db.models import Q, QuerySet
from rest_framework import serializers

from aihub.metering import CLIENT_CLOSED
from aihub.models import FAILED, UsageRecord
from aihub.money_json import usd_number
from aihub.visibility import visible_scope
from city.calls import Call
from city.pagination import time_page
from city.timestamps import iso
from city.validation import StrictCharField
from studios.services import require_studio

# An exact status ("502"), a class ("4xx", "5xx"), "error" (any failure but the client's going
# away, as ai/usage counts errors) or "cancelled" (the client went away: 499).
STATUS_PATTERN = re.compile(r"[0-9]{1,3}|[1-5]xx|error|cancelled")


class LogsInput(serializers.Serializer):
    studio_id = StrictCharField(max_length=40, required=False)
    token_id = StrictCharField(max_length=40, required=False)
    account_id = StrictCharField(max_length=40, required=False)
    model = StrictCharField(max_length=100, required=False)
    status = StrictCharField(
        max_length=9,
        required=False,
        help_text="An HTTP status (502), a class (2xx, 4xx, 5xx), error (any failure but 499) or cancelled (499).",
    )
    error_code = StrictCharField(max_length=100, required=False)
    request_id = StrictCharField(max_length=64, required=False)
    start = serializers.DateTimeField(required=False, help_text="From this time (ISO 8601, inclusive).")
    end = serializers.DateTimeField(required=False, help_text="Before this time (ISO 8601, exclusive).")
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
    cursor = StrictCharField(max_length=64, required=False)

    def validate_status(self, value: str) -> str:
        value = value.lower()
        if not STATUS_PATTERN.fullmatch(value):
            raise serializers.ValidationError("must be an HTTP status such as 502, a class such as 4xx, error or cancelled.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "start" in attrs and "end" in attrs and attrs["start"] >= attrs["end"]:
            raise serializers.ValidationError({"end": "must be after start."})
        return attrs


def logs(call: Call) -> dict[str, Any]:
    data = call.data
    records = visible_records(call).order_by("-created_at", "-id")
    records = filtered(records, data)
    listed = time_page(records, data, log_json)
    if call.identity.is_admin and "studio_id" in data and not listed["items"] and "cursor" not in data:
        require_studio(data["studio_id"])  # an empty log of an unknown studio is a typo, not "no calls"
    return listed


def visible_records(call: Call) -> QuerySet[UsageRecord]:
    """The records the caller may read (aihub/visibility.py)."""
    studio_id, account_id = visible_scope(call)
    records = UsageRecord.objects.all()
    if studio_id is not None:
        records = records.filter(studio_id=studio_id)
    return records.filter(account_id=account_id) if account_id is not None else records


def filtered(records: QuerySet[UsageRecord], data: dict[str, Any]) -> QuerySet[UsageRecord]:
    for name in ("token_id", "model", "request_id"):
        if name in data:
            records = records.filter(**{name: data[name]})
    if "start" in data:
        records = records.filter(created_at__gte=data["start"])
    if "end" in data:
        records = records.filter(created_at__lt=data["end"])
    if "error_code" in data:
        # Only failures carry an error code: saying so lets the failure indexes answer.
        records = records.filter(FAILED).filter(error_code=data["error_code"])
    if "status" in data:
        records = records.filter(status_condition(data["status"]))
    return records


def status_condition(status: str) -> Q:
    """The records of one status filter (validated by LogsInput). Failures repeat FAILED, so that the
    failure indexes answer them; successes are most rows, which the other indexes serve as well."""
    if status == "error":
        return FAILED & ~Q(status=CLIENT_CLOSED)
    if status == "cancelled":
        return FAILED & Q(status=CLIENT_CLOSED)
    if status.endswith("xx"):
        low = int(status[0]) * 100
        in_class = Q(status__gte=low, status__lt=low + 100)
        return in_class if low == 200 else FAILED & in_class
    exact = Q(status=int(status))
    return exact if 200 <= int(status) < 300 else FAILED & exact


def log_json(record: UsageRecord) -> dict[str, Any]:
    """One call, as the request log shows it (cost in dollars, exact; times in milliseconds)."""
    return {
        "object": "request_log",
        "id": record.call_id,
        "request_id": record.request_id,
        "created_at": iso(record.created_at),
        "route": record.route,
        "model": record.model,
        "provider": record.provider,
        "deployment": record.deployment,
        "status": record.status,
        "error_code": record.error_code or None,
        "input_tokens": record.prompt_tokens,
        "output_tokens": record.completion_tokens,
        "cached_tokens": record.cached_tokens,
        "cache_write_tokens": record.cache_write_tokens,
        "reasoning_tokens": record.reasoning_tokens,
        "unit": record.unit or None,  # media calls: "images", "characters" or "seconds"
        "units": record.units,
        "usage_estimated": record.usage_estimated,
        "cost": usd_number(record.cost),
        "latency_ms": record.latency_ms,
        "ttft_ms": record.ttft_ms,
        "streamed": record.streamed,
        "cancelled": record.cancelled or record.status == CLIENT_CLOSED,  # records from before the column say it by their status
        "studio_id": record.studio_id,
        "token_id": record.token_id,
        "account_id": record.account_id,
    }
