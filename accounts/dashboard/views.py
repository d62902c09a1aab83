"""/dashboard/keys: server-rendered pages where an account signs in and manages its own keys.

Plain forms, no JavaScript. Every POST carries Django's CSRF token; the session cookie is HTTP-only
(and Secure with CITY_SECURE_COOKIES). Every page re-reads the account, so a disabled account or a
paused studio is signed out on its next click. Changes go through accounts.operations, the same
functions as the API.
"""

import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import operations
from accounts.dashboard.forms import KEY_NAME_MAX_CHARS, KeyForm, OAuthStartForm, RevokeForm, SignInForm, problem, shown
from accounts.models import Account, OAuthFlow
from accounts.oauth.flows import GrantRefused, ResultUnavailable, digest, flows
from accounts.oauth.handlers import begin
from accounts.oauth.providers import PROVIDERS
from accounts.signin import sign_in_with_password
from accounts.throttle import client_address
from accounts.usage import month_usage
from city.errors import ApiError
from studios.models import Studio, UserToken

SESSION_ACCOUNT = "accounts.account_id"
SESSION_FLOW = "accounts.oauth_flow_id"
KEYS_PATH = "/dashboard/keys"
SIGNIN_PATH = "/dashboard/keys/signin"

# No scripts, no frames, no foreign resources: the pages are forms and text. (No form-action: browsers
# apply it to the redirect to the provider that follows the OAuth button, whose address is configurable.)
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"


