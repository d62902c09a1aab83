"""Usage records for tests, written the way City writes them (insert_records: records and rollups
together), so that pages and routes reading the rollups see them."""

from itertools import count
from typing import Any

from django.utils import timezone

from aihub.metering import insert_records

_numbers = count(1)


def usage_record(**fields: Any) -> dict[str, Any]:
    """A whole usage record: a 200 chat call of 'deepseek-v4-flash' costing nothing, unless `fields` say otherwise."""
    n = next(_numbers)
    return {
        "created_at": timezone.now(),
        "call_id": f"call_test_{n}",
        "token_id": None,
        "account_id": None,
        "request_id": f"req_test_{n}",
        "model": "deepseek-v4-flash",
        "provider": "deepseek",
        "modality": "chat",
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "usage_estimated": False,
        "cost": 0,
        "latency_ms": 0,
        "ttft_ms": None,
        "status": 200,
        "error_code": "",
        **fields,
    }


def write_usage(*records: dict[str, Any]) -> None:
    """Write `usage_record(**r)` for each of `records` (each needs at least a studio_id)."""
    insert_records([usage_record(**r) for r in records])
