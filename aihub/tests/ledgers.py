"""Reservations and usage records for the ledger's tests (and their worker processes)."""

from typing import Any

from django.utils import timezone

from aihub import ledger
from studios.spend import month_key


def make_record(studio_id: str, call_id: str, cost: int, *, token_id: str | None = None, status: int = 200) -> dict[str, Any]:
    """A usage record as the pipeline writes it, `cost` in 1e-12 USD."""
    return {
        "created_at": timezone.now(),
        "studio_id": studio_id,
        "token_id": token_id,
        "account_id": None,
        "request_id": f"req_{call_id}",
        "model": "gpt-5-mini",
        "provider": "openai",
        "modality": "chat",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "usage_estimated": False,
        "cost": cost,
        "latency_ms": 3,
        "ttft_ms": None,
        "status": status,
        "error_code": "",
        "call_id": call_id,
    }


def make_reservation(
    studio_id: str, call_id: str, *scopes: ledger.ScopeLimits, cost: int = 1, tokens: int = 10, token_id: str | None = None
) -> ledger.Reservation:
    """A call reserving `cost` micro-USD and `tokens`; its record, written if it is reaped, says "interrupted"."""
    record = make_record(studio_id, call_id, cost * 1_000_000, token_id=token_id, status=499)
    record["error_code"] = "interrupted"
    record["created_at"] = record["created_at"].isoformat()
    return ledger.Reservation(
        call_id=call_id, studio_id=studio_id, scopes=scopes, month=month_key(timezone.now()), cost=cost, tokens=tokens, record=record
    )


def limits(scope_id: str, kind: str = "studio", **values: Any) -> ledger.ScopeLimits:
    """A scope with the given limits (rpm=…, tpm=…, max_concurrency=…, monthly_budget=…), none else."""
    fields = {"monthly_budget": None, "rpm": None, "tpm": None, "max_concurrency": None, **values}
    return ledger.ScopeLimits(kind=kind, id=scope_id, **fields)
