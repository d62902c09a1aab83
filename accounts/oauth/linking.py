"""A provider's profile → the studio's account: the linked one, one to link by verified email, or a new one."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import operations
from accounts.models import Account, OAuthIdentity
from accounts.oauth.providers import Profile, Provider, ProviderFailure
from city.errors import ApiError


@transaction.atomic
def account_for_profile(studio_id: str, provider: Provider, profile: Profile) -> Account:
    """The account this provider user signs in to, in this studio.

    1. An identity already linked → its account (the provider's user id decides, not the email).
    2. Else the provider must vouch for the email (403 `email_unverified` otherwise).
    3. An account with that email whose email is verified → linked to this identity.
       One whose email was never verified (self-registered) is not linked: whoever registered
       it may not own the address (403 `account_unverified`).
    4. No account → a new one, where the studio allows self-registration (403 `registration_closed`).
    A disabled account fails with 403 `account_disabled`.
    """
    identity = (
        OAuthIdentity.objects.select_related("account")
        .filter(studio_id=studio_id, provider=provider.id, provider_user_id=profile.provider_user_id)
        .first()
    )
    if identity is not None:
        account = _usable(identity.account)
        OAuthIdentity.objects.filter(id=identity.id).update(
            email=profile.email, email_verified=profile.email_verified, last_login_at=timezone.now()
        )
        return account
    if not profile.email or not profile.email_verified:
        raise ProviderFailure(
            "email_unverified",
            f"{provider.name} has no verified email address for this user. Verify your email with {provider.name}, then sign in again.",
            status=403,
        )
    email = operations.normalise_email(profile.email)
    found = _verified_account(studio_id, email)
    if found is not None:
        account = found
    else:
        if not operations.self_registration_allowed(studio_id):
            raise ProviderFailure(
                "registration_closed",
                "This studio does not let people create their own accounts; ask its admin to create yours.",
                status=403,
            )
        try:
            account = operations.create_account(
                studio_id, email, display_name=profile.display_name, password=None, email_verified=True, actor=f"{provider.id}:sign-in"
            )
        except ApiError as exc:
            # A concurrent first sign-in with this email (another device) created it since the check above.
            if exc.code != "account_exists":
                raise
            found = _verified_account(studio_id, email)
            if found is None:
                raise
            account = found
    try:
        with transaction.atomic():
            operations.link_identity(account, provider.id, profile.provider_user_id, email=email, email_verified=True)
    except IntegrityError:  # the same provider user linked by a concurrent callback
        pass
    return account


def _verified_account(studio_id: str, email: str) -> Account | None:
    """The studio's account with this email, locked, if it may be linked (see account_for_profile)."""
    existing = Account.objects.select_for_update().filter(studio_id=studio_id, email=email).first()
    if existing is None:
        return None
    if not existing.email_verified:
        raise ProviderFailure(
            "account_unverified",
            "An account with this email exists but its email was never verified, so it cannot be linked. Sign in with its password.",
            status=403,
        )
    return _usable(existing)


def _usable(account: Account) -> Account:
    if not account.is_active:
        raise ProviderFailure("account_disabled", "This account is disabled; ask the studio's admin.", status=403)
    return account
