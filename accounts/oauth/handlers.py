"""The OAuth actions: start (the app), callback (the provider's redirect, in the browser), result (poll,
for polling flows, after the person confirmed on City's page) and token (a loopback flow's code → token)."""

import logging
import secrets
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect
from rest_framework import serializers

from accounts import operations, throttle
from accounts.models import OAuthFlow
from accounts.oauth import appinput, confirm
from accounts.oauth.flows import CallbackRejected, GrantRefused, ResultUnavailable, flows
from accounts.oauth.linking import account_for_profile
from accounts.oauth.providers import PROVIDERS, Provider, ProviderFailure, callback_url, error_code_text
from accounts.shapes import signin_json
from city.calls import Call
from city.errors import ApiError
from city.inputs import OpenInput
from city.validation import StrictCharField

log = logging.getLogger("accounts.oauth")

DASHBOARD_FINISH_PATH = "/dashboard/keys/oauth/finish"


class StartInput(serializers.Serializer):
    provider = serializers.ChoiceField(choices=sorted(PROVIDERS))
    studio_id = StrictCharField(max_length=40)
    # Self-declared: shown on City's confirm page as the app's own claim, never as verified.
    app_name = StrictCharField(max_length=60, required=False)
    # The loopback flow (RFC 8252): the app's redirect URI and its PKCE challenge (RFC 7636, S256 only).
    redirect_uri = StrictCharField(max_length=1000, required=False)
    code_challenge = StrictCharField(max_length=200, required=False)
    code_challenge_method = serializers.ChoiceField(choices=["S256"], required=False)
    state = StrictCharField(max_length=200, required=False)

    def validate_app_name(self, value: str) -> str:
        if not appinput.APP_TEXT.fullmatch(value):
            raise serializers.ValidationError("use printable characters without < or >.")
        return value

    def validate_state(self, value: str) -> str:
        if not appinput.APP_TEXT.fullmatch(value):
            raise serializers.ValidationError("use printable characters without < or >.")
        return value

    def validate_redirect_uri(self, value: str) -> str:
        problem = appinput.redirect_uri_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate_code_challenge(self, value: str) -> str:
        if not appinput.S256_CHALLENGE.fullmatch(value):
            raise serializers.ValidationError("give BASE64URL(SHA-256(code_verifier)) without padding: 43 characters (RFC 7636 §4.2).")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "redirect_uri" in attrs:
            if "code_challenge" not in attrs:
                raise serializers.ValidationError({"code_challenge": "a loopback sign-in (redirect_uri) needs PKCE: send code_challenge."})
            if attrs.get("code_challenge_method") != "S256":
                raise serializers.ValidationError({"code_challenge_method": 'send "S256" (the plain method is not accepted).'})
        else:
            for name in ("code_challenge", "code_challenge_method", "state"):
                if name in attrs:
                    raise serializers.ValidationError({name: "only for a loopback sign-in: send redirect_uri too."})
        return attrs


class ResultInput(serializers.Serializer):
    flow_id = StrictCharField(max_length=100)


class TokenInput(serializers.Serializer):
    code = StrictCharField(max_length=100)
    code_verifier = StrictCharField(max_length=128)
    redirect_uri = StrictCharField(max_length=1000, required=False)  # when sent, it must be the one given at start

    def validate_code_verifier(self, value: str) -> str:
        if not appinput.CODE_VERIFIER.fullmatch(value):
            raise serializers.ValidationError("43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1).")
        return value


# The provider's redirect: City reads these; a provider may add others (Google: scope, authuser, prompt), which pass.
CallbackInput = OpenInput(
    {
        "state": "The sign-in this answer belongs to, as City sent it to the provider",
        "code": "The authorization code, exchanged once",
        "error": "The provider's refusal, such as access_denied",
        "error_description": "The provider's words for the refusal (not shown)",
    }
)


