"""Password sign-in, shared by POST /v1/accounts/login and the dashboard's sign-in form."""

from accounts import throttle
from accounts.models import Account
from accounts.operations import active_studio, normalise_email
from accounts.passwords import password_matches
from city.errors import ApiError

INVALID_CREDENTIALS = "The email or password is not right for this studio. Check both and try again."


def sign_in_with_password(studio_id: str, email: str, password: str, *, address: str) -> Account:
    """The account whose email and password these are.

    Steps: the studio must be active (404/403); the email and the address must not be throttled (429);
    the password is checked, with the same work whether or not the email exists; a failure is counted
    and answered with one message (401) that never says which part was wrong; a disabled account is
    named only to someone who gave its right password (403).
    """
    active_studio(studio_id)
    email = normalise_email(email)
    throttle.check_not_throttled(studio_id, email, address)
    account = Account.objects.filter(studio_id=studio_id, email=email).first()
    if not password_matches(account, password):
        throttle.record_failure(studio_id, email, address)
        raise ApiError(401, INVALID_CREDENTIALS, code="invalid_credentials")
    assert account is not None  # password_matches is False without an account
    throttle.record_success(studio_id, email)
    if not account.is_active:
        raise ApiError(403, "This account is disabled; ask the studio's admin.", code="account_disabled")
    return account
