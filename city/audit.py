"""The audit log: every admin operation, from the API or the Django admin."""

from typing import Any

from city.models import AuditEntry


def actor_label(actor: Any) -> str:
    """An Identity, a Django user, or a plain string, as the audit log names it."""
    label = getattr(actor, "label", None)
    if label:
        return str(label)
    username = getattr(actor, "get_username", None)
    if username is not None:
        return f"admin:{username()}"
    return str(actor)


def record(actor: Any, action: str, *, target: str = "", outcome: str = "ok", detail: dict[str, Any] | None = None) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor_label(actor)[:200], action=action[:100], target=target[:200], outcome=outcome[:100], detail=detail or {}
    )
