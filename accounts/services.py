"""The accounts service: password sign-in, self-registration, OAuth (GitHub, Google), and the admin's accounts."""

from typing import Any

from django.db.models import Q
from rest_framework import serializers

from accounts import operations, throttle
from accounts.models import Account, StudioAccountSettings
from accounts.oauth.confirm import oauth_confirm
from accounts.oauth.handlers import (
    CallbackInput,
    ResultInput,
    StartInput,
    TokenInput,
    oauth_callback,
    oauth_result,
    oauth_start,
    oauth_token,
)
from accounts.oauth.providers import PROVIDERS
from accounts.shapes import account_json, settings_json, signin_json
from accounts.signin import sign_in_with_password
from accounts.throttle import client_address
from city.calls import Call
from city.errors import ApiError
from city.pagination import id_cursor, page
from city.registry import ADMIN, USER, Action, Service
from city.validation import StrictBooleanField, StrictCharField
from studios.models import Studio
from studios.services import require_studio

PASSWORD_MAX_CHARS = 1024  # bounds hashing work per request


class PasswordField(StrictCharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=PASSWORD_MAX_CHARS, trim_whitespace=False, **kwargs)


class LoginInput(serializers.Serializer):
    studio_id = StrictCharField(max_length=40)
    # Any text: a malformed address is just another wrong email, answered the same way.
    email = StrictCharField(max_length=254)
    password = PasswordField()


class RegisterInput(serializers.Serializer):
    studio_id = StrictCharField(max_length=40)
    email = serializers.EmailField(max_length=254)
    password = PasswordField()
    display_name = StrictCharField(max_length=200, required=False, allow_blank=True)


class CreateInput(serializers.Serializer):
    studio_id = StrictCharField(max_length=40)
    email = serializers.EmailField(max_length=254)
    display_name = StrictCharField(max_length=200, required=False, allow_blank=True)
    password = PasswordField(required=False)


