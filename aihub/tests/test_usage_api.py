"""GET/POST /v1/ai/usage: the rollups' sums equal the records' for the same filters, and each caller
sees only what it may (the admin any studio, a token its studio, an account's token its account)."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum

from accounts.models import Account
from accounts.operations import create_account
from aihub.metering import insert_records
from aihub.models import COST_UNITS_PER_USD, UsageRecord
from aihub.testing import usage_record
from aihub.tests.live import AiLiveTestCase
from city.waiting import wait_until
from studios import operations
from studios.models import UserToken
from studios.testing import ADMIN_ACTOR, CityTestCase

USAGE = "/v1/ai/usage"
T0 = datetime(2026, 11, 20, 10, 15, tzinfo=UTC)
RANGE = {"start": "2026-11-01", "end": "2026-12-01T00:00:00Z"}


def record_sums(**where: Any) -> dict[str, Any]:
    """What the answer's totals must be: the records' own sums (cost in exact dollars)."""
    found = UsageRecord.objects.filter(**where).aggregate(
        requests=Count("id"),
        errors=Count("id", filter=~Q(status__range=(200, 299)) & ~Q(status=499)),
        cancelled=Count("id", filter=Q(status=499)),
        input_tokens=Sum("prompt_tokens", default=0),
        output_tokens=Sum("completion_tokens", default=0),
        cached_tokens=Sum("cached_tokens", default=0),
        cost=Sum("cost", default=0),
    )
    return {**found, "cost": Decimal(found["cost"]) / COST_UNITS_PER_USD}


def exact(totals: dict[str, Any]) -> dict[str, Any]:
    return {**totals, "cost": Decimal(str(totals["cost"]))}


class UsageApiTests(CityTestCase):
    dana: Account
    dana_key: UserToken
    dana_token: str

    @classmethod
    def setUpTestData(cls) -> None:
        super().setUpTestData()
        cls.dana = create_account(cls.alice_studio.id, "dana@example.com", email_verified=True, actor=ADMIN_ACTOR)
        cls.dana_key, cls.dana_token = operations.issue_token(
            cls.alice_studio.id, "dana's key", expires_at=None, actor=ADMIN_ACTOR, account_id=cls.dana.id
        )
        alice, charlie = cls.alice_studio.id, cls.charlie_studio.id
        rows = [
            # (studio, token, account, model, status, hours after T0, cost in 1e-12 USD)
            (alice, cls.bob.id, None, "deepseek-v4-flash", 200, 0, 123_456_789_012),
            (alice, cls.bob.id, None, "deepseek-v4-flash", 502, 1, 0),
            (alice, cls.bob.id, None, "gpt-5-mini", 499, 30, 7),
            (alice, cls.dana_key.id, cls.dana.id, "gpt-5-mini", 200, 2, 10**12 + 1),
            (alice, None, None, '=HYPERLINK("x")', 200, 50, 5),  # a catalog name a spreadsheet would run
            (charlie, cls.charlie.id, None, "deepseek-v4-flash", 200, 3, 999),
            (charlie, cls.charlie.id, None, "deepseek-v4-flash", 200, -24 * 40, 1),  # before the range
        ]
        insert_records(
            [
                {
                    "created_at": T0 + timedelta(hours=hours),
                    "call_id": f"call_{i}",
                    "studio_id": studio,
                    "token_id": token,
                    "account_id": account,
                    "request_id": f"req_{i}",
                    "model": model,
                    "provider": "deepseek",
                    "modality": "chat",
                    "prompt_tokens": 100 + i,
                    "completion_tokens": 20 + i,
                    "usage_estimated": False,
                    "cost": cost,
                    "latency_ms": 40,
                    "ttft_ms": None,
                    "status": status,
                    "error_code": "",
                    "cached_tokens": i,
                }
                for i, (studio, token, account, model, status, hours, cost) in enumerate(rows)
            ]
        )

    def usage(self, token: str, **params: str) -> dict[str, Any]:
        return self.assertOk(self.get(USAGE, {**RANGE, **params}, token=token))

    def test_totals_are_the_records_sums_for_the_admin_and_for_a_token(self) -> None:
        in_range = {"created_at__gte": datetime(2026, 11, 1, tzinfo=UTC), "created_at__lt": datetime(2026, 12, 1, tzinfo=UTC)}
        alice = self.alice_studio.id
        everything = self.usage(self.admin_key)
        self.assertEqual(exact(everything["totals"]), record_sums(**in_range))
        self.assertEqual((everything["object"], everything["group_by"], everything["start"]), ("usage", "day", "2026-11-01T00:00:00Z"))
        self.assertEqual([row["day"] for row in everything["rows"]], ["2026-11-20", "2026-11-21", "2026-11-22"])
        by_studio = self.usage(self.admin_key, group_by="studio")["rows"]
        self.assertEqual({row["studio_id"]: row["requests"] for row in by_studio}, {alice: 5, self.charlie_studio.id: 1})
        cases = [
            (self.admin_key, {"studio_id": alice}, {"studio_id": alice}),
            (self.admin_key, {"model": "gpt-5-mini"}, {"model": "gpt-5-mini"}),
            (self.bob_token, {}, {"studio_id": alice}),
            (
                self.bob_token,
                {"token_id": self.bob.id, "model": "deepseek-v4-flash"},
                {"token_id": self.bob.id, "model": "deepseek-v4-flash"},
            ),
        ]
        for token, params, where in cases:
            with self.subTest(params=params, admin=token == self.admin_key):
                for group_by in ("day", "model", "token"):
                    answer = self.usage(token, group_by=group_by, **params)
                    self.assertEqual(exact(answer["totals"]), record_sums(**in_range, **where))
                    self.assertEqual(sum(row["requests"] for row in answer["rows"]), answer["totals"]["requests"])
        dollars = self.usage(self.bob_token, group_by="model", model="deepseek-v4-flash")["rows"][0]["cost"]
        self.assertEqual(Decimal(str(dollars)), Decimal("0.123456789012"))  # exact, 12 decimals

    def test_a_token_never_sees_another_studio_and_an_accounts_token_sees_its_account(self) -> None:
        bob_view = self.usage(self.bob_token, group_by="token")
        self.assertEqual({row["token_id"] for row in bob_view["rows"]}, {self.bob.id, self.dana_key.id, None})
        self.assertEqual(self.usage(self.bob_token, token_id=self.charlie.id)["rows"], [])  # another studio's token: ANDed, nothing
        refused = self.get(USAGE, {"studio_id": self.charlie_studio.id}, token=self.bob_token)
        self.assertError(refused, 403, "permission_error", "studio_mismatch", "studio_id")

        dana_view = self.usage(self.dana_token, group_by="token")
        self.assertEqual([row["token_id"] for row in dana_view["rows"]], [self.dana_key.id])
        self.assertEqual(exact(dana_view["totals"])["cost"], Decimal("1.000000000001"))
        self.assertEqual(self.usage(self.dana_token, token_id=self.bob.id)["rows"], [])
        refused = self.get(USAGE, {"account_id": "acct_someone_else"}, token=self.dana_token)
        self.assertError(refused, 403, "permission_error", "account_mismatch", "account_id")

    def test_csv_has_the_json_rows_and_runs_no_formula(self) -> None:
        answer = self.usage(self.admin_key, group_by="model")
        response = self.get(USAGE, {**RANGE, "group_by": "model", "format": "csv"}, token=self.admin_key)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "text/csv; charset=utf-8")
        self.assertTrue(response["Content-Disposition"].startswith('attachment; filename="usage-model-'))
        table = list(csv.DictReader(io.StringIO(response.content.decode())))
        self.assertEqual(
            [row["model"] for row in table], [row["model"] if row["model"][0] != "=" else "'" + row["model"] for row in answer["rows"]]
        )
        self.assertIn("'=HYPERLINK", response.content.decode())
        for line, row in zip(table, answer["rows"], strict=True):
            self.assertEqual(Decimal(line["cost"]), Decimal(str(row["cost"])))
            self.assertEqual(
                [int(line[name]) for name in ("requests", "errors", "input_tokens")], [row["requests"], row["errors"], row["input_tokens"]]
            )

    def test_media_units_add_up_per_model(self) -> None:
        insert_records(
            [usage_record(studio_id=self.alice_studio.id, created_at=T0, model="dall-e-3", unit="images", units=n, cost=n) for n in (1, 2)]
        )
        rows = {row["model"]: row for row in self.usage(self.admin_key, group_by="model")["rows"]}
        self.assertEqual((rows["dall-e-3"]["unit"], rows["dall-e-3"]["units"]), ("images", 3))
        self.assertEqual((rows["deepseek-v4-flash"]["unit"], rows["deepseek-v4-flash"]["units"]), (None, 0))
        self.assertNotIn("units", self.usage(self.admin_key, group_by="day")["rows"][0])  # units of several models do not add up
        table = list(
            csv.DictReader(
                io.StringIO(self.get(USAGE, {**RANGE, "group_by": "model", "format": "csv"}, token=self.admin_key).content.decode())
            )
        )
        self.assertEqual({(row["unit"], row["units"]) for row in table if row["model"] == "dall-e-3"}, {("images", "3")})

    def test_bad_input_is_a_400_that_names_the_field(self) -> None:
        bad = [
            ({"start": "2026-12-01", "end": "2026-11-01"}, "end"),
            ({"start": "2025-01-01", "end": "2026-12-01"}, "end"),  # over 400 days
            ({"start": "2026-10-01", "end": "2026-12-01", "group_by": "hour"}, "group_by"),
            ({"start": "yesterday"}, "start"),
            ({"end": "0001-01-01T00:00:00+01:00"}, "end"),
            ({"group_by": "week"}, "group_by"),
            ({"format": "xlsx"}, "format"),
            ({"colour": "blue"}, "colour"),
        ]
        for params, field in bad:
            with self.subTest(params=params):
                self.assertError(self.get(USAGE, params, token=self.admin_key), 400, "invalid_request_error", param=field)
        self.assertError(self.post(USAGE, {"start": 20261101}, token=self.admin_key), 400, "invalid_request_error", param="start")
        self.assertEqual(self.post(USAGE, {**RANGE, "group_by": "studio"}, token=self.admin_key).status_code, 200)
        self.assertEqual(self.get(USAGE).status_code, 401)

    def test_whole_days_take_one_query_and_ragged_ends_one_more(self) -> None:
        self.usage(self.bob_token)  # the token is cached from here on
        whole_days, ragged = {"start": "2026-11-15", "end": "2026-12-01"}, {"start": "2026-11-20T11:00Z", "end": "2026-11-22T03:00Z"}
        for group_by in ("day", "hour", "model", "token", "studio", "account"):
            for token in (self.admin_key, self.bob_token):
                with self.subTest(group_by=group_by), self.assertNumQueries(1):
                    self.get(USAGE, {**whole_days, "group_by": group_by}, token=token)
                with self.subTest(group_by=group_by, ragged=True), self.assertNumQueries(1 if group_by == "hour" else 2):
                    answer = self.assertOk(self.get(USAGE, {**ragged, "group_by": group_by}, token=token))
                where: dict[str, Any] = {
                    "created_at__gte": datetime(2026, 11, 20, 11, tzinfo=UTC),
                    "created_at__lt": datetime(2026, 11, 22, 3, tzinfo=UTC),
                }
                if token == self.bob_token:
                    where["studio_id"] = self.alice_studio.id
                self.assertEqual(exact(answer["totals"]), record_sums(**where))


class UsageOfRealCallsTests(AiLiveTestCase):
    def test_calls_through_city_are_summed_as_their_records(self) -> None:
        chat = {"model": "deepseek-v4-flash", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 20}
        for _ in range(3):
            self.ok(self.user.post("/v1/chat/completions", json=chat))
        self.sim.fail(400, times=1)
        self.assertEqual(self.user.post("/v1/chat/completions", json=chat).status_code, 400)
        self.ok(self.user.post("/v1/ai/text", json={"model": "gpt-5-mini", "prompt": "Hi", "max_tokens": 5}))
        wait_until(lambda: UsageRecord.objects.filter(studio_id=self.studio["id"]).count() >= 5, timeout=5)
        for client in (self.user, self.admin):
            params = {"group_by": "model"} if client is self.user else {"group_by": "model", "studio_id": self.studio["id"]}
            answer = self.ok(client.get(USAGE, params=params))
            self.assertEqual(exact(answer["totals"]), record_sums(studio_id=self.studio["id"]))
            self.assertEqual({row["model"]: row["requests"] for row in answer["rows"]}, {"deepseek-v4-flash": 4, "gpt-5-mini": 1})
            self.assertEqual(answer["totals"]["errors"], 1)
