"""The three OAuth actions: start (client), callback (the provider's redirect, in the browser), result (poll)."""

import logging
import secrets
from typing import Any

from asgiref.sync import sync_to_async
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from rest_framework import serializers

from accounts import operations, throttle
from accounts.models import OAuthFlow
from accounts.oauth.flows import CallbackRejected, ResultUnavailable, flows
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


class ResultInput(serializers.Serializer):
    flow_id = StrictCharField(max_length=100)


# The provider's redirect: City reads these; a provider may add others (Google: scope, authuser, prompt), which pass.
CallbackInput = OpenInput(
    {
        "state": "The sign-in this answer belongs to, as City sent it to the provider",
        "code": "The authorization code, exchanged once",
        "error": "The provider's refusal, such as access_denied",
        "error_description": "The provider's words for the refusal (not shown)",
    }
)


async def begin(provider: Provider, studio_id: str, *, purpose: str, address: str) -> dict[str, Any]:
    """Create a flow and its provider URL: {flow_id, authorize_url, expires_in, poll_interval}.

    503 when the provider's keys are not set (naming them), 404/403 for an unknown or paused studio,
    429 when this client address started too many sign-ins (each is a row until it expires).
    """
    client_id, _ = await provider.credentials()
    await sync_to_async(throttle.count_guest_attempt)(throttle.oauth_starts, address, "sign-ins started")
    await sync_to_async(operations.active_studio)(studio_id)
    endpoints = await provider.endpoints()
    verifier = secrets.token_urlsafe(48) if provider.pkce else ""  # PKCE: 64 characters of [A-Za-z0-9_-]
    new = await sync_to_async(flows.create)(provider=provider.id, studio_id=studio_id, purpose=purpose, code_verifier=verifier)
    extra = {"code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"} if verifier else {}
    url = prepare_grant_uri(
        endpoints.authorize, client_id, "code", redirect_uri=callback_url(), scope=provider.scope, state=new.state, **extra
    )
    return {
        "object": "oauth_flow",
        "flow_id": new.flow_id,
        "provider": provider.id,
        "authorize_url": url,
        "expires_in": settings.ACCOUNTS_OAUTH_FLOW_SECONDS,
        "poll_interval": settings.ACCOUNTS_OAUTH_POLL_INTERVAL_SECONDS,
    }


async def oauth_start(call: Call) -> dict[str, Any]:
    data = call.data
    address = throttle.client_address(call.request)
    return await begin(PROVIDERS[data["provider"]], data["studio_id"], purpose=OAuthFlow.Purpose.CLIENT, address=address)


async def oauth_callback(call: Call) -> HttpResponse:
    """The provider's redirect. Steps: claim the flow by its state (once); a refusal at the provider
    ends it as denied; otherwise exchange the code, read the profile and verified email, find or
    create the account, and mark the flow complete. Answers a small page (or, for a dashboard
    sign-in, a redirect back to the dashboard)."""
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
    await sync_to_async(flows.finish)(flow, OAuthFlow.Status.COMPLETE, account=account)
    studio_name = await sync_to_async(lambda: account.studio.name)()
    return finish_page(
        flow, 200, "Signed in", f"You are signed in to {studio_name} as {account.email}. You can close this window and return to the app."
    )


def oauth_result(call: Call) -> dict[str, Any]:
    """pending → {status: pending}; complete → {status: complete, user_token, account, expires_at}, once;
    expired, denied or failed → {status, code, reason}. A second pickup is 410, an unknown flow 404."""
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


def finish_page(flow: OAuthFlow, status: int, title: str, message: str) -> HttpResponse:
    if flow.purpose == OAuthFlow.Purpose.DASHBOARD:
        return HttpResponseRedirect(DASHBOARD_FINISH_PATH)  # the dashboard picks the result up with its session
    return page(status, title, message)


def page(status: int, title: str, message: str) -> HttpResponse:
    html = render_to_string("accounts/oauth_done.html", {"title": title, "message": message, "ok": status == 200})
    response = HttpResponse(html, status=status, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"  # the URL holds the provider's code
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    return response
