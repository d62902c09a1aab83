"""City's own services: the runtime env and the audit log (admin only)."""

import logging
import os
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from city import envops
from city.calls import Call
from city.errors import ApiError
from city.models import AuditEntry, EnvVar
from city.openapi import openapi_json
from city.pagination import int_cursor, page
from city.reference import reference_page
from city.registry import ADMIN, Action, Service, env_consumers
from city.sharedcache import CacheUnavailable, cache_unavailable, shared_cache
from city.timestamps import iso
from city.validation import StrictCharField

log = logging.getLogger("city.services")


class UpsertInput(serializers.Serializer):
    key = StrictCharField(max_length=128, trim_whitespace=False)
    value = StrictCharField(max_length=envops.MAX_VALUE_CHARS, allow_blank=True, trim_whitespace=False)
    description = StrictCharField(max_length=500, required=False, allow_blank=True)


class RemoveInput(serializers.Serializer):
    key = StrictCharField(max_length=128, trim_whitespace=False)


class ImportInput(serializers.Serializer):
    content = StrictCharField(max_length=1_000_000, allow_blank=True, trim_whitespace=False)


class AuditListInput(serializers.Serializer):
    action = serializers.CharField(max_length=100, required=False)
    target = serializers.CharField(max_length=200, required=False)
    actor = serializers.CharField(max_length=200, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
    cursor = serializers.CharField(max_length=40, required=False)


def env_list(call: Call) -> dict[str, Any]:
    rows = envops.decrypted_rows()
    needed: dict[str, list[dict[str, Any]]] = {}
    descriptions: dict[str, str] = {}
    for kind, consumer_id, req in env_consumers():
        needed.setdefault(req.key, []).append({"kind": kind, "id": consumer_id, "required": req.required})
        descriptions.setdefault(req.key, req.description)
    items = []
    for key in sorted(set(rows) | set(needed)):
        row = rows.get(key)
        readable = True
        source: str | None  # where the value comes from: "db", "process", or None when unset
        if row is not None:
            value, source = envops.value_of(row), "db"
            readable = value is not None
        else:
            value = os.environ.get(key) or None
            source = "process" if value else None
        items.append(
            {
                "key": key,
                "value": envops.shown(key, value),
                "is_set": value is not None,
                "readable": readable,  # False: stored under a CITY_SECRET_KEY City no longer has; set it again
                "source": source,
                "description": (row.description if row is not None and row.description else descriptions.get(key, "")),
                "required_by": needed.get(key, []),
                "updated_at": iso(row.updated_at) if row is not None else None,
            }
        )
    return {"object": "list", "items": items}


def env_upsert(call: Call) -> dict[str, Any]:
    data = call.data
    row, changed = envops.upsert_env(data["key"], data["value"], description=data.get("description"), actor=call.identity)
    return {
        "key": row.key,
        "value": envops.shown(data["key"], data["value"]),
        "source": "db",
        "changed": changed,
        "description": row.description,
        "updated_at": iso(row.updated_at),
    }


def env_remove(call: Call) -> dict[str, Any]:
    data = call.data
    envops.remove_env(data["key"], actor=call.identity)
    fallback = os.environ.get(data["key"]) or None
    return {"key": data["key"], "removed": True, "source": "process" if fallback else None, "value": envops.shown(data["key"], fallback)}


def env_import(call: Call) -> dict[str, Any]:
    data = call.data
    return envops.import_env(data["content"], actor=call.identity).as_dict()


def audit_list(call: Call) -> dict[str, Any]:
    data = call.data
    entries = AuditEntry.objects.order_by("-id")
    for name in ("action", "target", "actor"):
        if name in data:
            entries = entries.filter(**{name: data[name]})
    return page(
        entries,
        data,
        lambda e: {
            "id": str(e.id),
            "actor": e.actor,
            "action": e.action,
            "target": e.target,
            "outcome": e.outcome,
            "detail": e.detail,
            "created_at": iso(e.created_at),
        },
        cursor_field="id",
        cursor_type=int_cursor,
    )


def whoami(call: Call) -> dict[str, Any]:
    identity = call.identity
    return {"identity": identity.kind, "studio_id": identity.studio_id, "token_id": identity.token_id, "account_id": identity.account_id}


def health(call: Call) -> dict[str, Any]:
    """Liveness for load balancers: the database answers (and Redis, when configured); else 503."""
    from django.db import DatabaseError, connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        log.warning("health: the database does not answer", exc_info=True)
        raise ApiError(
            503, "City's database does not answer; this process cannot serve requests now.", code="database_unavailable"
        ) from None
    try:
        shared_cache.call(lambda cache: cache.get("city:health"))
    except CacheUnavailable:
        raise cache_unavailable("sign-in and registration are refused until it does") from None
    return {"status": "ok"}


ADMIN_ONLY = (ADMIN,)

SERVICES = [
    Service(
        id="env",
        name="Runtime env",
        description="Variables stored encrypted in the database; they win over the process environment.",
        actions=(
            Action("list", env_list, methods=("GET",), allow=ADMIN_ONLY, description="Keys with masked values, source and consumers"),
            Action("upsert", env_upsert, allow=ADMIN_ONLY, audit=True, input=UpsertInput, description="Set {key, value, description?}"),
            Action("remove", env_remove, allow=ADMIN_ONLY, audit=True, input=RemoveInput, description="Delete {key} from the database"),
            Action(
                "import",
                env_import,
                allow=ADMIN_ONLY,
                audit=True,
                input=ImportInput,
                description="Apply {content: .env text}, all or nothing",
            ),
        ),
    ),
    Service(
        id="system",
        name="System",
        description="Health and identity checks.",
        actions=(
            Action("health", health, methods=("GET", "HEAD"), allow=(), description="Liveness: database and cache answer"),
            Action("whoami", whoami, methods=("GET",), allow=(), description="Which identity the credential resolves to"),
            Action("openapi", openapi_json, methods=("GET",), allow=(), description="This API as an OpenAPI 3.1 document"),
            Action("reference", reference_page, methods=("GET",), allow=(), description="The API reference page", responds=("text/html",)),
        ),
        aliases={"openapi.json": "openapi", "reference": "reference"},
    ),
    Service(
        id="audit",
        name="Audit log",
        description="Every admin operation, from the API or the Django admin.",
        actions=(
            Action(
                "list",
                audit_list,
                methods=("GET",),
                allow=ADMIN_ONLY,
                input=AuditListInput,
                description="Newest first; filter by action, target, actor",
            ),
        ),
    ),
]

__all__ = ["SERVICES", "EnvVar", "timezone"]
