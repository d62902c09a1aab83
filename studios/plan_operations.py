"""Every change of plans and of who holds them: API, admin and commands alike.

Each runs in one transaction with its audit entry, and tells every process after it commits:
("plan", id) drops the plan caches, ("studio", id) a studio's cached state and its tokens' entries
(they carry the studio's plan id), ("token", digest) one token's entry.
"""

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from city import invalidation
from city.audit import record
from city.errors import ApiError
from studios.models import Plan, Studio, UserToken

# What a plan holds besides its name; a given field replaces the stored value, None clears it.
LIMIT_FIELDS = ("models", "max_cost_per_request", "monthly_budget", "rpm", "tpm", "max_concurrency")


def live_studios(plan_ids: Any = None) -> QuerySet[Studio]:
    """Studios that can still call (not removed): those a plan counts as using it."""
    studios = Studio.objects.exclude(status=Studio.Status.REMOVED)
    return studios if plan_ids is None else studios.filter(plan_id__in=plan_ids)


def live_tokens(plan_ids: Any = None) -> QuerySet[UserToken]:
    """Tokens that can still call (neither revoked nor expired)."""
    now = timezone.now()
    tokens = UserToken.objects.filter(revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    return tokens if plan_ids is None else tokens.filter(plan_id__in=plan_ids)


def _holders(queryset: QuerySet, plan_field: str = "plan_id") -> Coalesce:
    """How many rows of `queryset` hold the outer plan: one indexed count per plan, not a join of every token."""
    counted = queryset.filter(**{plan_field: OuterRef("id")}).order_by().values(plan_field).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def plans_with_usage() -> QuerySet[Plan]:
    """Plans with `studios_count` and `tokens_count`: the live studios and tokens that hold each."""
    return Plan.objects.annotate(studios_count=_holders(live_studios()), tokens_count=_holders(live_tokens()))


def locked_plan(plan_id: str, *, param: str = "plan_id") -> Plan:
    """The plan, locked until the transaction ends (so that it cannot be removed meanwhile); 404 if none."""
    plan = Plan.objects.select_for_update().filter(id=plan_id).first()
    if plan is None:
        raise ApiError(404, f"No plan {plan_id}; studios/plans/list shows the plans.", param=param, code="plan_not_found")
    return plan


def _check_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(LIMIT_FIELDS) - {"name"}
    if unknown:
        raise ValueError(f"not a plan field: {sorted(unknown)}")  # a caller's mistake, not a client's


def _check_name_free(name: str, plan_id: str | None = None) -> None:
    # Case-insensitive, so that "Gold" and "gold" never stand side by side in a list.
    taken = Plan.objects.filter(name__iexact=name).exclude(id=plan_id).first()
    if taken is not None:
        raise ApiError(409, f"Plan {taken.id} is already named '{taken.name}'; choose another name.", param="name", code="plan_name_taken")


def _saved(plan: Plan, **kwargs: Any) -> None:
    try:
        with transaction.atomic():  # a savepoint: a name taken meanwhile is refused, not a broken transaction
            plan.save(**kwargs)
    except IntegrityError:
        raise ApiError(409, f"A plan is already named '{plan.name}'; choose another name.", param="name", code="plan_name_taken") from None


@transaction.atomic
def create_plan(name: str, limits: dict[str, Any], *, actor: Any) -> Plan:
    """`limits`: any of LIMIT_FIELDS (money in micro-dollars); those left out are no limit."""
    _check_fields(limits)
    _check_name_free(name)
    plan = Plan(name=name, **limits)
    _saved(plan, force_insert=True)
    record(actor, "studios/plans/create", target=plan.id, detail={"name": plan.name})
    invalidation.publish("plan", plan.id)
    return plan


@transaction.atomic
def update_plan(plan_id: str, changes: dict[str, Any], *, actor: Any) -> Plan:
    """Partial: each field given replaces the stored one (None clears a limit, or allows every model)."""
    _check_fields(changes)
    plan = locked_plan(plan_id)
    changed = [field for field, value in changes.items() if getattr(plan, field) != value]
    if not changed:
        return plan
    if "name" in changed:
        _check_name_free(changes["name"], plan.id)
    for field in changed:
        setattr(plan, field, changes[field])
    plan.updated_at = timezone.now()
    _saved(plan, update_fields=[*changed, "updated_at"])
    record(actor, "studios/plans/update", target=plan.id, detail={"changed": sorted(changed)})
    invalidation.publish("plan", plan.id)
    return plan


@transaction.atomic
def remove_plan(plan_id: str, *, actor: Any) -> Plan:
    """Deletes a plan no live studio or token holds (409 plan_in_use otherwise).

    Removed studios and revoked or expired tokens can never call again: they let go of it here.
    """
    plan = locked_plan(plan_id)
    studios, tokens = live_studios([plan.id]).count(), live_tokens([plan.id]).count()
    if studios or tokens:
        raise ApiError(
            409,
            f"Plan {plan.id} is assigned to {studios} studio(s) and {tokens} token(s). Unassign it first: "
            "studios/plans/assign with {plan_id: null, studio_id: …} or {plan_id: null, token_id: …} for each, "
            f"found by studios/list and studios/tokens/list (or in the admin), then remove it.",
            param="plan_id",
            code="plan_in_use",
        )
    Studio.objects.filter(plan_id=plan.id).update(plan=None)
    UserToken.objects.filter(plan_id=plan.id).update(plan=None)
    removed_id = plan.id
    plan.delete()
    plan.id = removed_id  # delete() clears it; the answer still names the plan it removed
    record(actor, "studios/plans/remove", target=removed_id, detail={"name": plan.name})
    invalidation.publish("plan", removed_id)
    return plan


@transaction.atomic
def assign_plan(plan_id: str | None, *, studio_id: str | None = None, token_id: str | None = None, actor: Any) -> Studio | UserToken:
    """Gives a studio or a token a plan (None takes it away). Name exactly one of `studio_id` and `token_id`.

    A studio's plan limits all its tokens together; a token's plan limits that token and wins over
    its studio's for the whitelist and the per-request cap. Assigning the plan it has changes nothing.
    """
    if (studio_id is None) == (token_id is None):
        both = "both were given" if studio_id is not None else "neither was given"
        raise ApiError(
            400,
            f"Name exactly one of studio_id and token_id, who gets the plan; {both}.",
            param="token_id" if studio_id is not None else "studio_id",
            code="invalid_field",
        )
    # The holder's row first, then the plan's: the order issue_token locks them in, so the two never deadlock.
    if studio_id is not None:
        return _assign_to_studio(plan_id, studio_id, actor)
    assert token_id is not None
    return _assign_to_token(plan_id, token_id, actor)


def _assign_to_studio(plan_id: str | None, studio_id: str, actor: Any) -> Studio:
    studio = Studio.objects.select_for_update().filter(id=studio_id).first()
    if studio is None:
        raise ApiError(404, f"No studio {studio_id}; studios/list shows the studios.", param="studio_id", code="studio_not_found")
    plan = locked_plan(plan_id) if plan_id is not None else None
    if plan is not None and studio.status == Studio.Status.REMOVED:
        raise ApiError(409, f"Studio {studio.id} is removed; it cannot get a plan.", param="studio_id", code="studio_removed")
    previous = studio.plan_id
    if previous == (plan.id if plan else None):
        return studio
    studio.plan, studio.updated_at = plan, timezone.now()
    studio.save(update_fields=["plan", "updated_at"])
    record(actor, "studios/plans/assign", target=studio.id, detail={"plan_id": studio.plan_id, "previous_plan_id": previous})
    invalidation.publish("studio", studio.id)  # its cached state, and its tokens' entries (they carry its plan)
    return studio


def _assign_to_token(plan_id: str | None, token_id: str, actor: Any) -> UserToken:
    token = UserToken.objects.select_for_update().filter(id=token_id).first()
    if token is None:
        raise ApiError(404, f"No token {token_id}; studios/tokens/list shows the tokens.", param="token_id", code="token_not_found")
    plan = locked_plan(plan_id) if plan_id is not None else None
    if plan is not None and token.status != "active":
        raise ApiError(409, f"Token {token.id} is {token.status}; it cannot get a plan.", param="token_id", code=f"token_{token.status}")
    previous = token.plan_id
    if previous == (plan.id if plan else None):
        return token
    token.plan = plan
    token.save(update_fields=["plan"])
    record(
        actor,
        "studios/plans/assign",
        target=token.id,
        detail={"plan_id": token.plan_id, "previous_plan_id": previous, "prefix": token.prefix},
    )
    invalidation.publish("token", token.digest)
    return token