async def begin(provider: Provider, studio_id: str, *, purpose: str, address: str, app: dict[str, str] | None = None) -> dict[str, Any]:
    """Create a flow and its provider URL.

    Polling flows answer {flow_id, user_code, authorize_url, expires_in, poll_interval}; loopback
    flows (`app` has redirect_uri) answer no flow_id: their result comes as a code on the redirect.
    503 when the provider's keys are not set (naming them), 404/403 for an unknown or paused studio,
    429 when this client address started too many sign-ins (each is a row until it expires).
    """
    app = app or {}
    client_id, _ = await provider.credentials()
    await sync_to_async(throttle.count_guest_attempt)(throttle.oauth_starts, address, "sign-ins started")
    await sync_to_async(operations.active_studio)(studio_id)
    endpoints = await provider.endpoints()
    verifier = secrets.token_urlsafe(48) if provider.pkce else ""  # PKCE: 64 characters of [A-Za-z0-9_-]
    declared: dict[str, str] = {"app_name": app.get("app_name", "")}
    if "redirect_uri" in app:
        purpose = OAuthFlow.Purpose.LOOPBACK
        declared.update(redirect_uri=app["redirect_uri"], client_state=app.get("state", ""), client_code_challenge=app["code_challenge"])
    elif purpose == OAuthFlow.Purpose.CLIENT:
        declared["user_code"] = appinput.new_user_code()
    new = await sync_to_async(flows.create)(provider=provider.id, studio_id=studio_id, purpose=purpose, code_verifier=verifier, **declared)
    extra = {"code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"} if verifier else {}
    url = prepare_grant_uri(
        endpoints.authorize, client_id, "code", redirect_uri=callback_url(), scope=provider.scope, state=new.state, **extra
    )
    if purpose == OAuthFlow.Purpose.LOOPBACK:
        return {
            "object": "oauth_flow",
            "provider": provider.id,
            "authorize_url": url,
            "redirect_uri": app["redirect_uri"],
            "expires_in": settings.ACCOUNTS_OAUTH_FLOW_SECONDS,
        }
    started = {
        "object": "oauth_flow",
        "flow_id": new.flow_id,
        "provider": provider.id,
        "authorize_url": url,
        "expires_in": settings.ACCOUNTS_OAUTH_FLOW_SECONDS,
        "poll_interval": settings.ACCOUNTS_OAUTH_POLL_INTERVAL_SECONDS,
    }
    if purpose == OAuthFlow.Purpose.CLIENT:
        started["user_code"] = declared["user_code"]
    return started


async def oauth_start(call: Call) -> dict[str, Any]:
    data = call.data
    address = throttle.client_address(call.request)
    app: dict[str, str] = {k: data[k] for k in ("app_name", "redirect_uri", "code_challenge", "state") if k in data}
    return await begin(PROVIDERS[data["provider"]], data["studio_id"], purpose=OAuthFlow.Purpose.CLIENT, address=address, app=app)


async def oauth_callback(call: Call) -> HttpResponse:
    """The provider's redirect. Steps: claim the flow by its state (once); a refusal at the provider
    ends it as denied; otherwise exchange the code, read the profile and verified email, find or
    create the account. Then, by the flow's kind: a polling flow shows the confirm page (the token is
    released only once the person confirms); a loopback flow redirects the browser to the app's
    loopback URI with a one-time code; a dashboard flow redirects to the dashboard with one."""
    params = call.data
    state = params.get("state")
    if not state:
        return page(
            400, "Sign-in failed", "The provider's answer has no state, so it cannot be matched to a sign-in. Start again from your app."
        )
    try:
        flow = await sync_to_async(flows.claim)(state)
    except CallbackRejected as rejected:
        return page(rejected.status, "Sign-in failed", rejected.message)
    try:
        return await _continue(flow, params)
    except Exception:
        # The flow is claimed: whatever went wrong, end it as failed, so the client's poll stops now
        # instead of reading "pending" until the flow expires.
        log.exception("%s sign-in for studio %s failed unexpectedly", flow.provider, flow.studio_id)
        message = "City could not finish this sign-in; the error is logged. Start again from your app."
        await sync_to_async(flows.finish)(flow, OAuthFlow.Status.FAILED, code="internal_error", message=message)
        return finish_page(flow, 500, "Sign-in failed", message)


async def _continue(flow: OAuthFlow, params: dict[str, Any]) -> HttpResponse:
    """The callback past its claim: a refusal, or the code's exchange, the profile and the account."""
    provider = PROVIDERS[flow.provider]
    error, code = error_code_text(params.get("error")), params.get("code")
    if error == "access_denied":
        message = f"You declined to sign in with {provider.name}; nothing was shared. You can close this window."
        await sync_to_async(flows.finish)(flow, OAuthFlow.Status.DENIED, code="access_denied", message=message)
        return finish_page(flow, 403, "Sign-in cancelled", message)
    if error or not code:
        message = f"{provider.name} did not complete the sign-in ({error or 'no code'}). Start again from your app."
        await sync_to_async(flows.finish)(flow, OAuthFlow.Status.FAILED, code="provider_error", message=message)
        return finish_page(flow, 400, "Sign-in failed", message)
    try:
        profile = await provider.sign_in(code, flow.code_verifier)
        account = await sync_to_async(account_for_profile)(flow.studio_id, provider, profile)
    except (ProviderFailure, ApiError) as failure:
        status = failure.status
        code_name = failure.code or "failed"
        log.info("%s sign-in for studio %s failed: %s", provider.name, flow.studio_id, code_name)  # no code, no profile
        await sync_to_async(flows.finish)(flow, OAuthFlow.Status.FAILED, code=code_name, message=failure.message)
        return finish_page(flow, status, "Sign-in failed", failure.message)
    if flow.purpose == OAuthFlow.Purpose.CLIENT:
        # Whoever started this flow polls for its token: release it only when the person who just came
        # back from the provider says, on a page showing the app and its code, that the sign-in is theirs.
        confirmation = await sync_to_async(flows.await_confirmation)(flow, account)
        return await sync_to_async(confirm.confirm_page)(flow, account, confirmation)
    grant = await sync_to_async(flows.complete_with_grant)(flow, account)
    if flow.purpose == OAuthFlow.Purpose.LOOPBACK:
        return loopback_redirect(flow, {"code": grant})
    return no_store(HttpResponseRedirect(f"{DASHBOARD_FINISH_PATH}?{urlencode({'code': grant})}"))