def _page(request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    providers = [provider for provider in PROVIDERS.values() if provider.is_configured()]
    response = render(request, f"accounts/dashboard/{template}", {"providers": providers, **context}, status=status)
    response["Cache-Control"] = "no-store"  # pages show keys and usage: never from a shared cache or history
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response["Referrer-Policy"] = "same-origin"
    return response


def _signin_url(studio_id: str | None) -> str:
    return f"{SIGNIN_PATH}?{urlencode({'studio': studio_id})}" if studio_id else SIGNIN_PATH


def signed_in_account(request: HttpRequest) -> Account | None:
    """The session's account while it is active and its studio is active; else the session ends."""
    account_id = request.session.get(SESSION_ACCOUNT)
    if not account_id:
        return None
    account = Account.objects.select_related("studio").filter(id=account_id).first()
    if account is None or not account.is_active or account.studio.status != Studio.Status.ACTIVE:
        request.session.flush()
        return None
    return account


def account_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        account = signed_in_account(request)
        if account is None:
            return HttpResponseRedirect(_signin_url(request.GET.get("studio")))
        return view(request, account, *args, **kwargs)

    return wrapper


def _sign_in(request: HttpRequest, account: Account) -> None:
    request.session.cycle_key()  # a new session key at sign-in: no session fixation
    request.session[SESSION_ACCOUNT] = account.id
    request.session.set_expiry(settings.ACCOUNTS_DASHBOARD_SESSION_SECONDS)
    Account.objects.filter(id=account.id).update(last_login_at=timezone.now())


@require_http_methods(["GET", "POST"])
def signin(request: HttpRequest) -> HttpResponse:
    if signed_in_account(request) is not None:
        return HttpResponseRedirect(KEYS_PATH)
    if request.method == "GET":
        return _page(request, "signin.html", {"studio_id": request.GET.get("studio", ""), "email": ""})
    form = SignInForm(request.POST)
    context = {"studio_id": shown(request.POST.get("studio_id"), 40), "email": shown(request.POST.get("email"))}
    if not form.is_valid():
        error = problem(form, "Fill in the studio, your email and your password.")
        return _page(request, "signin.html", {**context, "error": error}, status=400)
    data = form.cleaned_data
    try:
        account = sign_in_with_password(data["studio_id"], data["email"], data["password"], address=client_address(request))
    except ApiError as exc:
        response = _page(request, "signin.html", {**context, "error": exc.message}, status=exc.status)
        for name, value in exc.headers.items():
            response[name] = value
        return response
    _sign_in(request, account)
    return HttpResponseRedirect(KEYS_PATH)


@require_POST
def oauth_start(request: HttpRequest) -> HttpResponse:
    """Start an OAuth sign-in for this browser: the flow id stays in the session, never in the page."""
    form = OAuthStartForm(request.POST)
    context = {"studio_id": shown(request.POST.get("studio_id"), 40), "email": ""}
    if not form.is_valid():
        error = problem(form, "Fill in the studio, then choose GitHub or Google.")
        return _page(request, "signin.html", {**context, "error": error}, status=400)
    provider, studio_id = PROVIDERS[form.cleaned_data["provider"]], form.cleaned_data["studio_id"]
    try:
        started = async_to_sync(begin)(provider, studio_id, purpose=OAuthFlow.Purpose.DASHBOARD, address=client_address(request))
    except ApiError as exc:
        # The API's message is for the admin (which env keys to set); a person signing in can only ask.
        error = f"Sign-in with {provider.name} is not available here; ask the studio's admin." if exc.status == 503 else exc.message
        return _page(request, "signin.html", {**context, "error": error}, status=exc.status)
    request.session[SESSION_FLOW] = started["flow_id"]
    return HttpResponseRedirect(started["authorize_url"])


@require_GET
def oauth_finish(request: HttpRequest) -> HttpResponse:
    """Where the callback sends the browser back: the session's flow, if complete, signs it in."""
    flow_id = request.session.pop(SESSION_FLOW, None)
    if not flow_id:
        return _page(
            request,
            "signin.html",
            {"studio_id": "", "email": "", "error": "No sign-in is in progress in this browser; start again."},
            status=400,
        )
    try:
        status, flow = _finished_flow(flow_id, request.GET.get("code", ""))
    except ResultUnavailable as unavailable:
        return _page(request, "signin.html", {"studio_id": "", "email": "", "error": unavailable.message}, status=unavailable.status)
    context = {"studio_id": flow.studio_id, "email": ""}
    if status != "complete":
        reason = flow.failure_message or "The sign-in did not finish; start again."
        return _page(request, "signin.html", {**context, "error": reason}, status=403 if status == "denied" else 400)
    assert flow.account is not None
    account = signed_in_or_refused(flow.account)
    if account is None:
        return _page(
            request,
            "signin.html",
            {**context, "error": "This account is disabled or its studio is paused; ask the studio's admin."},
            status=403,
        )
    _sign_in(request, account)
    return HttpResponseRedirect(KEYS_PATH)


def _finished_flow(flow_id: str, code: str) -> tuple[str, OAuthFlow]:
    """The session's flow and its status; a complete one is taken only with the code the callback put in
    this browser's URL. The session alone is not enough: whoever started the flow holds the session, and
    may have sent its authorize URL to someone else, whose browser alone comes back with the code."""
    flow = flows.lookup(flow_id, OAuthFlow.Purpose.DASHBOARD)
    if flow.status != OAuthFlow.Status.COMPLETE:
        return flows.take(flow_id, OAuthFlow.Purpose.DASHBOARD)
    if not code or not hmac.compare_digest(flow.grant_digest or "", digest(code)):
        raise ResultUnavailable(
            403, "not_this_browser", "This sign-in was finished in another browser, so it does not sign this one in. Start again."
        )
    try:
        return "complete", flows.redeem(code, OAuthFlow.Purpose.DASHBOARD)
    except GrantRefused as refused:
        raise ResultUnavailable(400, refused.code, refused.message) from None


def signed_in_or_refused(account: Account) -> Account | None:
    account = Account.objects.select_related("studio").get(id=account.id)
    return account if account.is_active and account.studio.status == Studio.Status.ACTIVE else None


def _active_keys(account: Account) -> list[UserToken]:
    now = timezone.now()
    keys = UserToken.objects.filter(account=account, studio_id=account.studio_id, revoked_at__isnull=True).order_by("-id")
    return [key for key in keys if key.expires_at is None or key.expires_at > now]


def _keys_page(
    request: HttpRequest, account: Account, *, new_key: str | None = None, new_key_name: str = "", status: int = 200, error: str = ""
) -> HttpResponse:
    usage = month_usage(account.studio_id, account.id)
    keys = [{"token": key, "usage": usage.by_token.get(key.id)} for key in _active_keys(account)]
    context = {
        "account": account,
        "studio": account.studio,
        "keys": keys,
        "usage": usage,
        "new_key": new_key,
        "new_key_name": new_key_name,
        "error": error,
    }
    return _page(request, "keys.html", context, status=status)


@require_GET
@account_required
def keys(request: HttpRequest, account: Account) -> HttpResponse:
    return _keys_page(request, account)


@require_POST
@account_required
def create_key(request: HttpRequest, account: Account) -> HttpResponse:
    """Shows the new key in this response only: it is neither stored nor put in the session."""
    form = KeyForm(request.POST)
    if not form.is_valid():
        error = problem(form, f"Name the key (1 to {KEY_NAME_MAX_CHARS} characters), e.g. “laptop”.")
        return _keys_page(request, account, status=400, error=error)
    try:
        token, raw = operations.create_own_key(account, form.cleaned_data["name"])
    except ApiError as exc:
        return _keys_page(request, account, status=exc.status, error=exc.message)
    return _keys_page(request, account, new_key=raw, new_key_name=token.name)


@require_POST
@account_required
def revoke_key(request: HttpRequest, account: Account) -> HttpResponse:
    form = RevokeForm(request.POST)
    if not form.is_valid():
        return _keys_page(request, account, status=400, error=problem(form, "Choose a key to revoke from the list."))
    try:
        token = operations.revoke_own_key(account, form.cleaned_data["token_id"])
    except ApiError as exc:
        return _keys_page(request, account, status=exc.status, error=exc.message)
    messages.success(request, f"Key {token.prefix}… ({token.name}) is revoked; it stops working within seconds.")
    return HttpResponseRedirect(KEYS_PATH)


@require_POST
def signout(request: HttpRequest) -> HttpResponse:
    account = signed_in_account(request)
    request.session.flush()
    return HttpResponseRedirect(_signin_url(account.studio_id if account else None))
