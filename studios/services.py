"""The studios service: studios (tenants) and their user tokens."""

from typing import Any

from django.db.models import Q
from django.utils import timezone

from city.calls import Call
from city.errors import ApiError
from city.pagination import id_cursor, page
from city.registry import ADMIN, USER, Action, Service
from city.timestamps import iso
from studios import operations, plan_operations
from studios.models import Plan, Studio, UserToken
from studios.money import micros_to_usd
from studios.serializers import (
    OwnStudioInput,
    PlanAssignInput,
    PlanCreateInput,
    PlanListInput,
    PlanRefInput,
    PlanUpdateInput,
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
        "plan_id": studio.plan_id,
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
        "plan_id": token.plan_id,
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
    if account_id is not None and "plan_id" in data:
        raise ApiError(403, "Only the admin gives a token a plan; leave plan_id out.", param="plan_id", code="not_allowed")
    token, raw = operations.issue_token(
        call.studio_id(),
        data["name"],
        expires_at=data.get("expires_at"),
        actor=call.identity,
        account_id=account_id,
        plan_id=data.get("plan_id"),
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


# --- Plans -----------------------------------------------------------------------------------


def plan_json(plan: Plan) -> dict[str, Any]:
    counted = getattr(plan, "studios_count", None)
    if counted is None:  # a plan fresh from an operation: count its holders
        plan = plan_operations.plans_with_usage().get(id=plan.id)
    return {
        "id": plan.id,
        "object": "plan",
        "name": plan.name,
        "models": plan.models,
        "max_cost_per_request": micros_to_usd(plan.max_cost_per_request),
        "monthly_budget": micros_to_usd(plan.monthly_budget),
        "rpm": plan.rpm,
        "tpm": plan.tpm,
        "max_concurrency": plan.max_concurrency,
        "studios": plan.studios_count,  # type: ignore[attr-defined]  # annotated
        "tokens": plan.tokens_count,  # type: ignore[attr-defined]
        "created_at": iso(plan.created_at),
        "updated_at": iso(plan.updated_at),
    }


PLAN_FIELDS = ("name", *plan_operations.LIMIT_FIELDS)


def plans_list(call: Call) -> dict[str, Any]:
    data = call.data
    plans = plan_operations.plans_with_usage().order_by("-id")
    if data.get("search"):
        term = data["search"].strip()
        plans = plans.filter(Q(name__icontains=term) | Q(id=term))
    return page(plans, data, plan_json, cursor_type=id_cursor("plan"))


def plans_create(call: Call) -> dict[str, Any]:
    data = call.data
    limits = {field: data[field] for field in plan_operations.LIMIT_FIELDS if field in data}
    return plan_json(plan_operations.create_plan(data["name"], limits, actor=call.identity))


def plans_update(call: Call) -> dict[str, Any]:
    data = call.data
    changes = {field: data[field] for field in PLAN_FIELDS if field in data}
    return plan_json(plan_operations.update_plan(data["plan_id"], changes, actor=call.identity))


def plans_remove(call: Call) -> dict[str, Any]:
    plan = plan_operations.remove_plan(call.data["plan_id"], actor=call.identity)
    return {"id": plan.id, "object": "plan", "name": plan.name, "removed": True}


def plans_assign(call: Call) -> dict[str, Any]:
    data = call.data
    held = plan_operations.assign_plan(data["plan_id"], studio_id=data.get("studio_id"), token_id=data.get("token_id"), actor=call.identity)
    return studio_json(held) if isinstance(held, Studio) else token_json(held)


ADMIN_ONLY = (ADMIN,)
# The admin, or an account's own token for its own tokens (plain studio tokens are refused in the handler).
ADMIN_OR_ACCOUNT = (ADMIN, USER)

SERVICE = Service(
    id="studios",
    name="Studios",
    description="Studios (tenants), their user tokens, and the plans that limit them.",
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
        Action(
            "plans/list",
            plans_list,
            methods=("GET",),
            allow=ADMIN_ONLY,
            input=PlanListInput,
            description="Plans with how many live studios and tokens hold each; search by name; keyset pages",
        ),
        Action(
            "plans/create",
            plans_create,
            allow=ADMIN_ONLY,
            audit=True,
            input=PlanCreateInput,
            description="Create {name, models?, max_cost_per_request?, monthly_budget?, rpm?, tpm?, max_concurrency?}; dollars as numbers",
        ),
        Action(
            "plans/update",
            plans_update,
            allow=ADMIN_ONLY,
            audit=True,
            input=PlanUpdateInput,
            description="Change {plan_id, …fields}: a field given replaces, null clears a limit (models: null allows every model)",
        ),
        Action(
            "plans/remove",
            plans_remove,
            allow=ADMIN_ONLY,
            audit=True,
            input=PlanRefInput,
            description="Remove {plan_id}; 409 while a live studio or token holds it",
        ),
        Action(
            "plans/assign",
            plans_assign,
            allow=ADMIN_ONLY,
            audit=True,
            input=PlanAssignInput,
            description="Give {plan_id} (null: none) to one studio_id or one token_id; a token's plan wins over its studio's",
        ),
        Action("me", studios_me, methods=("GET",), allow=(USER,), input=OwnStudioInput, description="The caller's studio and token"),
        Action(
            "tokens/apply",
            tokens_apply,
            allow=ADMIN_OR_ACCOUNT,
            audit=True,
            input=TokenApplyInput,
            description="Issue a user token {studio_id, name, expires_at?, plan_id?}, shown once; an account's token issues its own",
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