def oauth_result(call: Call) -> dict[str, Any]:
    """pending → {status: pending}; complete → {status: complete, user_token, account, expires_at}, once;
    expired, denied, cancelled or failed → {status, code, reason}. A second pickup is 410, an unknown flow 404.
    A flow waiting for the person's confirmation on City's page is pending."""
    data = call.data
    try:
        with transaction.atomic():  # a refused token (account disabled since) leaves the result untaken
            status, flow = flows.take(data["flow_id"], OAuthFlow.Purpose.CLIENT)
            if status == "complete":
                assert flow.account is not None
                token, raw = operations.issue_signin_token(flow.account, method=PROVIDERS[flow.provider].name)
                return {"status": "complete", "provider": flow.provider, **signin_json(flow.account, token, raw)}
    except ResultUnavailable as unavailable:
        # 410 (taken) is the client's mistake, like a 400: typed so, not as a server error.
        raise ApiError(
            unavailable.status,
            unavailable.message,
            param="flow_id",
            code=unavailable.code,
            type="invalid_request_error" if unavailable.status == 410 else None,
        ) from None
    if status == "pending":
        return {"status": "pending", "provider": flow.provider}
    if status == "expired":
        return {
            "status": "expired",
            "provider": flow.provider,
            "code": "flow_expired",
            "reason": "The sign-in took too long; start a new one.",
        }
    return {"status": status, "provider": flow.provider, "code": flow.failure_code, "reason": flow.failure_message}


def oauth_token(call: Call) -> dict[str, Any]:
    """A loopback flow's code and the app's PKCE verifier → {user_token, account, expires_at}, once.

    The code is spent by the first attempt that presents it, right or wrong: a wrong verifier (or a
    different redirect_uri) fails the flow for good, since someone else holds the code.
    """
    data = call.data
    refused: GrantRefused
    try:
        with transaction.atomic():  # a refused token (account disabled since) leaves the code redeemable
            flow = flows.redeem(data["code"], OAuthFlow.Purpose.LOOPBACK)
            if not appinput.verifier_matches(data["code_verifier"], flow.client_code_challenge):
                refused = GrantRefused(
                    "invalid_grant", "code_verifier does not match the code_challenge sent to oauth/start.", "code_verifier"
                )
            elif data.get("redirect_uri", flow.redirect_uri) != flow.redirect_uri:
                refused = GrantRefused("invalid_grant", "redirect_uri is not the one sent to oauth/start.", "redirect_uri")
            else:
                assert flow.account is not None
                token, raw = operations.issue_signin_token(flow.account, method=PROVIDERS[flow.provider].name)
                return {"provider": flow.provider, **signin_json(flow.account, token, raw)}
            flows.burn(flow, "code_misused", f"The code was presented with a wrong {refused.param}; start the sign-in again.")
    except GrantRefused as grant:
        refused = grant
    raise ApiError(400, refused.message, param=refused.param, code=refused.code, type="invalid_request_error")


def loopback_redirect(flow: OAuthFlow, params: dict[str, str]) -> HttpResponse:
    """Send the browser to the app's own loopback URI (checked at start), with the app's state."""
    if flow.client_state:
        params = {**params, "state": flow.client_state}
    return no_store(HttpResponseRedirect(f"{flow.redirect_uri}?{urlencode(params)}"))


def finish_page(flow: OAuthFlow, status: int, title: str, message: str) -> HttpResponse:
    if flow.purpose == OAuthFlow.Purpose.DASHBOARD:
        return no_store(HttpResponseRedirect(DASHBOARD_FINISH_PATH))  # the dashboard reads the failure with its session
    if flow.purpose == OAuthFlow.Purpose.LOOPBACK:
        # RFC 6749 §4.1.2.1 error codes, so that the app's listener can tell its user what happened.
        error = "access_denied" if status == 403 else "temporarily_unavailable" if status in (502, 503) else "server_error"
        return loopback_redirect(flow, {"error": error, "error_description": message})
    return page(status, title, message)


def no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"  # the URLs hold codes
    return response


def page(status: int, title: str, message: str) -> HttpResponse:
    return confirm.done_page(status, title, message)
