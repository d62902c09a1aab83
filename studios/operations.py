"""Every state change of studios and tokens goes through these functions: API, admin and commands alike.

Each runs in one transaction with its audit entry.
"""

import secrets
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from city import invalidation
from city.audit import record
from city.errors import ApiError
from city.keys import token_digest
from studios.models import Studio, UserToken
from studios.plan_operations import locked_plan

TOKEN_PREFIX = "ub_"


def new_raw_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)  # 43 URL-safe characters, 256 random bits


@transaction.atomic
def create_studio(name: str, *, actor: Any) -> Studio:
    studio = Studio.objects.create(name=name)
    record(actor, "studios/create", target=studio.id)
    return studio


def _locked_studio(studio_id: str) -> Studio:
    studio = Studio.objects.select_for_update().filter(id=studio_id).first()
    if studio is None:
        raise ApiError(404, f"No studio {studio_id}; studios/list shows the studios.", param="studio_id", code="studio_not_found")
    return studio


@transaction.atomic
def set_studio_status(studio_id: str, status: str, *, actor: Any) -> Studio:
    """Pause, activate or remove. Removal is final; repeating a transition changes nothing."""
    studio = _locked_studio(studio_id)
    verbs: dict[str, str] = {Studio.Status.PAUSED: "pause", Studio.Status.ACTIVE: "activate", Studio.Status.REMOVED: "remove"}
    verb = verbs[status]
    if studio.status == Studio.Status.REMOVED and status != Studio.Status.REMOVED:
        raise ApiError(
            409, f"Studio {studio.id} is removed; removal is final. Create a new studio instead.", param="studio_id", code="studio_removed"
        )
    if studio.status == status:
        return studio
    now = timezone.now()
    studio.status, studio.updated_at = status, now
    fields = ["status", "updated_at"]
    if status == Studio.Status.PAUSED:
        studio.paused_at = now
        fields.append("paused_at")
    if status == Studio.Status.REMOVED:
        studio.removed_at = now
        fields.append("removed_at")
    studio.save(update_fields=fields)
    record(actor, f"studios/{verb}", target=studio.id)
    # Every process answers from the new state at once (within the token cache's TTL if the broadcast is lost).
    invalidation.publish("studio", studio.id)
    return studio


@transaction.atomic
def issue_token(
    studio_id: str, name: str, *, expires_at: datetime | None, actor: Any, account_id: str | None = None, plan_id: str | None = None
) -> tuple[UserToken, str]:
    """Returns the token and its raw secret, which is never stored and cannot be shown again.

    With `account_id`, the token belongs to that account, which must be active and of this studio.
    With `plan_id`, the token gets that plan (404 plan_not_found if there is none).
    """
    studio = _locked_studio(studio_id)
    if studio.status == Studio.Status.REMOVED:
        raise ApiError(409, f"Studio {studio.id} is removed; it cannot get new tokens.", param="studio_id", code="studio_removed")
    _check_expiry(expires_at)
    if account_id is not None:
        _account_check()(account_id, studio.id)
    plan = locked_plan(plan_id) if plan_id is not None else None
    raw = new_raw_token()
    token = UserToken.objects.create(
        studio=studio, name=name, prefix=raw[:11], digest=token_digest(raw), expires_at=expires_at, account_id=account_id, plan=plan
    )
    detail = {"studio_id": studio.id, "prefix": token.prefix}
    if account_id is not None:
        detail["account_id"] = account_id
    if plan is not None:
        detail["plan_id"] = plan.id
    record(actor, "studios/tokens/apply", target=token.id, detail=detail)
    return token, raw


AccountCheck = Callable[[str, str], None]


@cache
def _account_check() -> AccountCheck:
    """settings.STUDIOS_TOKEN_ACCOUNT_CHECK(account_id, studio_id): raises ApiError unless that account of
    that studio may get a new token, and holds it so until the transaction ends. Studios know accounts
    only as the owners of tokens: the app that manages them names the check, studios never import it."""
    return import_string(settings.STUDIOS_TOKEN_ACCOUNT_CHECK)


def _check_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None and expires_at <= timezone.now():
        raise ApiError(400, "expires_at must be in the future.", param="expires_at", code="invalid_field")


def _locked_token(token_id: str, studio_id: str | None, account_id: str | None = None) -> UserToken:
    tokens = UserToken.objects.select_for_update().filter(id=token_id)
    if studio_id is not None:
        tokens = tokens.filter(studio_id=studio_id)
    if account_id is not None:
        tokens = tokens.filter(account_id=account_id)
    token = tokens.first()
    if token is None:
        raise ApiError(404, f"No token {token_id}; studios/tokens/list shows the tokens.", param="token_id", code="token_not_found")
    return token


@transaction.atomic
def revoke_token(token_id: str, *, actor: Any, studio_id: str | None = None, account_id: str | None = None) -> UserToken:
    """Revoking twice keeps the first revocation time. Every process refuses it at once.

    `studio_id` and `account_id` scope the search: a token outside them is not found (404).
    """
    token = _locked_token(token_id, studio_id, account_id)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        invalidation.publish("token", token.digest)
        record(actor, "studios/tokens/revoke", target=token.id, detail={"prefix": token.prefix})
    return token


@transaction.atomic
def rotate_token(token_id: str, *, actor: Any, studio_id: str | None = None, account_id: str | None = None) -> tuple[UserToken, str]:
    """Same token id, new secret; the old secret stops working at once, in every process."""
    token = _locked_token(token_id, studio_id, account_id)
    if token.status != "active":
        raise ApiError(
            409, f"Token {token.id} is {token.status}; issue a new token instead.", param="token_id", code=f"token_{token.status}"
        )
    if Studio.objects.filter(id=token.studio_id, status=Studio.Status.REMOVED).exists():
        # A new secret would be refused at once (401): say so instead of handing out a dead one.
        raise ApiError(409, f"Token {token.id} belongs to a removed studio; removal is final.", param="token_id", code="studio_removed")
    raw = new_raw_token()
    old_prefix, old_digest = token.prefix, token.digest
    token.prefix, token.digest, token.rotated_at = raw[:11], token_digest(raw), timezone.now()
    token.save(update_fields=["prefix", "digest", "rotated_at"])
    invalidation.publish("token", old_digest)
    record(actor, "studios/tokens/rotate", target=token.id, detail={"old_prefix": old_prefix, "prefix": token.prefix})
    return token, raw
