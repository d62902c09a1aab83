"""Throttles for guests: failed sign-ins per account (studio + email) and per client address, and
registrations and OAuth starts per client address.

Guarantee: within one window of ACCOUNTS_THROTTLE_WINDOW_SECONDS, at most the configured number of
hits is accepted per key; the next attempt (for sign-ins, right or wrong) gets 429 until the window ends.
Counters live in Django's cache: Redis when REDIS_URL is set (one count across every process and
machine, incremented atomically), process memory otherwise (embedded mode, one process). Windows are
fixed, so an attacker gets at most twice the limit across a window boundary.

The account key is the email as typed (normalised), whether or not an account has it: an unknown
email is counted and refused exactly like a known one, so the throttle reveals nothing either.
"""

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from city.errors import ApiError


class Throttle:
    """Counts hits per subject in fixed windows; `retry_after` says when a subject over its limit may go on."""

    clock = time.time  # seconds; tests move it

    def __init__(self, scope: str, limit_setting: str) -> None:
        self.scope = scope
        self.limit_setting = limit_setting

    @property
    def limit(self) -> int:
        return getattr(settings, self.limit_setting)

    @property
    def window(self) -> int:
        return settings.ACCOUNTS_THROTTLE_WINDOW_SECONDS

    def _key(self, subject: str) -> tuple[str, float]:
        now = type(self).clock()  # via the class: a test may set a plain function
        window_index = int(now // self.window)
        digest = hashlib.sha256(subject.encode()).hexdigest()[:32]  # no email or address in the cache keys
        seconds_left = (window_index + 1) * self.window - now
        return f"accounts:throttle:{self.scope}:{digest}:{window_index}", seconds_left

    def retry_after(self, subject: str) -> int | None:
        """Seconds until `subject` may try again, or None when it may try now."""
        key, seconds_left = self._key(subject)
        if (cache.get(key) or 0) >= self.limit:
            return max(1, int(seconds_left + 0.999))
        return None

    def hit(self, subject: str) -> None:
        key, _ = self._key(subject)
        # add() then incr(): both atomic in Redis, so concurrent hits are all counted.
        cache.add(key, 0, timeout=self.window * 2)
        try:
            cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.set(key, 1, timeout=self.window * 2)

    def reset(self, subject: str) -> None:
        cache.delete(self._key(subject)[0])


per_account = Throttle("signin-account", "ACCOUNTS_LOGIN_MAX_FAILURES_PER_ACCOUNT")
per_address = Throttle("signin-address", "ACCOUNTS_LOGIN_MAX_FAILURES_PER_ADDRESS")
registrations = Throttle("register-address", "ACCOUNTS_REGISTER_MAX_PER_ADDRESS")
oauth_starts = Throttle("oauth-start-address", "ACCOUNTS_OAUTH_MAX_STARTS_PER_ADDRESS")


def account_subject(studio_id: str, email: str) -> str:
    return f"{studio_id}\n{email}"


def check_not_throttled(studio_id: str, email: str, address: str) -> None:
    """Raise 429 (with Retry-After) when this email or this address has failed too often."""
    waits = [w for w in (per_account.retry_after(account_subject(studio_id, email)), per_address.retry_after(address)) if w]
    if waits:
        wait = max(waits)
        raise ApiError(
            429,
            f"Too many failed sign-ins; try again in {wait} seconds.",
            code="too_many_signin_attempts",
            headers={"Retry-After": str(wait)},
        )


def record_failure(studio_id: str, email: str, address: str) -> None:
    per_account.hit(account_subject(studio_id, email))
    per_address.hit(address)


def record_success(studio_id: str, email: str) -> None:
    # Only the account's count: a shared address (an office) keeps its count of others' failures.
    per_account.reset(account_subject(studio_id, email))


def client_address(request: HttpRequest) -> str:
    """The client's IP: REMOTE_ADDR, or the X-Forwarded-For entry set by the outermost trusted proxy."""
    hops = settings.ACCOUNTS_TRUSTED_PROXY_COUNT
    if hops > 0:
        forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR") or "unknown"


def count_guest_attempt(throttle: Throttle, address: str, what: str) -> None:
    """Count one attempt by this address; 429 when it made too many this window (registrations, OAuth starts)."""
    wait = throttle.retry_after(address)
    if wait:
        raise ApiError(
            429,
            f"Too many {what} from this address; try again in {wait} seconds.",
            code="too_many_attempts",
            headers={"Retry-After": str(wait)},
        )
    throttle.hit(address)
