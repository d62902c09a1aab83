"""Rollups are the exact sums of the records written, however often a record is written."""

from datetime import UTC, datetime, timedelta

from django.db.models import Count, Sum

from aihub.metering import REFUNDED, insert_records
from aihub.models import UsageRecord, UsageRollup
from aihub.usage_query import UsageFilter, grouped, totals
from studios.testing import CityTestCase

T0 = datetime(2026, 12, 1, 10, 15, tzinfo=UTC)


def record(call_id: str, studio_id: str, *, at: datetime = T0, token_id: str | None = None, status: int = 200, **more: object) -> dict:
    return {
        "created_at": at,
        "call_id": call_id,
        "studio_id": studio_id,
        "token_id": token_id,
        "account_id": None,
        "request_id": f"req_{call_id}",
        "model": "deepseek-v4-flash",
        "provider": "deepseek",
        "modality": "chat",
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "usage_estimated": False,
        "cost": 123_456_789,
        "latency_ms": 40,
        "ttft_ms": None,
        "status": status,
        "error_code": "",
        "cached_tokens": 10,
        **more,
    }


class RollupTests(CityTestCase):
    def test_each_record_counts_once_in_its_hour(self) -> None:
        alice = self.alice_studio.id
        first = [
            record("call_1", alice, token_id=self.bob.id),
            record("call_2", alice, token_id=self.bob.id, status=502),
            record("call_3", alice, status=499, at=T0 + timedelta(hours=1)),
        ]
        insert_records(first)
        insert_records([first[0], record("call_4", alice, token_id=self.bob.id, model="gpt-5-mini")])  # call_1 again: the reaper's copy

        self.assertEqual(UsageRecord.objects.count(), 4)
        by_records = UsageRecord.objects.aggregate(n=Count("id"), cost=Sum("cost"), prompt=Sum("prompt_tokens"))
        by_rollups = UsageRollup.objects.aggregate(n=Sum("requests"), cost=Sum("cost"), prompt=Sum("prompt_tokens"))
        self.assertEqual(by_rollups, by_records)
        hour = UsageRollup.objects.get(hour=T0.replace(minute=0), token_id=self.bob.id, model="deepseek-v4-flash")
        self.assertEqual((hour.requests, hour.errors, hour.cancelled, hour.cached_tokens), (2, 1, 0, 20))
        later = UsageRollup.objects.get(hour=T0.replace(minute=0) + timedelta(hours=1))
        self.assertEqual((later.token_id, later.requests, later.errors, later.cancelled), ("", 1, 0, 1))

        whole = UsageFilter(start=T0 - timedelta(days=1), end=T0 + timedelta(days=1), studio_id=alice)
        self.assertEqual(totals(whole)["requests"], 4)
        self.assertEqual(totals(whole)["cost"], 4 * 123_456_789)
        self.assertEqual([(row["key"], row["requests"]) for row in grouped(whole, "model")], [("deepseek-v4-flash", 3), ("gpt-5-mini", 1)])
        self.assertEqual([row["requests"] for row in grouped(whole, "hour")], [3, 1])
        self.assertEqual(totals(UsageFilter(start=T0, end=T0 + timedelta(minutes=1), studio_id=self.charlie_studio.id))["requests"], 0)

    def test_a_call_twice_in_one_batch_counts_once(self) -> None:
        # Settled, and handed to settle_later after a failure: both copies can reach one batch.
        once = record("call_twice", self.alice_studio.id)
        insert_records([once, dict(once)])
        self.assertEqual(UsageRecord.objects.count(), 1)
        self.assertEqual(UsageRollup.objects.get().requests, 1)

    def test_a_refund_gives_back_cost_and_units_and_is_no_request(self) -> None:
        alice = self.alice_studio.id
        charge = record("call_video", alice, model="sora-2", unit="seconds", units=8, cost=800_000_000_000, latency_ms=900)
        refund = record(
            "call_video:refund", alice, model="sora-2", unit="seconds", units=-8, cost=-800_000_000_000, error_code=REFUNDED, latency_ms=0
        )
        insert_records([charge, refund])
        found = totals(UsageFilter(start=T0 - timedelta(days=1), end=T0 + timedelta(days=1), studio_id=alice))
        self.assertEqual((found["requests"], found["errors"], found["cost"], found["units"]), (1, 0, 0, 0))
        self.assertEqual(UsageRollup.objects.get(studio_id=alice).latency_ms, 900)
