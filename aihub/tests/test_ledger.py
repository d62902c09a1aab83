"""The ledger's guarantees, on Redis (REDIS_URL, else a redis-server of the tests' own) and in process.

Every test runs against both backends (LedgerContract); what needs Redis — a second process, a dead
owner, a flushed or stopped Redis — is tested on Redis only. Each test has a studio of its own, so
its counters are its own even on a shared Redis.
"""

import asyncio
import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine
from typing import Any, ClassVar, TypeVar, cast
from unittest import mock

from django.conf import settings
from django.db import IntegrityError
from django.test import TransactionTestCase, override_settings
from django.utils import timezone

from aihub import ledger
from aihub.ledger_journal import DEAD_LETTER_FILE, journal_dir
from aihub.ledger_keeper import DEAD_LETTER_KEY, REAP_BATCH_CALLS, REFUSED_ATTEMPTS, Keeper, check_eviction
from aihub.ledger_local import LocalLedger
from aihub.ledger_redis import STUDIOS_KEY, RedisLedger, budget_key, call_key
from aihub.metering import insert_records, writer
from aihub.models import UsageRecord
from aihub.spend import month_cost
from aihub.tests.ledgers import limits, make_record, make_reservation
from city.errors import ApiError
from city.livecity import BASE_DIR, database_url
from city.liveredis import LiveRedis
from city.waiting import wait_until
from studios.models import Studio
from studios.spend import month_key

T = TypeVar("T")
DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?s|\d+ms)$")
_shared_redis: LiveRedis | None = None


def shared_redis_url() -> str:
    """REDIS_URL when the run has one, else one redis-server started for these tests."""
    global _shared_redis
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    if _shared_redis is None:
        _shared_redis = LiveRedis()
        atexit.register(_shared_redis.stop)  # not left running after the tests
    return _shared_redis.url


def duration_ms(text: str) -> int:
    """A duration header (`1m30.5s`, `12ms`) in ms."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?", text)
    assert match, text
    hours, minutes, seconds, ms = match.groups()
    return int(hours or 0) * 3_600_000 + int(minutes or 0) * 60_000 + round(float(seconds or 0) * 1000) + int(ms or 0)


def most_in_a_minute(times_ms: list[int]) -> int:
    """The most of `times_ms` in any 60 s span (a, a + 60 s]."""
    return max((sum(1 for t in times_ms if start - 60_000 < t <= start) for start in times_ms), default=0)


def go(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


async def attempt(r: ledger.Reservation) -> dict[str, str] | ApiError:
    try:
        return await ledger.reserve(r)
    except ApiError as error:
        return error


def new_call() -> str:
    return f"call_{uuid.uuid4().hex}"


def start_worker(spec: dict[str, Any], redis_url: str) -> subprocess.Popen[str]:
    """aihub/tests/ledger_worker.py in a process of its own, on the test database and `redis_url` ("": embedded)."""
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url()}
    argv = [sys.executable, "-m", "aihub.tests.ledger_worker", json.dumps(spec)]
    return subprocess.Popen(argv, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, text=True)


def start_server_process(redis_url: str) -> subprocess.Popen[str]:
    """A process that builds City's ASGI application, as every server worker does, and serves nothing."""
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url()}
    code = "import os, time; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'city.settings'); import city.asgi; time.sleep(120)"
    return subprocess.Popen([sys.executable, "-c", code], cwd=BASE_DIR, env=env, text=True)


def poison(r: ledger.Reservation) -> ledger.Reservation:
    """`r` with a usage record no database accepts (a token count past 64 bits)."""
    r.record["prompt_tokens"] = 2**70
    return r


