"""How accounts appear in API answers."""

from typing import Any

from django.contrib.auth.hashers import is_password_usable

from accounts.models import Account, StudioAccountSettings
from city.timestamps import iso
from studios.models import UserToken


def account_json(account: Account) -> dict[str, Any]:
    """Uses `account.identities`; prefetch it when rendering many accounts."""
    return {
        "id": account.id,
        "object": "account",
        "studio_id": account.studio_id,
        "email": account.email,
        "display_name": account.display_name,
        "status": account.status,
        "email_verified": account.email_verified,
        "has_password": is_password_usable(account.password),
        "identities": [
            {
                "provider": i.provider,
                "provider_user_id": i.provider_user_id,
                "email": i.email,
                "verified": i.email_verified,
                "created_at": iso(i.created_at),
            }
            for i in account.identities.all()
        ],
        "created_at": iso(account.created_at),
        "last_login_at": iso(account.last_login_at),
        "disabled_at": iso(account.disabled_at),
    }


def signin_json(account: Account, token: UserToken, raw: str) -> dict[str, Any]:
    """A sign-in's answer: the user token (shown once), its id and expiry, and the account."""
    return {"user_token": raw, "token_id": token.id, "expires_at": iso(token.expires_at), "account": account_json(account)}


def settings_json(studio_id: str, row: StudioAccountSettings | None, self_registration: bool) -> dict[str, Any]:
    return {
        "object": "studio_account_settings",
        "studio_id": studio_id,
        "self_registration": self_registration,
        "updated_at": iso(row.updated_at) if row is not None else None,
    }
