"""The studios service: studios (tenants) and their user tokens."""

from typing import Any

from django.db.models import Q
from django.utils import timezone

from city.calls import Call
from city.errors import ApiError
from city.pagination import id_cursor, page
from city.registry import ADMIN, USER, Action, Service
from city.timestamps import iso
from studios import operations
from studios.models import Studio, UserToken
from studios.serializers import (
    OwnStudioInput,
    StudioCreateInput,
    StudioListInput,
    StudioRefInput,
    TokenApplyInput,
    TokenListInput,
    TokenRefInput,
)


def studio_json(studio: Studio) -> dict[str, Any]:
    return {
        "id": studio.id,
        "object": "studio",
        "name": studio.name,
        "status": studio.status,
        "created_at": iso(studio.created_at),
        "updated_at": iso(studio.updated_at),
        "paused_at": iso(studio.paused_at),
        "removed_at": iso(studio.removed_at),
    }


def token_json(token: UserToken, raw: str | None = None) -> dict[str, Any]:
    body = {
        "id": token.id,
        "object": "user_token",
        "prefix": token.prefix,
        "studio_id": token.studio_id,
        "name": token.name,
        "status": token.status,
        "created_at": iso(token.created_at),
        "expires_at": iso(token.expires_at),
        "last_used_at": iso(token.last_used_at),
        "rotated_at": iso(token.rotated_at),
        "revoked_at": iso(token.revoked_at),
    }
    if raw is not None:
        body["token"] = raw  # shown this once; City keeps only its digest
    return body


def studios_list(call: Call) -> dict[str, Any]:
    data = call.data
    studios = Studio.objects.order_by("-id")
    if "status" in data:
        studios = studios.filter(status=data["status"])
    if data.get("search"):
        term = data["search"].strip()
        studios = studios.filter(Q(name__icontains=term) | Q(id=term))
    return page(studios, data, studio_json, cursor_type=id_cursor("studio"))


def studios_create(call: Call) -> dict[str, Any]:
    data = call.data
    return studio_json(operations.create_studio(data["name"], actor=call.identity))


def _status_action(status: str):
    def handler(call: Call) -> dict[str, Any]:
        data = call.data
        return studio_json(operations.set_studio_status(data["studio_id"], status, actor=call.identity))

    return handler


def studios_me(call: Call) -> dict[str, Any]:
    """The caller's own studio and token (user credential)."""
    studio_id = call.studio_id()
    token = UserToken.objects.select_related("studio").filter(id=call.identity.token_id, studio_id=studio_id).first()
    if token is None:
        raise ApiError(404, "This call needs a studio token.", code="token_not_found")
    return {"studio": studio_json(token.studio), "token": token_json(token)}


def _own_account(call: Call) -> str | None:
    """None for the admin; for an account's token, that account (it manages only its own tokens).

    Any other user token is refused (403): plain studio tokens manage nothing.
    """
    if call.identity.is_admin:
        return None
    if call.identity.account_id is None:
        raise ApiError(
            403, "This action is for the admin credential or an account's own token; yours is a studio token.", code="not_allowed"
        )
    return call.identity.account_id


def tokens_apply(call: Call) -> dict[str, Any]:
    data = call.data
    account_id = _own_account(call)
    token, raw = operations.issue_token(
        call.studio_id(), data["name"], expires_at=data.get("expires_at"), actor=call.identity, account_id=account_id
    )
    return token_json(token, raw)


