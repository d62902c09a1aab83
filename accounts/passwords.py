"""Password hashing (Django's hashers: Argon2 first, see PASSWORD_HASHERS) and checking in equal time."""

from functools import cache

from django.contrib.auth.hashers import check_password, is_password_usable, make_password

from accounts.models import Account


def hash_password(password: str | None) -> str:
    """The stored form; None gives an unusable hash (the account signs in through OAuth only)."""
    return make_password(password)


@cache
def _dummy_hash() -> str:
    return make_password("a password no account has")


def password_matches(account: Account | None, password: str) -> bool:
    """True when `password` is the account's.

    An unknown email or an account without a password costs the same hashing work as a real check,
    so that the time of an answer does not tell whether the email exists. A hash made with older
    parameters or an older hasher is upgraded on success.
    """
    if account is None or not is_password_usable(account.password):
        check_password(password, _dummy_hash())
        return False

    def upgrade(raw: str) -> None:
        account.password = make_password(raw)
        Account.objects.filter(id=account.id).update(password=account.password)

    return check_password(password, account.password, setter=upgrade)
