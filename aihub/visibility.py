"""Whose usage a caller may read, for `ai/usage` and `ai/logs` alike: the admin any studio and any
account (or all of them); a studio token its own studio (another studio's id is 403); a token that
belongs to an account only that account (another account's id is 403 `account_mismatch`)."""

from city.calls import Call
from city.errors import ApiError


def visible_scope(call: Call) -> tuple[str | None, str | None]:
    """(studio_id, account_id) to filter by; None where the caller sees them all."""
    data, identity = call.data, call.identity
    asked = data.get("account_id")
    if identity.is_admin:
        return data.get("studio_id"), asked
    studio_id = call.studio_id()  # its own; another studio is 403
    own_account = identity.account_id
    if own_account is None:
        return studio_id, asked
    if asked is not None and asked != own_account:
        raise ApiError(403, "account_id does not match the account of this token.", param="account_id", code="account_mismatch")
    return studio_id, own_account
