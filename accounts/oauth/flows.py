"""OAuth flow state in the database, so that start, callback and poll may land on any process.

A flow moves pending → exchanging (its state is consumed, once) → complete | denied | failed, and a
complete flow → taken when its result is picked up (once). A polling flow passes through confirming
between exchanging and complete: the person who went through the provider says "this is me" on
City's page (or cancels: cancelled). Loopback and dashboard flows get a one-time grant code when they
complete; redeeming it is their pickup. Each move is one conditional UPDATE, so two processes racing
on the same state, confirmation, code or pickup cannot both win. A flow past its deadline
(ACCOUNTS_OAUTH_FLOW_SECONDS after start) is expired, whatever it was doing, unless already taken.
"""

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction

from accounts.models import Account, OAuthFlow

FLOW_ID_PREFIX = "oaf_"
GRANT_CODE_PREFIX = "oac_"
# A grant code travels through the browser to the app (or the dashboard), which redeems it at once.
GRANT_CODE_SECONDS = 60
# Finished flows stay this long past their deadline (for the admin's eye), then are deleted.
KEEP_AFTER_DEADLINE = timedelta(hours=1)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class CallbackRejected(Exception):
    """The redirect does not belong to a flow that may continue; nothing was changed."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ResultUnavailable(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class GrantRefused(Exception):
    """A grant code that cannot be redeemed (unknown, used, expired, or a wrong PKCE verifier)."""

    def __init__(self, code: str, message: str, param: str = "code") -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


@dataclass(frozen=True)
class Confirmation:
    reference: str  # the confirm form's flow reference; City keeps only its digest
    csrf_token: str  # the form's CSRF token, also set as a cookie; City keeps only its digest


@dataclass(frozen=True)
class NewFlow:
    flow_id: str  # the client's pickup secret; City keeps only its digest
    state: str  # sent to the provider and back; City keeps only its digest
    flow: OAuthFlow


class FlowStore:
    clock = time.time  # seconds since the epoch; tests move it

    def now(self) -> datetime:
        return datetime.fromtimestamp(type(self).clock(), UTC)

    def create(self, *, provider: str, studio_id: str, purpose: str, code_verifier: str, **app: str) -> NewFlow:
        """`app`: what the app declared (app_name, user_code, redirect_uri, client_state, client_code_challenge)."""
        now = self.now()
        OAuthFlow.objects.filter(expires_at__lt=now - KEEP_AFTER_DEADLINE).delete()
        flow_id = FLOW_ID_PREFIX + secrets.token_urlsafe(32)
        state = secrets.token_urlsafe(32)
        flow = OAuthFlow.objects.create(
            id=digest(flow_id),
            state_digest=digest(state),
            provider=provider,
            studio_id=studio_id,
            purpose=purpose,
            code_verifier=code_verifier,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.ACCOUNTS_OAUTH_FLOW_SECONDS),
            **app,
        )
        return NewFlow(flow_id=flow_id, state=state, flow=flow)

    def claim(self, state: str) -> OAuthFlow:
        """The pending flow of this state, now exchanging; CallbackRejected when there is none."""
        now = self.now()
        claimed = OAuthFlow.objects.filter(state_digest=digest(state), status=OAuthFlow.Status.PENDING, expires_at__gt=now).update(
            status=OAuthFlow.Status.EXCHANGING
        )
        flow = OAuthFlow.objects.filter(state_digest=digest(state)).first()
        if claimed and flow is not None:
            return flow
        if flow is None:
            raise CallbackRejected(
                400, "invalid_state", "This sign-in link is not one City started (unknown state). Start the sign-in again from your app."
            )
        if flow.expires_at <= now and flow.status == OAuthFlow.Status.PENDING:
            raise CallbackRejected(410, "flow_expired", "This sign-in took too long and has expired. Start it again from your app.")
        raise CallbackRejected(
            400, "state_used", "This sign-in link was used already; a link works once. Start the sign-in again from your app."
        )

    def finish(self, flow: OAuthFlow, status: str, *, account: Account | None = None, code: str = "", message: str = "") -> None:
        OAuthFlow.objects.filter(id=flow.id, status=OAuthFlow.Status.EXCHANGING).update(
            status=status, account=account, failure_code=code[:50], failure_message=message[:500], finished_at=self.now()
        )

    def await_confirmation(self, flow: OAuthFlow, account: Account) -> Confirmation:
        """exchanging → confirming, with the confirm page's secrets (made here, in the browser that came back)."""
        confirmation = Confirmation(reference=secrets.token_urlsafe(32), csrf_token=secrets.token_urlsafe(32))
        OAuthFlow.objects.filter(id=flow.id, status=OAuthFlow.Status.EXCHANGING).update(
            status=OAuthFlow.Status.CONFIRMING,
            account=account,
            confirm_digest=digest(confirmation.reference),
            csrf_digest=digest(confirmation.csrf_token),
            finished_at=self.now(),
        )
        return confirmation

    def awaiting_confirmation(self, reference: str) -> OAuthFlow | None:
        return OAuthFlow.objects.select_related("account", "studio").filter(confirm_digest=digest(reference)).first()

    def decide(self, flow: OAuthFlow, confirmed: bool) -> bool:
        """confirming → complete (confirmed) or cancelled, before the deadline; False when no longer confirming."""
        now = self.now()
        changes: dict = (
            {"status": OAuthFlow.Status.COMPLETE}
            if confirmed
            else {
                "status": OAuthFlow.Status.CANCELLED,
                "failure_code": "flow_cancelled",
                "failure_message": "The person cancelled this sign-in on City's confirm page. Start a new one.",
            }
        )
        return bool(
            OAuthFlow.objects.filter(id=flow.id, status=OAuthFlow.Status.CONFIRMING, expires_at__gt=now).update(finished_at=now, **changes)
        )

    def complete_with_grant(self, flow: OAuthFlow, account: Account) -> str:
        """exchanging → complete with a one-time grant code (loopback and dashboard flows); returns the code."""
        code = GRANT_CODE_PREFIX + secrets.token_urlsafe(32)
        now = self.now()
        OAuthFlow.objects.filter(id=flow.id, status=OAuthFlow.Status.EXCHANGING).update(
            status=OAuthFlow.Status.COMPLETE,
            account=account,
            grant_digest=digest(code),
            grant_expires_at=min(now + timedelta(seconds=GRANT_CODE_SECONDS), flow.expires_at),
            finished_at=now,
        )
        return code

    def redeem(self, code: str, purpose: str) -> OAuthFlow:
        """Take a complete flow by its grant code, once: complete → taken. Raises GrantRefused.

        Call inside a transaction: rolled back, the code stays redeemable (until it expires).
        """
        flow = OAuthFlow.objects.select_related("account").filter(grant_digest=digest(code), purpose=purpose).first()
        if flow is None:
            raise GrantRefused("invalid_grant", "This code is not one City issued; start the sign-in again.")
        now = self.now()
        taken = OAuthFlow.objects.filter(id=flow.id, status=OAuthFlow.Status.COMPLETE, grant_expires_at__gt=now).update(
            status=OAuthFlow.Status.TAKEN
        )
        if taken:
            return flow
        if flow.grant_expires_at is not None and flow.grant_expires_at <= now:  # (the status read above may be stale)
            raise GrantRefused("code_expired", f"This code has expired (codes last {GRANT_CODE_SECONDS} s); start the sign-in again.")
        raise GrantRefused("code_used", "This code was used already; a code works once. Start the sign-in again.")

    def burn(self, flow: OAuthFlow, code: str, message: str) -> None:
        """A taken grant whose redemption was refused (a wrong PKCE verifier): failed, for good."""
        OAuthFlow.objects.filter(id=flow.id).update(status=OAuthFlow.Status.FAILED, failure_code=code, failure_message=message[:500])

    def lookup(self, flow_id: str, purpose: str) -> OAuthFlow:
        flow = OAuthFlow.objects.select_related("account").filter(id=digest(flow_id), purpose=purpose).first()
        if flow is None:
            raise ResultUnavailable(404, "flow_not_found", "No sign-in has this flow_id; use the one oauth/start returned.")
        return flow

    @transaction.atomic
    def take(self, flow_id: str, purpose: str) -> tuple[str, OAuthFlow]:
        """(status, flow). For "complete", this call took the result: no other call will.

        Statuses: pending (confirming included), complete, expired, denied, cancelled, failed. A second pickup raises ResultUnavailable (410).
        """
        flow = self.lookup(flow_id, purpose)
        if flow.status == OAuthFlow.Status.TAKEN:
            raise ResultUnavailable(
                410, "result_taken", "This sign-in's result was already picked up; it is handed out once. Start a new sign-in."
            )
        if flow.expires_at <= self.now():
            return "expired", flow
        if flow.status in (OAuthFlow.Status.PENDING, OAuthFlow.Status.EXCHANGING, OAuthFlow.Status.CONFIRMING):
            return "pending", flow
        if flow.status == OAuthFlow.Status.COMPLETE:
            taken = OAuthFlow.objects.filter(id=flow.id, status=OAuthFlow.Status.COMPLETE).update(status=OAuthFlow.Status.TAKEN)
            if not taken:  # another poll took it between our read and our update
                raise ResultUnavailable(
                    410, "result_taken", "This sign-in's result was already picked up; it is handed out once. Start a new sign-in."
                )
            return "complete", flow
        return flow.status, flow  # denied, cancelled or failed


flows = FlowStore()
