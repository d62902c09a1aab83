"""OpenAI's rate-limit headers as the ledger writes them (pure functions, no counters)."""

from django.test import SimpleTestCase

from aihub.ledger import Window, dollars, duration, rate_headers
from aihub.tests.ledgers import limits


class DurationTests(SimpleTestCase):
    def test_it_writes_durations_as_openai_does(self) -> None:
        cases = {12: "12ms", 1000: "1s", 360_000: "6m0s", 90_500: "1m30.5s", 1_250: "1.25s", 0: "0s", 3_600_000: "1h0m0s"}
        for ms, text in cases.items():
            with self.subTest(ms=ms):
                self.assertEqual(duration(ms), text)


class RateHeaderTests(SimpleTestCase):
    def test_the_scope_with_least_left_speaks_for_each_unit(self) -> None:
        headers = rate_headers([("requests", 60, 59, 1000), ("requests", 10, 3, 42_000), ("tokens", 1000, 400, 36_000)])
        self.assertEqual(
            headers,
            {
                "x-ratelimit-limit-requests": "10",
                "x-ratelimit-remaining-requests": "3",
                "x-ratelimit-reset-requests": "42s",
                "x-ratelimit-limit-tokens": "1000",
                "x-ratelimit-remaining-tokens": "400",
                "x-ratelimit-reset-tokens": "36s",
            },
        )

    def test_no_rate_limit_means_no_headers(self) -> None:
        self.assertEqual(rate_headers([]), {})

    def test_a_window_gives_both_units_of_a_scope_with_both_limits(self) -> None:
        scope = limits("studio_h", rpm=10, tpm=1000)
        self.assertEqual(
            Window(calls=4, tokens=1200, reset_ms=59_500).states(scope), [("requests", 10, 6, 59_500), ("tokens", 1000, 0, 59_500)]
        )
        # Nothing counted in a unit: that unit is in its initial state already.
        self.assertEqual(Window(calls=0, tokens=0, reset_ms=0).states(scope), [("requests", 10, 10, 0), ("tokens", 1000, 1000, 0)])
        self.assertEqual(Window(calls=2, tokens=0, reset_ms=1_000).states(scope)[1], ("tokens", 1000, 1000, 0))
        self.assertEqual(Window(calls=2, tokens=5, reset_ms=1_000).states(limits("studio_h", rpm=3)), [("requests", 3, 1, 1_000)])


class DollarsTests(SimpleTestCase):
    def test_it_shows_cents_or_every_micro_dollar(self) -> None:
        self.assertEqual((dollars(12_500_000), dollars(123), dollars(0)), ("$12.50", "$0.000123", "$0.00"))