class LedgerContract(TransactionTestCase):
    """What both backends guarantee. Subclasses set `redis_url` ("" for the process's own ledger)."""

    redis_url: ClassVar[str] = ""
    __test__ = False

    def setUp(self) -> None:
        self.settings_override = override_settings(REDIS_URL=self.redis_url)
        self.settings_override.enable()
        self.addCleanup(self.settings_override.disable)
        self.addCleanup(writer.wait_idle)  # no record may land after the test's data is gone
        self.studio = Studio.objects.create(name="Ledger Studio")
        self.s = self.studio.id
        self.month = month_key(timezone.now())

    def counters(self, scope: ledger.ScopeLimits) -> tuple[int, int, int]:
        """(settled micro-USD, remainder in 1e-12 USD, held micro-USD) of a scope's budget this month."""
        backend = ledger.backend()
        if isinstance(backend, LocalLedger):
            budget = backend.budget(scope, self.month)
            assert budget is not None
            return budget.micro, budget.pico, budget.held
        assert isinstance(backend, RedisLedger)
        values: list[bytes] = backend.sync_client().hmget(budget_key(self.s, scope, self.month), ["micro", "pico", "held"])  # type: ignore[assignment]
        micro, pico, held = (int(value) for value in values)
        return micro, pico, held

    def records(self, count: int) -> list[UsageRecord]:
        wait_until(lambda: UsageRecord.objects.filter(studio_id=self.s).count() >= count, message=f"{count} usage records written")
        return list(UsageRecord.objects.filter(studio_id=self.s))

    def settle(self, r: ledger.Reservation, cost: int, tokens: int | None = None) -> None:
        go(
            ledger.settle(
                r.call_id, self.s, cost=cost, tokens=r.tokens if tokens is None else tokens, record=make_record(self.s, r.call_id, cost)
            )
        )

    # --- the sliding window ------------------------------------------------------------------------
    # Time moves by `advance`: the process's ledger reads a clock the test sets; on Redis, which reads
    # its own TIME, the test ages the scope's logs instead (every entry moved back by as much), so the
    # script's arithmetic runs unchanged. Redis's own clock still moves meanwhile, by a few ms a step:
    # `slack_ms` is what an expected wait may be short by.

    slack_ms: ClassVar[int] = 0

    def advance(self, ms: int) -> None:
        raise NotImplementedError

    def call(self, *scopes: ledger.ScopeLimits, tokens: int = 10) -> tuple[ledger.Reservation, dict[str, str] | ApiError]:
        r = make_reservation(self.s, new_call(), *scopes, tokens=tokens)
        return r, go(attempt(r))

    def refused(self, *scopes: ledger.ScopeLimits, tokens: int = 10) -> ApiError:
        _, result = self.call(*scopes, tokens=tokens)
        assert isinstance(result, ApiError), f"admitted: {result}"
        self.assertEqual((result.status, result.type, result.code), (429, "rate_limit_error", "rate_limit_exceeded"))
        return result

    def admitted(self, *scopes: ledger.ScopeLimits, tokens: int = 10) -> dict[str, str]:
        r, result = self.call(*scopes, tokens=tokens)
        assert isinstance(result, dict), f"refused: {result}"
        self.last = r
        return result

    def assert_ms(self, value: str | int, expected: int) -> None:
        """A wait or reset (ms, or a duration header) is `expected`, short by at most slack_ms."""
        ms = value if isinstance(value, int) else duration_ms(value)
        self.assertLessEqual(ms, expected)
        self.assertGreaterEqual(ms, expected - self.slack_ms)

    def assert_retry(self, error: ApiError, wait_ms: int) -> None:
        """Retry-After (whole seconds, rounded up) and retry-after-ms say `wait_ms`."""
        self.assert_ms(int(error.headers["retry-after-ms"]), wait_ms)
        self.assertEqual(int(error.headers["Retry-After"]), -(-int(error.headers["retry-after-ms"]) // 1000))

    def test_rpm_admits_exactly_n_of_n_plus_k_at_once(self) -> None:
        scope = limits(self.s, rpm=5)

        async def burst() -> list[dict[str, str] | ApiError]:
            return await asyncio.gather(*(attempt(make_reservation(self.s, new_call(), scope)) for _ in range(8)))

        results = go(burst())
        admitted = [result for result in results if isinstance(result, dict)]
        refused = [result for result in results if isinstance(result, ApiError)]
        self.assertEqual((len(admitted), len(refused)), (5, 3))
        self.assertEqual(sorted(headers["x-ratelimit-remaining-requests"] for headers in admitted), ["0", "1", "2", "3", "4"])
        self.assertEqual({headers["x-ratelimit-reset-requests"] for headers in admitted}, {"1m0s"})
        for error in refused:
            self.assertEqual((error.status, error.type, error.code), (429, "rate_limit_error", "rate_limit_exceeded"))
            self.assertEqual(error.headers["Retry-After"], "60")  # the oldest of the five leaves a minute after it came
            self.assertGreater(int(error.headers["retry-after-ms"]), 59_000)
            self.assertEqual(error.headers["x-ratelimit-limit-requests"], "5")
            self.assertEqual(error.headers["x-ratelimit-remaining-requests"], "0")
            self.assertRegex(error.headers["x-ratelimit-reset-requests"], DURATION)
            self.assertIn("5 requests per minute", error.message)

    def test_a_burst_then_one_a_second_never_gets_more_than_n_in_a_minute(self) -> None:
        # The review's counterexample: GCRA with bursts of N admitted N + 9 of these within 60 s.
        n = 10
        scope = limits(self.s, rpm=n)
        admitted_at: list[int] = []
        for _ in range(n):
            self.admitted(scope)
            admitted_at.append(0)
        for second in range(1, 60):
            self.advance(1000)
            error = self.refused(scope)
            self.assert_retry(error, (60 - second) * 1000)  # until the burst leaves, a minute after it came
            self.assertEqual(error.headers["x-ratelimit-remaining-requests"], "0")
            self.assert_ms(error.headers["x-ratelimit-reset-requests"], (60 - second) * 1000)
        self.advance(1000)  # the burst has left the window: N more fit, one at a time as the calls come
        for second in range(60, 60 + n + 3):
            result = self.call(scope)[1]
            if isinstance(result, dict):
                admitted_at.append(second * 1000)
            self.advance(1000)
        self.assertEqual(len(admitted_at), 2 * n)
        self.assertEqual(most_in_a_minute(admitted_at), n)

    def test_n_plus_k_spread_over_a_minute_get_exactly_k_refusals(self) -> None:
        n, k = 6, 4
        for spacing_ms in (0, 1000, 5_000, 59_000 // (n + k - 1)):
            scope = limits(self.s, rpm=n)
            refused = 0
            for i in range(n + k):
                if i:
                    self.advance(spacing_ms)
                refused += isinstance(self.call(scope)[1], ApiError)
            self.assertEqual(refused, k, f"{n + k} calls {spacing_ms} ms apart")
            self.advance(60_000)  # the next spacing starts from an empty window

    def test_no_minute_ever_holds_more_than_the_limit(self) -> None:
        # Calls at whole seconds (so no entry sits within Redis's slack of the window's edge), in bursts
        # and gaps over four minutes: every call is refused exactly when the minute before it is full.
        n = 7
        scope = limits(self.s, rpm=n)
        gaps = [0, 0, 0, 1, 5, 0, 0, 13, 2, 0, 0, 0, 0, 29, 1, 1, 0, 44, 0, 0, 0, 0, 0, 0, 7, 3, 59, 0, 0, 60, 0, 0, 0, 0, 0, 0, 0, 0]
        now = 0
        admitted_at: list[int] = []
        for gap in gaps:
            if gap:
                self.advance(gap * 1000)
                now += gap * 1000
            full = sum(1 for at in admitted_at if at > now - 60_000) == n
            result = self.call(scope)[1]
            self.assertEqual(isinstance(result, ApiError), full, f"at {now} ms after {admitted_at}")
            if isinstance(result, dict):
                admitted_at.append(now)
                self.assertEqual(int(result["x-ratelimit-remaining-requests"]), n - sum(1 for at in admitted_at if at > now - 60_000))
        self.assertEqual(most_in_a_minute(admitted_at), n)
        self.assertGreater(len(admitted_at), 2 * n)

    def test_headers_count_the_window_and_a_refusal_gives_both_units(self) -> None:
        scope = limits(self.s, rpm=3, tpm=100)
        first = self.admitted(scope, tokens=10)
        self.assertEqual(
            first,
            {
                "x-ratelimit-limit-requests": "3",
                "x-ratelimit-remaining-requests": "2",
                "x-ratelimit-reset-requests": "1m0s",
                "x-ratelimit-limit-tokens": "100",
                "x-ratelimit-remaining-tokens": "90",
                "x-ratelimit-reset-tokens": "1m0s",
            },
        )
        self.advance(20_000)
        self.assertEqual(self.admitted(scope, tokens=10)["x-ratelimit-remaining-requests"], "1")
        self.advance(10_000)
        third = self.admitted(scope, tokens=10)
        self.assertEqual((third["x-ratelimit-remaining-requests"], third["x-ratelimit-remaining-tokens"]), ("0", "70"))
        self.advance(15_000)  # 45 s after the first
        error = self.refused(scope, tokens=10)
        self.assert_retry(error, 15_000)  # the first call leaves at 60 s
        self.assertEqual(
            {name: error.headers[name] for name in ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests")},
            {
                "x-ratelimit-limit-requests": "3",
                "x-ratelimit-remaining-requests": "0",
            },
        )
        self.assertEqual((error.headers["x-ratelimit-limit-tokens"], error.headers["x-ratelimit-remaining-tokens"]), ("100", "70"))
        self.assert_ms(error.headers["x-ratelimit-reset-requests"], 45_000)  # the third leaves at 90 s
        self.assert_ms(error.headers["x-ratelimit-reset-tokens"], 45_000)
        self.assertIn("3 requests per minute", error.message)
        self.assertNotIn("tokens per minute", error.message)

    def test_tpm_waits_for_as_many_entries_as_the_call_needs(self) -> None:
        scope = limits(self.s, tpm=100)
        self.admitted(scope, tokens=60)
        self.advance(10_000)
        self.admitted(scope, tokens=30)
        self.advance(10_000)
        error = self.refused(scope, tokens=50)  # 40 too many: the first call (60) must leave, at 60 s
        self.assert_retry(error, 40_000)
        self.assertEqual((error.headers["x-ratelimit-remaining-tokens"], error.headers["x-ratelimit-limit-tokens"]), ("10", "100"))
        self.assertNotIn("x-ratelimit-limit-requests", error.headers)
        self.assertIn("100 tokens per minute", error.message)
        error = self.refused(scope, tokens=95)  # 85 too many: both must leave, the second at 70 s
        self.assert_retry(error, 50_000)
        self.admitted(scope, tokens=10)
        self.advance(40_000)  # 60 s after the first: its 60 tokens are free again, not one earlier
        self.assertEqual(self.admitted(scope, tokens=60)["x-ratelimit-remaining-tokens"], "0")

    def test_a_refusal_on_both_units_waits_for_both(self) -> None:
        scope = limits(self.s, rpm=2, tpm=100)
        self.admitted(scope, tokens=90)
        self.advance(30_000)
        self.admitted(scope, tokens=5)
        self.advance(1_000)
        error = self.refused(scope, tokens=50)  # requests: the first leaves at 60 s; tokens: too
        self.assert_retry(error, 29_000)
        self.assertIn("limits of 2 requests and 100 tokens per minute are reached", error.message)
        error = self.refused(scope, tokens=99)  # tokens need both to leave: the second at 90 s
        self.assert_retry(error, 59_000)

    def test_the_scope_that_keeps_the_call_out_longest_answers(self) -> None:
        studio = limits(self.s, rpm=2)
        token = limits("tok_window", kind="token", rpm=1)
        self.admitted(studio, token)
        self.advance(40_000)
        self.admitted(studio)
        self.advance(5_000)
        error = self.refused(studio, token)  # both scopes are full until the first call leaves, at 60 s
        self.assert_retry(error, 15_000)
        self.advance(15_000)
        self.assertEqual(self.admitted(studio, token)["x-ratelimit-remaining-requests"], "0")
        self.advance(1_000)
        error = self.refused(studio, token)
        self.assert_retry(error, 59_000)  # the token's call leaves at 120 s, the studio's first room at 100 s
        self.assertEqual(error.headers["x-ratelimit-limit-requests"], "1")
        self.assertIn("token's rate limit of 1 requests", error.message)
        # Refused on the token, the studio counted nothing: once its call of 40 s leaves, it has room.
        self.advance(40_000)
        self.assertEqual(self.admitted(studio)["x-ratelimit-remaining-requests"], "0")

    def test_every_429_says_when_to_retry(self) -> None:
        too_large = self.refused_with(limits(self.s, rpm=5, tpm=1000), tokens=1001)
        self.assertEqual(too_large.code, "request_too_large")
        self.assertIn("can never fit as it is", too_large.message)
        scope = limits(self.s, max_concurrency=1)
        self.admitted(scope)
        busy = self.refused_with(scope)
        self.assertEqual(busy.code, "concurrency_limit_exceeded")
        self.assertEqual((busy.headers["Retry-After"], busy.headers["retry-after-ms"]), ("1", "1000"))
        rate = limits(self.s, rpm=1)
        self.admitted(rate)
        self.assertEqual(self.refused_with(rate).code, "rate_limit_exceeded")
        self.assertEqual((too_large.headers["Retry-After"], too_large.headers["retry-after-ms"]), ("60", "60000"))

    def refused_with(self, *scopes: ledger.ScopeLimits, tokens: int = 10) -> ApiError:
        result = self.call(*scopes, tokens=tokens)[1]
        assert isinstance(result, ApiError)
        self.assertEqual((result.status, result.type), (429, "rate_limit_error"))
        self.assertGreaterEqual(int(result.headers["Retry-After"]), 1)
        self.assertGreaterEqual(int(result.headers["retry-after-ms"]), 1)
        return result

    def test_tpm_reserves_the_worst_case_and_refunds_what_was_not_used(self) -> None:
        scope = limits(self.s, tpm=1000)
        first = make_reservation(self.s, new_call(), scope, tokens=600)
        headers = go(ledger.reserve(first))
        self.assertEqual((headers["x-ratelimit-limit-tokens"], headers["x-ratelimit-remaining-tokens"]), ("1000", "400"))
        self.assertNotIn("x-ratelimit-limit-requests", headers)
        error = go(attempt(make_reservation(self.s, new_call(), scope, tokens=600)))
        assert isinstance(error, ApiError)
        self.assertEqual((error.status, error.code, error.headers["x-ratelimit-limit-tokens"]), (429, "rate_limit_exceeded", "1000"))
        self.settle(first, cost=10, tokens=100)  # 500 tokens back, at once: the window holds 100
        headers = go(ledger.reserve(make_reservation(self.s, new_call(), scope, tokens=600)))
        self.assertEqual(headers["x-ratelimit-remaining-tokens"], "300")
        self.settle(first, cost=10, tokens=0)  # settled already: nothing more comes back
        error = go(attempt(make_reservation(self.s, new_call(), scope, tokens=301)))
        assert isinstance(error, ApiError)
        self.assertEqual(error.headers["x-ratelimit-remaining-tokens"], "300")

    def test_a_call_larger_than_the_whole_tpm_is_refused_as_too_large(self) -> None:
        error = go(attempt(make_reservation(self.s, new_call(), limits(self.s, tpm=1000), tokens=1001)))
        assert isinstance(error, ApiError)
        self.assertEqual((error.status, error.code), (429, "request_too_large"))

    def test_concurrency_is_never_exceeded(self) -> None:
        scope = limits(self.s, max_concurrency=3)
        in_flight = peak = 0

        async def one() -> None:
            nonlocal in_flight, peak
            r = make_reservation(self.s, new_call(), scope)
            while isinstance(error := await attempt(r), ApiError):
                self.assertEqual(error.code, "concurrency_limit_exceeded")
                await asyncio.sleep(0.001)
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.005)
            in_flight -= 1
            await ledger.settle(r.call_id, self.s, cost=0, tokens=r.tokens, record=make_record(self.s, r.call_id, 0))

        async def many() -> None:
            await asyncio.gather(*(one() for _ in range(30)))

        go(many())
        self.assertEqual(peak, 3)
        self.assertEqual(len(self.records(30)), 30)

    def test_a_budget_admits_exactly_what_it_pays_for(self) -> None:
        scope = limits(self.s, monthly_budget=100_000_000)  # $100
        reservations = [make_reservation(self.s, new_call(), scope, cost=1_000_000) for _ in range(200)]  # $1 each

        async def burst() -> list[dict[str, str] | ApiError]:
            return await asyncio.gather(*(attempt(r) for r in reservations))

        results = go(burst())
        admitted = [r for r, result in zip(reservations, results, strict=True) if isinstance(result, dict)]
        refused = [result for result in results if isinstance(result, ApiError)]
        self.assertEqual((len(admitted), len(refused)), (100, 100))
        self.assertEqual(
            {(error.status, error.type, error.code) for error in refused}, {(402, "insufficient_quota", "monthly_budget_exceeded")}
        )
        self.assertIn("monthly budget of $100.00", refused[0].message)
        for r in admitted:
            self.settle(r, cost=500_000_000_007)  # $0.50 and 7e-12
        self.records(100)
        spent = month_cost("studio", self.s, self.month)
        self.assertEqual(spent, 100 * 500_000_000_007)
        self.assertEqual(self.counters(scope), (spent // 1_000_000, spent % 1_000_000, 0))
        # $50.000001 counts as spent (the remainder rounds up), so $49.999999 is left, not a micro-dollar more.
        go(ledger.reserve(make_reservation(self.s, new_call(), scope, cost=49_999_999)))
        error = go(attempt(make_reservation(self.s, new_call(), scope, cost=1)))
        assert isinstance(error, ApiError)
        self.assertEqual(error.code, "monthly_budget_exceeded")

    def test_settle_happens_exactly_once(self) -> None:
        scope = limits(self.s, monthly_budget=10_000_000, max_concurrency=1)
        r = make_reservation(self.s, new_call(), scope, cost=2_000_000)
        go(ledger.reserve(r))
        self.settle(r, cost=1_000_000_000_000)
        self.settle(r, cost=5_000_000_000_000)
        self.assertEqual(self.counters(scope), (1_000_000, 0, 0))
        self.assertEqual([record.cost for record in self.records(1)], [1_000_000_000_000])
        go(ledger.reserve(make_reservation(self.s, new_call(), scope)))  # the slot came back once, not twice
        error = go(attempt(make_reservation(self.s, new_call(), scope)))
        assert isinstance(error, ApiError)
        self.assertEqual(error.code, "concurrency_limit_exceeded")

    def test_a_free_call_under_a_budget_settles(self) -> None:
        """A model that costs nothing (a local server) on a studio with a budget: its reservation holds 0
        and its settle gives back 0 (in Lua, -0: Redis once refused the settle, and City then paused every
        budgeted call as if Redis were down)."""
        scope = limits(self.s, monthly_budget=10_000_000)
        for _ in range(3):
            r = make_reservation(self.s, new_call(), scope, cost=0)
            go(ledger.reserve(r))
            self.settle(r, cost=0)
        self.assertEqual(self.counters(scope), (0, 0, 0))
        self.assertEqual([record.cost for record in self.records(3)], [0, 0, 0])
        go(ledger.reserve(make_reservation(self.s, new_call(), scope, cost=1)))  # the ledger answers: nothing paused it

    def test_picodollar_remainders_carry_and_round_up(self) -> None:
        scope = limits(self.s, monthly_budget=2)  # two micro-dollars
        for _ in range(3):
            r = make_reservation(self.s, new_call(), scope, cost=1)
            go(ledger.reserve(r))
            self.settle(r, cost=400_000)  # 0.4 micro-dollar
        self.assertEqual(self.counters(scope), (1, 200_000, 0))
        error = go(attempt(make_reservation(self.s, new_call(), scope, cost=1)))
        assert isinstance(error, ApiError)
        self.assertEqual(error.code, "monthly_budget_exceeded")
        go(ledger.reserve(make_reservation(self.s, new_call(), scope, cost=0)))

    def test_a_refused_call_consumes_nothing_on_any_scope(self) -> None:
        studio = limits(self.s, rpm=10, monthly_budget=5)
        token = limits("tok_ledger", kind="token", rpm=10, monthly_budget=1)
        error = go(attempt(make_reservation(self.s, new_call(), studio, token, cost=2)))
        assert isinstance(error, ApiError)
        self.assertIn("token's monthly budget", error.message)
        headers = go(ledger.reserve(make_reservation(self.s, new_call(), studio, token, cost=1)))
        self.assertEqual(headers["x-ratelimit-remaining-requests"], "9")
        self.assertEqual(self.counters(studio), (0, 0, 1))

    def test_a_record_the_database_refuses_raises_djangos_error(self) -> None:
        # The keeper tells a database that is away (OperationalError: keep the reservation) from one that
        # refuses a record (any other error: set it aside after a few tries) by Django's error classes.
        with self.assertRaises(IntegrityError):
            insert_records([{**make_record(self.s, new_call(), 1), "model": None}])  # NOT NULL
        self.assertFalse(UsageRecord.objects.filter(studio_id=self.s).exists())

    def test_the_spend_of_the_month_is_rebuilt_from_the_records(self) -> None:
        insert_records([make_record(self.s, "old", 7_000_000_000_000)])  # as the metering writes it: the record and its rollup
        scope = limits(self.s, monthly_budget=10_000_000)
        error = go(attempt(make_reservation(self.s, new_call(), scope, cost=3_000_001)))
        assert isinstance(error, ApiError)
        self.assertIn("$7.00 is spent", error.message)
        go(ledger.reserve(make_reservation(self.s, new_call(), scope, cost=3_000_000)))


class LocalLedgerTests(LedgerContract):
    __test__ = True
    redis_url = ""

    def setUp(self) -> None:
        super().setUp()
        backend = ledger.backend()
        assert isinstance(backend, LocalLedger)
        self.now = time.monotonic()
        backend.clock = lambda: self.now
        self.addCleanup(delattr, backend, "clock")

    def advance(self, ms: int) -> None:
        self.now += ms / 1000

    @classmethod
    def tearDownClass(cls) -> None:
        # These tests leave calls in flight on purpose; their journals must not outlive the run.
        shutil.rmtree(journal_dir(), ignore_errors=True)
        super().tearDownClass()

    def test_a_crashed_processs_calls_are_written_at_the_next_start(self) -> None:
        call_id = new_call()
        spec = {"mode": "hold", "studio_id": self.s, "call_id": call_id, "scope": limits(self.s, max_concurrency=1).__dict__, "cost": 4}
        process = start_worker(spec, "")
        self.addCleanup(process.kill)
        assert process.stdout is not None
        self.assertEqual(process.stdout.readline().strip(), "reserved")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        self.assertFalse(UsageRecord.objects.filter(call_id=call_id).exists())
        restarted = LocalLedger()
        restarted.open_journal()  # what the next process does before its first call
        self.addCleanup(restarted.close_journal)
        record = UsageRecord.objects.get(call_id=call_id)
        self.assertEqual((record.status, record.error_code, record.cost), (499, "interrupted", 4_000_000))
        # Its budget counts it once rebuilt.
        self.assertEqual(month_cost("studio", self.s, self.month), 4_000_000)

    def hold_and_kill(self, call_id: str) -> None:
        spec = {"mode": "hold", "studio_id": self.s, "call_id": call_id, "scope": limits(self.s).__dict__, "cost": 4}
        process = start_worker(spec, "")
        self.addCleanup(process.kill)
        assert process.stdout is not None
        self.assertEqual(process.stdout.readline().strip(), "reserved")
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def test_a_server_replays_the_journal_as_it_starts_before_any_call(self) -> None:
        call_id = new_call()
        self.hold_and_kill(call_id)
        server = start_server_process("")
        self.addCleanup(server.kill)
        wait_until(lambda: UsageRecord.objects.filter(call_id=call_id).exists(), timeout=30, message="the record written at start")
        self.assertEqual(UsageRecord.objects.get(call_id=call_id).error_code, "interrupted")

    def test_a_record_the_database_refuses_does_not_stop_the_replay(self) -> None:
        directory = journal_dir()
        directory.mkdir(parents=True, exist_ok=True)
        bad, good = poison(make_reservation(self.s, new_call(), limits(self.s))), make_reservation(self.s, new_call(), limits(self.s))
        orphan = directory / "1-deadbeef.jsonl"
        lines = [json.dumps({"op": "reserve", "call": r.call_id, "record": r.record}) for r in (bad, good)]
        orphan.write_text("\n".join(lines) + "\n")
        restarted = LocalLedger()
        restarted.open_journal()
        self.addCleanup(restarted.close_journal)
        self.assertTrue(UsageRecord.objects.filter(call_id=good.call_id).exists())
        self.assertFalse(orphan.exists())
        set_aside = (directory / DEAD_LETTER_FILE).read_text()
        self.assertIn(bad.call_id, set_aside)
        self.assertNotIn(good.call_id, set_aside)


class RedisLedgerTests(LedgerContract):
    __test__ = True

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.redis_url = shared_redis_url()

    slack_ms = 1000

    def setUp(self) -> None:
        super().setUp()
        self.addCleanup(self.drop_keys)
        self.simulated_ms = 0  # the test's clock: what advance() has moved
        self.made_at: dict[str, int] = {}  # call id → the test's clock when the call was made

    def call(self, *scopes: ledger.ScopeLimits, tokens: int = 10) -> tuple[ledger.Reservation, dict[str, str] | ApiError]:
        r, result = super().call(*scopes, tokens=tokens)
        self.made_at[r.call_id] = self.simulated_ms
        return r, result

    def advance(self, ms: int) -> None:
        """Move the test's clock by `ms`: every sliding log entry of the test's studio is dated so that
        its age on Redis's clock (its own, which runs on meanwhile) is the test's time since its call.
        So a loaded machine, however slow, does not age the logs by more than the test says."""
        self.simulated_ms += ms
        backend = ledger.backend()
        assert isinstance(backend, RedisLedger)
        client = backend.sync_client()
        seconds, micros = client.time()
        now = seconds * 1000 + micros // 1000
        for key in client.scan_iter(match=f"city:{{{self.s}}}:log:*"):
            entries = cast(list[tuple[bytes, float]], client.zrange(key, 0, -1, withscores=True))
            dated = {
                member: now - (self.simulated_ms - self.made_at[member.decode()]) if member.decode() in self.made_at else score - ms
                for member, score in entries
            }
            if dated:
                client.zadd(key, dated)

    def drop_keys(self) -> None:
        client = RedisLedger(self.redis_url).sync_client()
        keys = list(client.scan_iter(match=f"city:{{{self.s}}}:*"))
        if keys:
            client.delete(*keys)
        client.zrem(STUDIOS_KEY, self.s)
        client.close()

    def worker(self, spec: dict[str, Any]) -> subprocess.Popen[str]:
        return start_worker(spec, self.redis_url)

    def test_two_processes_share_one_concurrency_limit(self) -> None:
        scope = limits(self.s, max_concurrency=3)
        keys = {name: f"city:{{{self.s}}}:test:{name}" for name in ("inflight", "peak", "ready")}
        spec = {"mode": "calls", "workers": 2, "calls": 20, "lanes": 4, "studio_id": self.s, "scope": scope.__dict__, **keys}
        workers = [self.worker({**spec, "prefix": f"w{n}-{uuid.uuid4().hex[:8]}"}) for n in range(2)]
        for process in workers:
            self.assertEqual(process.wait(60), 0)
        backend = ledger.backend()
        assert isinstance(backend, RedisLedger)
        self.assertEqual(int(backend.sync_client().get(keys["peak"]) or 0), 3)  # 8 lanes in two processes, 3 slots
        self.assertEqual(len(self.records(40)), 40)

    def test_two_processes_share_one_rpm_limit(self) -> None:
        # The test: N + k calls in one minute from two processes, exactly k answers of 429.
        scope = limits(self.s, rpm=10)
        spec = {"mode": "attempts", "workers": 2, "calls": 8, "studio_id": self.s, "scope": scope.__dict__}
        spec["ready"] = f"city:{{{self.s}}}:test:ready"
        workers = [self.worker({**spec, "prefix": f"w{n}-{uuid.uuid4().hex[:8]}"}) for n in range(2)]
        outputs = []
        for process in workers:
            out, _ = process.communicate(timeout=60)
            self.assertEqual(process.returncode, 0)
            outputs.append(json.loads(out.strip().splitlines()[-1]))
        self.assertEqual(sum(output["admitted"] for output in outputs), 10)
        refused = [error for output in outputs for error in output["refused"]]
        self.assertEqual(len(refused), 6)
        self.assertEqual({(status, code) for status, code, _ in refused}, {(429, "rate_limit_exceeded")})
        for _, _, retry in refused:  # until the first call leaves, a minute after it came (less the time between)
            self.assertIn(int(retry), range(50, 61))
        self.assertEqual(len(self.records(10)), 10)

    def test_the_reaper_settles_and_records_a_dead_processs_call(self) -> None:
        scope = limits(self.s, monthly_budget=10_000_000, max_concurrency=1)
        warm = make_reservation(self.s, new_call(), scope, cost=1)
        go(ledger.reserve(warm))  # the budget counter exists: the worker needs no database
        self.settle(warm, cost=1_000_000)
        call_id = new_call()
        process = self.worker({"mode": "hold", "studio_id": self.s, "call_id": call_id, "scope": scope.__dict__, "cost": 3_000_000})
        self.addCleanup(process.kill)
        assert process.stdout is not None
        self.assertEqual(process.stdout.readline().strip(), "reserved")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        backend = ledger.backend()
        assert isinstance(backend, RedisLedger)
        client = backend.sync_client()
        owner = client.hget(call_key(self.s, call_id), "proc")
        assert isinstance(owner, bytes)
        client.delete(f"city:proc:{owner.decode()}")  # what 15 s without a heartbeat would do
        reaper = self.reaper()
        reaper.reap()  # one missed heartbeat is not death: a stall may have delayed it
        self.assertFalse(UsageRecord.objects.filter(call_id=call_id).exists())
        self.assertEqual(client.hget(call_key(self.s, call_id), "state"), b"reserved")
        reaper.reap()
        record = UsageRecord.objects.get(call_id=call_id)
        self.assertEqual((record.status, record.error_code, record.cost), (499, "interrupted", 3_000_000_000_000))
        self.assertEqual(self.counters(scope), (3_000_001, 0, 0))
        self.assertFalse(client.exists(call_key(self.s, call_id)))
        go(ledger.reserve(make_reservation(self.s, new_call(), scope)))  # its concurrency slot is free again

    # --- the keeper ---------------------------------------------------------------------------

    def reaper(self) -> Keeper:
        """A keeper of its own (this process's runs on, with its own observations), reaping at once."""
        backend = ledger.backend()
        assert isinstance(backend, RedisLedger)
        reaper = Keeper(backend)
        reaper.reap_age_seconds = 0
        reaper.missing_confirm_seconds = 0
        return reaper

    def orphan(self, r: ledger.Reservation) -> None:
        """Give `r` an owner process that never sent a heartbeat: a dead one."""
        ledger.backend().sync_client().hset(call_key(self.s, r.call_id), "proc", f"gone:0:{uuid.uuid4().hex[:8]}")  # type: ignore[attr-defined]

    def test_the_heartbeat_goes_on_while_the_keeper_is_stuck(self) -> None:
        backend = ledger.backend()
        assert isinstance(backend, RedisLedger)
        keeper = Keeper(backend)
        keeper.ensure_started()
        self.addCleanup(keeper.close)
        client = backend.sync_client()
        heartbeat = f"city:proc:{keeper.proc_id}"
        with keeper._lock:  # its next round blocks here, as on a stalled database
            for _ in range(2):  # the old keeper beat once more before blocking, never after
                client.delete(heartbeat)
                wait_until(lambda: client.exists(heartbeat), timeout=10, message="the heartbeat renewed")

    def test_a_dead_owners_call_whose_record_is_written_settles_at_that_records_cost(self) -> None:
        scope = limits(self.s, monthly_budget=10_000_000, max_concurrency=1)
        r = make_reservation(self.s, new_call(), scope, cost=5_000_000)
        go(ledger.reserve(r))
        # Its settle wrote the record while Redis was down, then the process died before the retry.
        insert_records([make_record(self.s, r.call_id, 2_000_000_000_003)])
        self.orphan(r)
        reaper = self.reaper()
        reaper.reap()
        reaper.reap()
        self.assertEqual(self.counters(scope), (2_000_000, 3, 0))
        self.assertEqual([record.cost for record in UsageRecord.objects.filter(studio_id=self.s)], [2_000_000_000_003])
        self.assertFalse(ledger.backend().sync_client().exists(call_key(self.s, r.call_id)))  # type: ignore[attr-defined]
        go(ledger.reserve(make_reservation(self.s, new_call(), scope)))  # the slot is free

    def test_settle_later_settles_the_counters_of_a_call_whose_settle_failed(self) -> None:
        scope = limits(self.s, monthly_budget=10_000_000, max_concurrency=1)
        r = make_reservation(self.s, new_call(), scope, cost=5_000_000)
        go(ledger.reserve(r))
        ledger.settle_later(r.call_id, self.s, cost=1_000_000, tokens=r.tokens, record=make_record(self.s, r.call_id, 1_000_000))
        self.records(1)
        backend = ledger.backend()
        assert isinstance(backend, RedisLedger)
        backend.keeper.retry_pending()  # what the keeper does within KEEP_INTERVAL_SECONDS
        self.assertEqual(self.counters(scope), (1, 0, 0))
        self.assertFalse(backend.sync_client().exists(call_key(self.s, r.call_id)))
        go(ledger.reserve(make_reservation(self.s, new_call(), scope)))  # the slot is free

    def test_a_call_that_waits_for_a_busy_pool_longer_than_the_socket_timeout_is_not_refused(self) -> None:
        """A burst queues for the pool's connections: a wait longer than the socket timeout is a queue,
        not Redis being away, and must not refuse a budgeted call as budget_unavailable (503)."""
        scope = limits(self.s, monthly_budget=1_000_000_000)
        r = make_reservation(self.s, new_call(), scope, cost=1)

        async def behind_a_busy_pool() -> dict[str, str] | ApiError:
            backend = ledger.backend()
            assert isinstance(backend, RedisLedger)
            pool = backend.client().connection_pool
            held = await pool.get_connection()  # the pool's only connection, busy for longer than the timeout
            waiting = asyncio.ensure_future(attempt(r))
            await asyncio.sleep(3 * settings.REDIS_TIMEOUT_SECONDS)
            await pool.release(held)
            return await waiting

        with mock.patch("aihub.ledger_redis.POOL_CONNECTIONS", 1), override_settings(REDIS_TIMEOUT_SECONDS=0.2):
            result = go(behind_a_busy_pool())
        self.assertIsInstance(result, dict, result)
        self.settle(r, cost=0)

    def test_written_records_drop_their_settled_calls_and_keep_the_reserved_ones_across_studios(self) -> None:
        other = Studio.objects.create(name="Ledger Studio, other")
        self.addCleanup(lambda: [client.delete(*keys) for keys in [list(client.scan_iter(match=f"city:{{{other.id}}}:*"))] if keys])
        backend = ledger.backend()
        assert isinstance(backend, RedisLedger)
        client = backend.sync_client()
        mine = [make_reservation(self.s, new_call(), limits(self.s)) for _ in range(3)]
        theirs = [make_reservation(other.id, new_call(), limits(other.id)) for _ in range(2)]
        for r in mine + theirs:
            go(ledger.reserve(r))
        settled, reserved = [*mine[:2], theirs[0]], [mine[2], theirs[1]]
        records = [make_record(r.studio_id, r.call_id, 1) for r in settled + reserved]
        with mock.patch.object(RedisLedger, "forget"):  # the writer writes the records and leaves the calls
            for r in settled:
                go(ledger.settle(r.call_id, r.studio_id, cost=1, tokens=r.tokens, record=make_record(r.studio_id, r.call_id, 1)))
            writer.wait_idle()
        self.assertTrue(all(client.exists(call_key(r.studio_id, r.call_id)) for r in settled))
        with mock.patch("aihub.ledger_redis.FORGET_CHUNK", 2):  # this studio's three calls in two scripts
            backend.forget(records)
        for r in settled:
            self.assertFalse(client.exists(call_key(r.studio_id, r.call_id)))
        for r in reserved:
            self.assertEqual(client.hget(call_key(r.studio_id, r.call_id), "state"), b"reserved")
        for studio_id, r in ((self.s, mine[2]), (other.id, theirs[1])):
            self.assertEqual(client.zrange(f"city:{{{studio_id}}}:open", 0, -1), [r.call_id.encode()])
        for r in reserved:
            go(ledger.settle(r.call_id, r.studio_id, cost=1, tokens=r.tokens, record=make_record(r.studio_id, r.call_id, 1)))

    def test_the_reaper_pages_past_any_number_of_live_calls(self) -> None:
        backend = ledger.backend()
        assert isinstance(backend, RedisLedger)
        live = [make_reservation(self.s, new_call(), limits(self.s)) for _ in range(REAP_BATCH_CALLS + 1)]  # more than a page

        async def reserve_all() -> None:
            await asyncio.gather(*(ledger.reserve(r) for r in live))

        go(reserve_all())
        wait_until(lambda: backend.sync_client().exists(f"city:proc:{backend.keeper.proc_id}"), message="this process's heartbeat")
        dead = make_reservation(self.s, new_call(), limits(self.s))
        go(ledger.reserve(dead))
        self.orphan(dead)
        reaper = self.reaper()
        reaper.reap()  # the dead owner seen once, on the second page
        reaper.reap()
        self.assertEqual([record.call_id for record in UsageRecord.objects.filter(studio_id=self.s)], [dead.call_id])
        for r in live:
            self.assertEqual(backend.sync_client().hget(call_key(self.s, r.call_id), "state"), b"reserved")

    def test_a_record_the_database_refuses_is_set_aside_and_the_others_written(self) -> None:
        backend = ledger.backend()
        assert isinstance(backend, RedisLedger)
        client = backend.sync_client()
        bad, good = poison(make_reservation(self.s, new_call(), limits(self.s))), make_reservation(self.s, new_call(), limits(self.s))
        for r in (bad, good):
            go(ledger.reserve(r))
            self.orphan(r)
        reaper = self.reaper()
        reaper.reap()  # the owners' heartbeats are seen missing once
        reaper.reap()
        self.assertTrue(UsageRecord.objects.filter(call_id=good.call_id).exists())
        self.assertTrue(client.exists(call_key(self.s, bad.call_id)))  # refused once: kept for the next round
        for _ in range(REFUSED_ATTEMPTS - 1):
            reaper.reap()
        self.assertFalse(client.exists(call_key(self.s, bad.call_id)))
        entries = [entry.decode() if isinstance(entry, bytes) else entry for entry in client.lrange(DEAD_LETTER_KEY, 0, -1)]
        mine = [entry for entry in entries if json.loads(entry)["record"]["call_id"] == bad.call_id]
        for entry in mine:
            client.lrem(DEAD_LETTER_KEY, 0, entry)
        self.assertEqual(len(mine), 1)
        self.assertIn("prompt_tokens", json.loads(mine[0])["record"])
        self.assertFalse(UsageRecord.objects.filter(call_id=bad.call_id).exists())

    def test_held_never_goes_below_zero_after_a_counter_is_rebuilt(self) -> None:
        scope = limits(self.s, monthly_budget=10_000_000)
        first = make_reservation(self.s, new_call(), scope, cost=5)
        go(ledger.reserve(first))
        ledger.backend().sync_client().delete(budget_key(self.s, scope, self.month))  # type: ignore[attr-defined]  # evicted
        go(ledger.reserve(make_reservation(self.s, new_call(), scope, cost=1)))  # rebuilt, holding 1
        self.settle(first, cost=1_000_000)
        self.assertEqual(self.counters(scope), (1, 0, 0))

    def test_a_server_starts_its_keeper_before_any_call(self) -> None:
        server = start_server_process(self.redis_url)
        self.addCleanup(server.kill)
        client = ledger.backend().sync_client()  # type: ignore[attr-defined]
        wait_until(lambda: any(client.scan_iter(match=f"city:proc:*:{server.pid}:*")), timeout=30, message="the server's heartbeat")


class RedisOutageTests(TransactionTestCase):
    """A redis-server of this class's own: flushed, stopped and started again."""

    live: LiveRedis

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.live = LiveRedis()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.live.stop()
        super().tearDownClass()

    def setUp(self) -> None:
        if self.live.process is None:
            self.live.start()
        override = override_settings(REDIS_URL=self.live.url)
        override.enable()
        self.addCleanup(override.disable)
        self.addCleanup(writer.wait_idle)
        self.s = Studio.objects.create(name="Outage Studio").id
        backend = ledger.backend()
        assert isinstance(backend, RedisLedger)
        self.backend = backend
        backend.mark_up()

    def reserve(self, *scopes: ledger.ScopeLimits, cost: int = 1) -> ledger.Reservation:
        r = make_reservation(self.s, new_call(), *scopes, cost=cost)
        go(ledger.reserve(r))
        return r

    def settle(self, r: ledger.Reservation, cost: int) -> None:
        go(ledger.settle(r.call_id, self.s, cost=cost, tokens=r.tokens, record=make_record(self.s, r.call_id, cost)))

    def test_a_flushed_budget_is_rebuilt_from_the_records(self) -> None:
        scope = limits(self.s, monthly_budget=10)
        self.settle(self.reserve(scope, cost=8), cost=8_000_000)
        wait_until(lambda: UsageRecord.objects.filter(studio_id=self.s).exists())
        self.backend.sync_client().flushdb()
        error = go(attempt(make_reservation(self.s, new_call(), scope, cost=3)))
        assert isinstance(error, ApiError)
        self.assertEqual(error.code, "monthly_budget_exceeded")
        self.reserve(scope, cost=2)

    def test_redis_down_refuses_budgets_admits_the_rest_and_loses_no_record(self) -> None:
        self.live.stop()
        error = go(attempt(make_reservation(self.s, new_call(), limits(self.s, monthly_budget=100), cost=1)))
        assert isinstance(error, ApiError)
        self.assertEqual(
            (error.status, error.type, error.code, error.headers["Retry-After"]), (503, "api_error", "budget_unavailable", "5")
        )
        self.assertIn("budget counters", error.message)
        during = self.reserve(limits(self.s, rpm=1, max_concurrency=1))  # limits fail open
        self.assertEqual(go(ledger.reserve(make_reservation(self.s, new_call(), limits(self.s, rpm=1)))), {})
        self.settle(during, cost=5)
        wait_until(lambda: UsageRecord.objects.filter(call_id=during.call_id).exists(), message="the record written")
        self.assertEqual(UsageRecord.objects.get(call_id=during.call_id).cost, 5)

    def test_a_settle_that_fails_is_retried_once_redis_answers(self) -> None:
        scope = limits(self.s, monthly_budget=100, max_concurrency=1)
        before = self.reserve(scope, cost=3)
        assert self.live.process is not None
        os.kill(self.live.process.pid, signal.SIGSTOP)  # hung: nothing answers, nothing is lost
        try:
            self.settle(before, cost=2_000_000)  # times out: the record is written, the counters wait
            wait_until(lambda: UsageRecord.objects.filter(call_id=before.call_id).exists(), message="the record written while Redis hangs")
        finally:
            os.kill(self.live.process.pid, signal.SIGCONT)
        self.backend.mark_up()
        self.backend.keeper.retry_pending()  # what the keeper does within KEEP_INTERVAL_SECONDS
        client = self.backend.sync_client()
        values: list[bytes] = client.hmget(budget_key(self.s, scope, before.month), ["micro", "pico", "held"])  # type: ignore[assignment]
        micro, pico, held = (int(value) for value in values)
        self.assertEqual((micro, pico, held), (2, 0, 0))
        self.assertFalse(client.exists(call_key(self.s, before.call_id)))
        self.reserve(scope)  # its concurrency slot is back

    def reserve_while_hung(self, r: ledger.Reservation) -> dict[str, str] | ApiError:
        """Reserve `r` on a Redis that receives it and hangs past the timeout: the answer is lost."""
        pid = self.live.process.pid if self.live.process else 0

        async def hang_after_connecting() -> dict[str, str] | ApiError:
            await ledger.reserve(make_reservation(self.s, new_call(), limits(self.s)))  # this loop's connection is open
            os.kill(pid, signal.SIGSTOP)
            try:
                return await attempt(r)
            finally:
                os.kill(pid, signal.SIGCONT)

        result = go(hang_after_connecting())
        client = self.backend.sync_client()
        wait_until(lambda: client.exists(call_key(self.s, r.call_id)), message="Redis ran the reserve it received while hung")
        self.backend.mark_up()
        return result

    def test_a_call_whose_reserve_answer_is_lost_goes_on_and_its_settle_settles_it(self) -> None:
        scope = limits(self.s, max_concurrency=1)
        lost = make_reservation(self.s, new_call(), scope)
        self.assertEqual(self.reserve_while_hung(lost), {})  # no budget: the call goes on
        self.backend.keeper.retry_pending()
        client = self.backend.sync_client()
        # Never undone while the call runs: its slot stays taken.
        self.assertEqual(client.hget(call_key(self.s, lost.call_id), "state"), b"reserved")
        error = go(attempt(make_reservation(self.s, new_call(), scope)))
        assert isinstance(error, ApiError)
        self.assertEqual(error.code, "concurrency_limit_exceeded")
        self.settle(lost, cost=3)
        wait_until(lambda: UsageRecord.objects.filter(call_id=lost.call_id).exists(), message="the record written")
        wait_until(lambda: not client.exists(call_key(self.s, lost.call_id)), message="the reservation dropped")
        self.reserve(scope)  # the slot is free again

    def test_a_refused_call_whose_reserve_answer_is_lost_is_undone(self) -> None:
        scope = limits(self.s, monthly_budget=100, max_concurrency=1)
        self.settle(self.reserve(scope), cost=0)  # the budget counter exists
        lost = make_reservation(self.s, new_call(), scope)
        error = self.reserve_while_hung(lost)
        assert isinstance(error, ApiError)
        self.assertEqual(error.code, "budget_unavailable")
        self.backend.keeper.retry_pending()
        self.assertFalse(self.backend.sync_client().exists(call_key(self.s, lost.call_id)))
        self.reserve(scope)  # the slot the lost reserve took is free again
        self.assertFalse(UsageRecord.objects.filter(call_id=lost.call_id).exists())

    def test_an_evicting_redis_is_named_in_an_error(self) -> None:
        client = self.backend.sync_client()
        client.config_set("maxmemory-policy", "allkeys-lru")
        try:
            with self.assertLogs("aihub.ledger", "ERROR") as logs:
                self.assertEqual(check_eviction(client), "allkeys-lru")
            self.assertIn("noeviction", logs.output[0])
        finally:
            client.config_set("maxmemory-policy", "noeviction")
        with self.assertNoLogs("aihub.ledger", "ERROR"):
            self.assertEqual(check_eviction(client), "noeviction")
