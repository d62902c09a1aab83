"""OpenAI's rate-limit headers as the ledger writes them (pure functions, no counters)."""

from django.test import SimpleTestCase

from aihub.ledger import dollars, duration, per_unit, rate_headers, remaining


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

    def test_gcra_steps_are_exact_for_limits_that_do_not_divide_a_minute(self) -> None:
        q, r = per_unit(1, 7)  # 8571 ms and 3/7 of one
        self.assertEqual((q, r), (8571, 3))
        self.assertEqual(divmod(7 * q * 7 + 7 * r, 7), (60_000, 0))  # seven requests move the clock exactly one minute
        self.assertEqual(remaining(7, 60_000, 0), 0)
        self.assertEqual(remaining(7, q, r), 6)


class DollarsTests(SimpleTestCase):
    def test_it_shows_cents_or_every_micro_dollar(self) -> None:
        self.assertEqual((dollars(12_500_000), dollars(123), dollars(0)), ("$12.50", "$0.000123", "$0.00"))
