"""Every state change of accounts goes through these functions: API, dashboard, OAuth and admin alike.

Each runs in one transaction with its audit entry.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account, OAuthIdentity, StudioAccountSettings
from accounts.passwords import hash_password
from city import invalidation
from city.audit import record
from city.errors import ApiError
from studios import operations as studio_operations
from studios.models import Studio, UserToken

ACCOUNT_EXISTS = "This studio already has an account with this email."


def normalise_email(email: str) -> str:
    """One spelling per address: surrounding space dropped, lower case (as providers compare them)."""
    return email.strip().lower()


def account_actor(account: Account) -> str:
    return f"account:{account.id}"


def active_studio(studio_id: str) -> Studio:
    """The studio people sign in to: 404 when unknown or removed, 403 when paused."""
    studio = Studio.objects.filter(id=studio_id).first()
    if studio is None or studio.status == Studio.Status.REMOVED:
        raise ApiError(404, f"No studio {studio_id}; check the studio_id your app was given.", param="studio_id", code="studio_not_found")
    if studio.status == Studio.Status.PAUSED:
        raise ApiError(
            403, "This studio is paused; its accounts cannot sign in until an admin activates it.", param="studio_id", code="studio_paused"
        )
    return studio


def check_password_rules(password: str, *, email: str = "") -> None:
    """Django's AUTH_PASSWORD_VALIDATORS; the first problem, as a 400 naming `password`."""
    try:
        validate_password(password, user=Account(email=email))  # type: ignore[arg-type]  # validators only read attributes; the stub wants AUTH_USER_MODEL
    except ValidationError as exc:
        raise ApiError(400, f"password: {exc.messages[0]}", param="password", code="weak_password") from None


def create_account(
    studio_id: str,
    email: str,
    *,
    display_name: str = "",
    password: str | None = None,
    email_verified: bool,
    actor: Any,
) -> Account:
    """A new account; without a password it signs in only through OAuth. 409 when the email is taken."""
    email = normalise_email(email)
    _check_new_account(Studio.objects.filter(id=studio_id).first(), studio_id, email)
    if password is not None:
        check_password_rules(password, email=email)
    # Hashed outside the transaction: Argon2 takes up to a second, and the studio's row (with
    # SQLite, the whole database) stays locked until commit. The checks above spare the work when
    # they fail; they are made again under the lock.
    password_hash = hash_password(password)
    with transaction.atomic():
        studio = Studio.objects.select_for_update().filter(id=studio_id).first()
        studio = _check_new_account(studio, studio_id, email)
        try:
            with transaction.atomic():
                account = Account.objects.create(
                    studio=studio, email=email, display_name=display_name, password=password_hash, email_verified=email_verified
                )
        except IntegrityError:  # created by a concurrent request since the check above
            raise ApiError(409, ACCOUNT_EXISTS, param="email", code="account_exists") from None
        record(actor, "accounts/create", target=account.id, detail={"studio_id": studio.id})
    return account


def _check_new_account(studio: Studio | None, studio_id: str, email: str) -> Studio:
    if studio is None or studio.status == Studio.Status.REMOVED:
        raise ApiError(404, f"No studio {studio_id}; studios/list shows the studios.", param="studio_id", code="studio_not_found")
    if Account.objects.filter(studio=studio, email=email).exists():
        raise ApiError(409, ACCOUNT_EXISTS, param="email", code="account_exists")
    return studio


def _locked_account(account_id: str) -> Account:
    account = Account.objects.select_for_update().filter(id=account_id).first()
    if account is None:
        raise ApiError(404, f"No account {account_id}; accounts/list shows the accounts.", param="account_id", code="account_not_found")
    return account


def lock_account_for_new_token(account_id: str, studio_id: str) -> None:
    """The check studios run before issuing a token to an account (settings.STUDIOS_TOKEN_ACCOUNT_CHECK).

    Locked, so that a token cannot be issued to an account while it is being disabled.
    """
    account = Account.objects.select_for_update().filter(id=account_id, studio_id=studio_id).first()
    if account is None or not account.is_active:
        raise ApiError(403, "This account is disabled or not of this studio; it cannot get new tokens.", code="account_disabled")


