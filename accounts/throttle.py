"""Throttles for guests: failed sign-ins per account (studio + email) and per client address, and
registrations and OAuth starts per client address.

Guarantee: within one window of ACCOUNTS_THROTTLE_WINDOW_SECONDS, at most the configured number of
hits is accepted per key; the next attempt (for sign-ins, right or wrong) gets 429 until the window ends.
Counters live in Django's cache: Redis when REDIS_URL is set (one count across every process and
machine, incremented atomically), process memory otherwise (embedded mode, one process). Windows are
fixed, so an attacker gets at most twice the limit across a window boundary.

The account key is the email as typed (normalised), whether or not an account has it: an unknown
email is counted and refused exactly like a known one, so the throttle reveals nothing either.

When the shared cache does not answer (Redis down), each throttle does what it was made with:
sign-in and registration refuse with 503 `cache_unavailable` and Retry-After (unthrottled, they
would let anyone guess passwords, or make accounts and Argon2 work, without limit); OAuth starts
count in this process's memory instead (the limit then holds per process), since a start only
sends the browser to a provider that does its own throttling.
"""

import hashlib
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.http import HttpRequest

from city.errors import ApiError
from city.sharedcache import CacheUnavailable, cache_unavailable, shared_cache

log = logging.getLogger("accounts.throttle")

T = TypeVar("T")

# Subjects a throttle counting in memory keeps per process (it forgets a third of them past this).
MEMORY_ENTRIES = 10_000


class Throttle:
    """Counts hits per subject in fixed windows; `retry_after` says when a subject over its limit may go on."""

    clock = time.time  # seconds; tests move it

    def __init__(self, scope: str, limit_setting: str, *, refused: str | None) -> None:
        """`refused`: what a 503 says is refused while the cache is down; None to count in memory instead."""
        self.scope = scope
        self.limit_setting = limit_setting
        self.refused = refused
        self._memory = LocMemCache(f"accounts-throttle-{scope}", {"OPTIONS": {"MAX_ENTRIES": MEMORY_ENTRIES}}) if refused is None else None

    def _counted(self, operation: Callable[[BaseCache], T]) -> T:
        """`operation` on the shared cache; when it is down, on this process's memory, or a 503."""
        try:
            return shared_cache.call(operation)
        except CacheUnavailable:
            if self._memory is None:
                assert self.refused is not None
                raise cache_unavailable(self.refused) from None
            return operation(self._memory)

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
        if (self._counted(lambda cache: cache.get(key)) or 0) >= self.limit:
            return max(1, int(seconds_left + 0.999))
        return None

    def hit(self, subject: str) -> None:
        key, _ = self._key(subject)
        self._counted(lambda cache: self._increment(cache, key))

    def _increment(self, cache: BaseCache, key: str) -> None:
        # add() then incr(): both atomic in Redis, so concurrent hits are all counted.
        cache.add(key, 0, timeout=self.window * 2)
        try:
            cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.set(key, 1, timeout=self.window * 2)

    def reset(self, subject: str) -> None:
        key = self._key(subject)[0]
        self._counted(lambda cache: cache.delete(key))


SIGNIN_REFUSED = "sign-in is refused until it does: its throttle against password guessing lives there"
REGISTER_REFUSED = "registration is refused until it does: its throttle lives there"

per_account = Throttle("signin-account", "ACCOUNTS_LOGIN_MAX_FAILURES_PER_ACCOUNT", refused=SIGNIN_REFUSED)
per_address = Throttle("signin-address", "ACCOUNTS_LOGIN_MAX_FAILURES_PER_ADDRESS", refused=SIGNIN_REFUSED)
registrations = Throttle("register-address", "ACCOUNTS_REGISTER_MAX_PER_ADDRESS", refused=REGISTER_REFUSED)
oauth_starts = Throttle("oauth-start-address", "ACCOUNTS_OAUTH_MAX_STARTS_PER_ADDRESS", refused=None)


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
    try:
        per_account.reset(account_subject(studio_id, email))
    except ApiError:
        # The cache went down since the check: the right password stands; the count lapses with its window.
        log.warning("a sign-in succeeded but its failure count could not be reset: the cache does not answer")


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
