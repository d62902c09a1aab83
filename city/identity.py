"""Who is calling: guest (no credential), user (a studio token) or admin (ADMIN_SECRET_KEY)."""

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.http import HttpRequest
from django.utils.module_loading import import_string

from city.errors import ApiError
from city.registry import ADMIN, GUEST, USER, Action


@dataclass(frozen=True)
class Identity:
    kind: str  # GUEST, USER or ADMIN
    studio_id: str | None = None
    token_id: str | None = None
    account_id: str | None = None
    plan_id: str | None = None  # a user token's own plan, if it has one
    studio_plan_id: str | None = None  # its studio's plan, if it has one (the admin names a studio per call instead)
    label: str = ""  # for the audit log: "admin", "admin:<django user>", "tok_…"

    @property
    def is_admin(self) -> bool:
        return self.kind == ADMIN


GUEST_IDENTITY = Identity(kind=GUEST, label="guest")
ADMIN_IDENTITY = Identity(kind=ADMIN, label="admin")

UserTokenResolver = Callable[[str], Awaitable[Identity]]


@cache
def _user_token_resolver() -> UserTokenResolver:
    return import_string(settings.CITY_USER_TOKEN_RESOLVER)


def bearer_credential(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise ApiError(401, "Send the credential as 'Authorization: Bearer <token>'.", code="invalid_authorization_header")
    return credential


def is_admin_secret(credential: str) -> bool:
    return hmac.compare_digest(credential.encode(), settings.ADMIN_SECRET_KEY.encode())


async def resolve_identity(request: HttpRequest, *, api_key_header: bool = False) -> Identity:
    """Raises ApiError 401 for an unknown, revoked or expired credential, 403 for a paused studio.
    With `api_key_header` (Anthropic's routes), a credential in `x-api-key` counts when no
    Authorization header is sent, as Anthropic's SDKs and Claude Code send their key."""
    credential = bearer_credential(request)
    if credential is None and api_key_header:
        credential = request.headers.get("x-api-key", "").strip() or None
    if credential is None:
        return GUEST_IDENTITY
    if is_admin_secret(credential):
        return ADMIN_IDENTITY
    return await _user_token_resolver()(credential)


def check_allowed(identity: Identity, action: Action) -> None:
    if identity.is_admin or not action.allow or identity.kind in action.allow:
        return
    if identity.kind == GUEST:
        how = "'x-api-key: <token>' or 'Authorization: Bearer <token>'" if action.api_key_header else "'Authorization: Bearer <token>'"
        raise ApiError(401, f"This action needs a credential: send {how}.", code="missing_credential")
    needed = " or ".join(action.allow)
    raise ApiError(403, f"This action is for the {needed} credential; yours is a {identity.kind} credential.", code="not_allowed")


__all__ = ["ADMIN", "GUEST", "USER", "Identity", "check_allowed", "resolve_identity"]