@transaction.atomic
def disable_account(account_id: str, *, actor: Any) -> Account:
    """The account can no longer sign in, and every token it holds is revoked (refused at once by every process)."""
    account = _locked_account(account_id)
    if account.status == Account.Status.DISABLED:
        return account
    now = timezone.now()
    account.status, account.disabled_at, account.updated_at = Account.Status.DISABLED, now, now
    account.save(update_fields=["status", "disabled_at", "updated_at"])
    for token_id in UserToken.objects.filter(account=account, revoked_at__isnull=True).values_list("id", flat=True):
        studio_operations.revoke_token(token_id, actor=actor, account_id=account.id)
    invalidation.publish("account", account.id)  # whatever a process caches for the account
    record(actor, "accounts/disable", target=account.id)
    return account


@transaction.atomic
def enable_account(account_id: str, *, actor: Any) -> Account:
    """It may sign in again; the tokens revoked when it was disabled stay revoked."""
    account = _locked_account(account_id)
    if account.status == Account.Status.ACTIVE:
        return account
    account.status, account.disabled_at, account.updated_at = Account.Status.ACTIVE, None, timezone.now()
    account.save(update_fields=["status", "disabled_at", "updated_at"])
    record(actor, "accounts/enable", target=account.id)
    return account


def self_registration_allowed(studio_id: str) -> bool:
    row = StudioAccountSettings.objects.filter(studio_id=studio_id).first()
    return row.self_registration if row is not None else settings.ACCOUNTS_SELF_REGISTRATION_DEFAULT


@transaction.atomic
def set_self_registration(studio_id: str, allowed: bool, *, actor: Any) -> StudioAccountSettings:
    if not Studio.objects.filter(id=studio_id).exists():
        raise ApiError(404, f"No studio {studio_id}; studios/list shows the studios.", param="studio_id", code="studio_not_found")
    row, _ = StudioAccountSettings.objects.update_or_create(
        studio_id=studio_id, defaults={"self_registration": allowed, "updated_at": timezone.now()}
    )
    record(actor, "accounts/settings", target=studio_id, detail={"self_registration": allowed})
    return row


def register(studio_id: str, email: str, password: str, *, display_name: str = "") -> Account:
    """Self-registration with a password, where the studio allows it (403 otherwise).

    The email is not verified (City sends no mail), so OAuth never links to such an account.
    """
    active_studio(studio_id)
    if not self_registration_allowed(studio_id):
        raise ApiError(403, "This studio does not let people create their own accounts; ask its admin for one.", code="registration_closed")
    account = create_account(studio_id, email, display_name=display_name, password=password, email_verified=False, actor="guest:register")
    return account


@transaction.atomic
def link_identity(account: Account, provider: str, provider_user_id: str, *, email: str, email_verified: bool) -> OAuthIdentity:
    identity = OAuthIdentity.objects.create(
        account=account,
        studio_id=account.studio_id,
        provider=provider,
        provider_user_id=provider_user_id,
        email=email,
        email_verified=email_verified,
    )
    if email_verified and email == account.email and not account.email_verified:
        account.email_verified, account.updated_at = True, timezone.now()
        account.save(update_fields=["email_verified", "updated_at"])
    record(account_actor(account), "accounts/link", target=account.id, detail={"provider": provider})
    return identity


@transaction.atomic
def issue_signin_token(account: Account, *, method: str) -> tuple[UserToken, str]:
    """A user token bound to the account and its studio, valid ACCOUNTS_SIGNIN_TOKEN_SECONDS.

    Refused when the studio is paused or removed, or the account disabled, at this moment.
    """
    active_studio(account.studio_id)
    now = timezone.now()
    expires_at = now + timedelta(seconds=settings.ACCOUNTS_SIGNIN_TOKEN_SECONDS)
    token, raw = studio_operations.issue_token(
        account.studio_id, f"Sign-in ({method})", expires_at=expires_at, actor=account_actor(account), account_id=account.id
    )
    Account.objects.filter(id=account.id).update(last_login_at=now)
    return token, raw


def create_own_key(account: Account, name: str) -> tuple[UserToken, str]:
    """A key the account makes for itself (dashboard); it never expires until revoked."""
    return studio_operations.issue_token(account.studio_id, name, expires_at=None, actor=account_actor(account), account_id=account.id)


def revoke_own_key(account: Account, token_id: str) -> UserToken:
    """404 for any token that is not this account's own, in its own studio."""
    return studio_operations.revoke_token(token_id, actor=account_actor(account), studio_id=account.studio_id, account_id=account.id)