def tokens_list(call: Call) -> dict[str, Any]:
    data = call.data
    tokens = UserToken.objects.order_by("-id")
    account_id = _own_account(call)
    if account_id is not None:
        tokens = tokens.filter(studio_id=call.studio_id(), account_id=account_id)
    elif "studio_id" in data:
        tokens = tokens.filter(studio_id=data["studio_id"])
    now = timezone.now()
    status = data["status"]
    if status == "active":
        tokens = tokens.filter(revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    elif status == "revoked":
        tokens = tokens.filter(revoked_at__isnull=False)
    elif status == "expired":
        tokens = tokens.filter(revoked_at__isnull=True, expires_at__lte=now)
    listed = page(tokens, data, token_json, cursor_type=id_cursor("tok"))
    if account_id is None and "studio_id" in data and not listed["items"]:
        require_studio(data["studio_id"])  # an empty page of an unknown studio is a typo, not "no tokens"
    return listed


def require_studio(studio_id: str) -> None:
    """404 naming `studio_id` when no studio has it (removed studios exist: their history stays)."""
    if not Studio.objects.filter(id=studio_id).exists():
        raise ApiError(404, f"No studio {studio_id}; studios/list shows the studios.", param="studio_id", code="studio_not_found")


def _token_scope(call: Call, data: dict[str, Any]) -> dict[str, str | None]:
    account_id = _own_account(call)
    if account_id is None:
        return {"studio_id": data.get("studio_id"), "account_id": None}
    return {"studio_id": call.studio_id(), "account_id": account_id}


def tokens_revoke(call: Call) -> dict[str, Any]:
    data = call.data
    return token_json(operations.revoke_token(data["token_id"], actor=call.identity, **_token_scope(call, data)))


def tokens_rotate(call: Call) -> dict[str, Any]:
    data = call.data
    token, raw = operations.rotate_token(data["token_id"], actor=call.identity, **_token_scope(call, data))
    return token_json(token, raw)


ADMIN_ONLY = (ADMIN,)
# The admin, or an account's own token for its own tokens (plain studio tokens are refused in the handler).
ADMIN_OR_ACCOUNT = (ADMIN, USER)

SERVICE = Service(
    id="studios",
    name="Studios",
    description="Studios (tenants) and their user tokens.",
    actions=(
        Action(
            "list",
            studios_list,
            methods=("GET",),
            allow=ADMIN_ONLY,
            input=StudioListInput,
            description="Filter by status, search by name; keyset pages",
        ),
        Action("create", studios_create, allow=ADMIN_ONLY, audit=True, input=StudioCreateInput, description="Create {name}"),
        Action(
            "pause",
            _status_action(Studio.Status.PAUSED),
            allow=ADMIN_ONLY,
            audit=True,
            input=StudioRefInput,
            description="Pause {studio_id}: its tokens get 403",
        ),
        Action(
            "activate",
            _status_action(Studio.Status.ACTIVE),
            allow=ADMIN_ONLY,
            audit=True,
            input=StudioRefInput,
            description="Activate {studio_id}",
        ),
        Action(
            "remove",
            _status_action(Studio.Status.REMOVED),
            allow=ADMIN_ONLY,
            audit=True,
            input=StudioRefInput,
            description="Remove {studio_id} for good: its tokens get 401",
        ),
        Action("me", studios_me, methods=("GET",), allow=(USER,), input=OwnStudioInput, description="The caller's studio and token"),
        Action(
            "tokens/apply",
            tokens_apply,
            allow=ADMIN_OR_ACCOUNT,
            audit=True,
            input=TokenApplyInput,
            description="Issue a user token {studio_id, name, expires_at?}, shown once; an account's token issues its own",
        ),
        Action(
            "tokens/list",
            tokens_list,
            methods=("GET",),
            allow=ADMIN_OR_ACCOUNT,
            input=TokenListInput,
            description="Tokens without secrets; filter by studio_id, status; an account sees its own",
        ),
        Action(
            "tokens/revoke",
            tokens_revoke,
            allow=ADMIN_OR_ACCOUNT,
            audit=True,
            input=TokenRefInput,
            description="Revoke {token_id}; an account revokes its own",
        ),
        Action(
            "tokens/rotate",
            tokens_rotate,
            allow=ADMIN_OR_ACCOUNT,
            audit=True,
            input=TokenRefInput,
            description="New secret for {token_id}, shown once; the old one dies; an account rotates its own",
        ),
    ),
)
