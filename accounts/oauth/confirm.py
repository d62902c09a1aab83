"""The confirm step of a polling sign-in: after the provider, the person says whether the sign-in is theirs.

Whoever starts a polling flow collects its token, so an attacker could start one and get someone else
to open its authorize URL. City therefore releases the token only after the person who came back from
the provider confirms, on a page naming the studio, the app (as the app calls itself: unverified) and
the short code the starting app shows its own user. A person who did not start a sign-in, or sees
another code, cancels.

The confirm form is a POST carrying two secrets made when the provider's redirect reached City: a
flow reference, and a CSRF token that is also set as a SameSite=Strict, HttpOnly cookie on this
path. A confirmation therefore comes from the page City showed in the browser that came back from
the provider: a POST from another site, another browser, or without the token is refused (403).
"""

import hmac
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from accounts.models import Account, OAuthFlow
from accounts.oauth.flows import Confirmation, digest, flows
from accounts.oauth.providers import PROVIDERS
from city.calls import Call
from city.errors import ApiError

CONFIRM_PATH = "/v1/accounts/oauth/confirm"
CSRF_COOKIE_PREFIX = "city_oauth_csrf_"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def csrf_cookie_name(reference: str) -> str:
    """One cookie per flow, so that two sign-ins confirmed in one browser do not overwrite each other's."""
    return CSRF_COOKIE_PREFIX + digest(reference)[:16]


CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"


def browser_page(html: str, status: int, referrer_policy: str = "no-referrer") -> HttpResponse:
    response = HttpResponse(html, status=status, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = referrer_policy  # the callback's URL holds the provider's code: never sent elsewhere
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def done_page(status: int, title: str, message: str) -> HttpResponse:
    html = render_to_string("accounts/oauth_done.html", {"title": title, "message": message, "ok": status == 200})
    return browser_page(html, status)


def confirm_page(flow: OAuthFlow, account: Account, confirmation: Confirmation) -> HttpResponse:
    context = {
        "studio_name": flow.studio.name,
        "app_name": flow.app_name,
        "user_code": flow.user_code,
        "provider_name": PROVIDERS[flow.provider].name,
        "email": account.email,
        "action": CONFIRM_PATH,
        "reference": confirmation.reference,
        "csrf_token": confirmation.csrf_token,
    }
    # same-origin, not no-referrer: under no-referrer browsers send "Origin: null" with the form, which
    # cannot be told from a sandboxed frame's; the page links nowhere else, so its URL reaches City only.
    response = browser_page(render_to_string("accounts/oauth_confirm.html", context), 200, "same-origin")
    seconds_left = max(1, int((flow.expires_at - flows.now()).total_seconds()))
    response.set_cookie(
        csrf_cookie_name(confirmation.reference),
        confirmation.csrf_token,
        max_age=seconds_left,
        path=CONFIRM_PATH,
        secure=settings.CITY_SECURE_COOKIES,
        httponly=True,
        samesite="Strict",
    )
    return response


def oauth_confirm(call: Call) -> HttpResponse:
    """The confirm page's form: decision=confirm releases the token to oauth/result; decision=cancel ends the flow."""
    request = call.request
    if request.content_type != FORM_CONTENT_TYPE:
        raise ApiError(
            415, f"This is the form of City's sign-in confirm page: send it as {FORM_CONTENT_TYPE}.", code="unsupported_media_type"
        )
    try:
        form = request.POST
    except (SuspiciousOperation, BadRequest):  # e.g. more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS
        return done_page(400, "Sign-in not confirmed", "The form could not be read. Start the sign-in again from your app.")
    reference, csrf_token = form.get("flow", ""), form.get("csrf_token", "")
    cookie = request.COOKIES.get(csrf_cookie_name(reference), "")
    flow = flows.awaiting_confirmation(reference) if reference and csrf_token else None
    if (
        not _same_origin(request)
        or not csrf_token
        or not hmac.compare_digest(csrf_token.encode(), cookie.encode())
        or flow is None
        or not hmac.compare_digest(flow.csrf_digest, digest(csrf_token))
    ):
        return done_page(
            403,
            "Sign-in not confirmed",
            "This confirmation did not come from City's sign-in page in this browser, so it was refused. Start the sign-in again from your app.",
        )
    decision = form.get("decision")
    if decision not in ("confirm", "cancel"):
        return done_page(400, "Sign-in not confirmed", "Choose “This is me, sign in” or “Cancel”.")
    if not flows.decide(flow, decision == "confirm"):
        if flow.expires_at <= flows.now():
            expired = done_page(410, "Sign-in expired", "This sign-in took too long and has expired. Start it again from your app.")
            return _forget(expired, reference)
        return _forget(done_page(409, "Already answered", "This sign-in was already confirmed or cancelled; nothing changed."), reference)
    if decision == "cancel":
        cancelled = done_page(200, "Sign-in cancelled", "Nobody was signed in; the app that started this sign-in gets nothing.")
        return _forget(cancelled, reference)
    assert flow.account is not None
    app = f"“{flow.app_name}”" if flow.app_name else "the app"
    message = f"You are signed in to {flow.studio.name} as {flow.account.email}. You can close this window and return to {app}."
    return _forget(done_page(200, "Signed in", message), reference)


def _same_origin(request: HttpRequest) -> bool:
    """A browser's Origin, when it sends one, is City's own: its public URL's, or this request's scheme and
    (allowed) host, as Django's CSRF check requires of HTTPS forms. "null" (an opaque origin) is not."""
    origin = request.META.get("HTTP_ORIGIN")
    if origin is None:
        return True  # older browsers send none; the token and the cookie still decide
    public = urlsplit(settings.CITY_PUBLIC_URL)
    own = {f"{public.scheme}://{public.netloc}".lower(), f"{request.scheme}://{request.get_host()}".lower()}
    return origin.lower() in own  # not a secret: a plain comparison (compare_digest refuses non-ASCII text)


def _forget(response: HttpResponse, reference: str) -> HttpResponse:
    response.delete_cookie(csrf_cookie_name(reference), path=CONFIRM_PATH, samesite="Strict")
    return response