class ListInput(serializers.Serializer):
    studio_id = StrictCharField(max_length=40, required=False)
    status = serializers.ChoiceField(choices=Account.Status.values, required=False)
    search = serializers.CharField(max_length=254, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
    cursor = serializers.CharField(max_length=40, required=False)


class AccountRefInput(serializers.Serializer):
    account_id = StrictCharField(max_length=40)


class SettingsInput(serializers.Serializer):
    studio_id = StrictCharField(max_length=40)
    self_registration = StrictBooleanField(required=False)


def login(call: Call) -> dict[str, Any]:
    data = call.data
    account = sign_in_with_password(data["studio_id"], data["email"], data["password"], address=client_address(call.request))
    token, raw = operations.issue_signin_token(account, method="password")
    return signin_json(account, token, raw)


def register(call: Call) -> dict[str, Any]:
    data = call.data
    throttle.count_guest_attempt(throttle.registrations, throttle.client_address(call.request), "registrations")
    account = operations.register(data["studio_id"], data["email"], data["password"], display_name=data.get("display_name", ""))
    token, raw = operations.issue_signin_token(account, method="password")
    return signin_json(account, token, raw)


def me(call: Call) -> dict[str, Any]:
    """The account of the calling token (a token issued at sign-in or by the account)."""
    if call.identity.account_id is None:
        raise ApiError(403, "This token belongs to no account; sign in with accounts/login or OAuth for one.", code="not_an_account_token")
    account = Account.objects.prefetch_related("identities").get(id=call.identity.account_id)
    return account_json(account)


def accounts_create(call: Call) -> dict[str, Any]:
    data = call.data
    account = operations.create_account(
        data["studio_id"],
        data["email"],
        display_name=data.get("display_name", ""),
        password=data.get("password"),
        email_verified=True,  # the admin vouches for the address
        actor=call.identity,
    )
    return account_json(account)


def accounts_list(call: Call) -> dict[str, Any]:
    data = call.data
    accounts = Account.objects.prefetch_related("identities").order_by("-id")
    if "studio_id" in data:
        accounts = accounts.filter(studio_id=data["studio_id"])
    if "status" in data:
        accounts = accounts.filter(status=data["status"])
    if data.get("search"):
        term = data["search"].strip()
        accounts = accounts.filter(Q(email__icontains=term) | Q(display_name__icontains=term) | Q(id=term))
    listed = page(accounts, data, account_json, cursor_type=id_cursor("acct"))
    if "studio_id" in data and not listed["items"]:
        require_studio(data["studio_id"])  # an empty page of an unknown studio is a typo, not "no accounts"
    return listed


def _account_action(operation):
    def handler(call: Call) -> dict[str, Any]:
        data = call.data
        operation(data["account_id"], actor=call.identity)
        return account_json(Account.objects.prefetch_related("identities").get(id=data["account_id"]))

    return handler


def accounts_settings(call: Call) -> dict[str, Any]:
    """GET reads a studio's account settings; POST changes those it names."""
    data = call.data
    studio_id = data["studio_id"]
    if "self_registration" in data:
        if call.request.method != "POST":
            raise ApiError(400, "Change settings with POST; GET only reads them.", param="self_registration", code="read_only")
        operations.set_self_registration(studio_id, data["self_registration"], actor=call.identity)
    row = StudioAccountSettings.objects.filter(studio_id=studio_id).first()
    if row is None and not Studio.objects.filter(id=studio_id).exists():
        raise ApiError(404, f"No studio {studio_id}; studios/list shows the studios.", param="studio_id", code="studio_not_found")
    return settings_json(studio_id, row, operations.self_registration_allowed(studio_id))


ANYONE: tuple[str, ...] = ()
ADMIN_ONLY = (ADMIN,)

SERVICE = Service(
    id="accounts",
    name="Accounts",
    description="Accounts of each studio: password sign-in, GitHub and Google OAuth (loopback redirect with PKCE, or poll after a confirm).",
    env=tuple(req for provider in PROVIDERS.values() for req in provider.env()),
    actions=(
        Action(
            "login",
            login,
            allow=ANYONE,
            input=LoginInput,
            description="Sign in {studio_id, email, password} → {user_token, account, expires_at}",
        ),
        Action(
            "register",
            register,
            allow=ANYONE,
            input=RegisterInput,
            description="Create your own account {studio_id, email, password, display_name?}, where the studio allows it",
        ),
        Action("me", me, methods=("GET",), allow=(USER,), description="The account of the calling token"),
        Action(
            "oauth/start",
            oauth_start,
            allow=ANYONE,
            input=StartInput,
            description="Start a sign-in {provider, studio_id, app_name?} → {flow_id, user_code, authorize_url, expires_in, poll_interval}; "
            "with {redirect_uri: http://127.0.0.1:PORT/…, code_challenge, code_challenge_method: S256, state?} a loopback sign-in",
        ),
        Action(
            "oauth/callback",
            oauth_callback,
            methods=("GET",),
            allow=ANYONE,
            input=CallbackInput,
            responds=("text/html",),
            description="The provider's redirect (a browser page)",
        ),
        Action(
            "oauth/confirm",
            oauth_confirm,
            allow=ANYONE,
            json_body=False,
            responds=("text/html",),
            description="The confirm page's form (browser, CSRF-protected): the person confirms or cancels a polling sign-in",
        ),
        Action(
            "oauth/result",
            oauth_result,
            methods=("GET",),
            allow=ANYONE,
            input=ResultInput,
            description="Poll {flow_id}: pending (until the person confirms), complete (once, with the user token), "
            "expired, denied, cancelled, failed",
        ),
        Action(
            "oauth/token",
            oauth_token,
            allow=ANYONE,
            input=TokenInput,
            description="A loopback sign-in's {code, code_verifier, redirect_uri?} → {user_token, account, expires_at}, once",
        ),
        Action(
            "create",
            accounts_create,
            allow=ADMIN_ONLY,
            audit=True,
            input=CreateInput,
            description="Create {studio_id, email, display_name?, password?}",
        ),
        Action(
            "list",
            accounts_list,
            methods=("GET",),
            allow=ADMIN_ONLY,
            input=ListInput,
            description="Filter by studio_id, status; search email or name; keyset pages",
        ),
        Action(
            "disable",
            _account_action(operations.disable_account),
            allow=ADMIN_ONLY,
            audit=True,
            input=AccountRefInput,
            description="Disable {account_id}: no sign-in, its tokens revoked",
        ),
        Action(
            "enable",
            _account_action(operations.enable_account),
            allow=ADMIN_ONLY,
            audit=True,
            input=AccountRefInput,
            description="Enable {account_id} again",
        ),
        Action(
            "settings",
            accounts_settings,
            methods=("GET", "POST"),
            allow=ADMIN_ONLY,
            audit=True,
            input=SettingsInput,
            description="A studio's {self_registration}: read, or set with POST",
        ),
    ),
)
