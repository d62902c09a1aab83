"""OAuth flow state in the database, so that start, callback and poll may land on any process.

A flow moves pending → exchanging (its state is consumed, once) → complete | denied | failed, and a
complete flow → taken when its result is picked up (once). Each move is one conditional UPDATE, so two
processes racing on the same state or the same pickup cannot both win. A flow past its deadline
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


@dataclass(frozen=True)
class NewFlow:
    flow_id: str  # the client's pickup secret; City keeps only its digest
    state: str  # sent to the provider and back; City keeps only its digest
    flow: OAuthFlow


class FlowStore:
    clock = time.time  # seconds since the epoch; tests move it

    def now(self) -> datetime:
        return datetime.fromtimestamp(type(self).clock(), UTC)

    def create(self, *, provider: str, studio_id: str, purpose: str, code_verifier: str) -> NewFlow:
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

    def lookup(self, flow_id: str, purpose: str) -> OAuthFlow:
        flow = OAuthFlow.objects.select_related("account").filter(id=digest(flow_id), purpose=purpose).first()
        if flow is None:
            raise ResultUnavailable(404, "flow_not_found", "No sign-in has this flow_id; use the one oauth/start returned.")
        return flow

    @transaction.atomic
    def take(self, flow_id: str, purpose: str) -> tuple[str, OAuthFlow]:
        """(status, flow). For "complete", this call took the result: no other call will.

        Statuses: pending, complete, expired, denied, failed. A second pickup raises ResultUnavailable (410).
        """
        flow = self.lookup(flow_id, purpose)
        if flow.status == OAuthFlow.Status.TAKEN:
            raise ResultUnavailable(
                410, "result_taken", "This sign-in's result was already picked up; it is handed out once. Start a new sign-in."
            )
        if flow.expires_at <= self.now():
            return "expired", flow
        if flow.status in (OAuthFlow.Status.PENDING, OAuthFlow.Status.EXCHANGING):
            return "pending", flow
        if flow.status == OAuthFlow.Status.COMPLETE:
            taken = OAuthFlow.objects.filter(id=flow.id, status=OAuthFlow.Status.COMPLETE).update(status=OAuthFlow.Status.TAKEN)
            if not taken:  # another poll took it between our read and our update
                raise ResultUnavailable(
                    410, "result_taken", "This sign-in's result was already picked up; it is handed out once. Start a new sign-in."
                )
            return "complete", flow
        return flow.status, flow  # denied or failed


flows = FlowStore()
