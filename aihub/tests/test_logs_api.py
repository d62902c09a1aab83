import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from accounts.models import Account
from accounts.operations import create_account
from aihub.models import UsageRecord
from studios import operations
from studios.models import UserToken
from studios.testing import ADMIN_ACTOR, CityTestCase

LOGS = "/v1/ai/logs"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class RequestLogTests(CityTestCase):
    dana: Account
    dana_tok: UserToken
    dana_token: str
    alice_rows: list[UsageRecord]
    failed: UsageRecord
    cancelled: UsageRecord
    danas: UsageRecord
    charlies: UsageRecord

    @classmethod
    def setUpTestData(cls) -> None:
        super().setUpTestData()
        cls.dana = create_account(cls.alice_studio.id, "dana@example.com", email_verified=True, actor=ADMIN_ACTOR)
        cls.dana_tok, cls.dana_token = operations.issue_token(
            cls.alice_studio.id, "dana's key", expires_at=None, actor=ADMIN_ACTOR, account_id=cls.dana.id
        )

        def record(n: int, **fields: Any) -> UsageRecord:
            base = {
                "created_at": T0 + timedelta(minutes=n // 2),  # two records a minute: equal times page by id
                "studio": cls.alice_studio,
                "token_id": cls.bob.id,
                "request_id": f"req_{n}",
                "call_id": f"call_{n:026d}",
                "model": "deepseek-v4-flash",
                "provider": "deepseek",
                "deployment": "deepseek-chat",
                "modality": "chat",
                "route": "chat/completions",
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "cost": 1,
            }
            return UsageRecord.objects.create(**{**base, **fields})

        cls.alice_rows = [record(n) for n in range(7)]
        cls.failed = record(7, status=502, error_code="upstream_error", model="claude-haiku-4-5", provider="anthropic")
        cls.cancelled = record(8, status=499, error_code="client_closed", streamed=True, cancelled=True, ttft_ms=40)
        cls.danas = record(9, token_id=cls.dana_tok.id, account_id=cls.dana.id, cost=280_000_000_123, cached_tokens=4)
        cls.charlies = record(10, studio=cls.charlie_studio, token_id=cls.charlie.id, request_id="req_charlie")

    def ids(self, token: str, **params: Any) -> list[str]:
        return [row["request_id"] for row in self.assertOk(self.get(LOGS, params, token=token))["items"]]

    def test_pages_go_newest_first_and_their_cursors_cover_every_row_once(self) -> None:
        seen, cursor, pages = [], None, 0
        while True:
            params = {"limit": 3} if cursor is None else {"limit": 3, "cursor": cursor}
            body = self.assertOk(self.admin_get(LOGS, params))
            seen += [(row["created_at"], row["request_id"]) for row in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            self.assertEqual(body["has_more"], cursor is not None)
            if cursor is None:
                break
        self.assertEqual(pages, 4)
        expected = sorted(UsageRecord.objects.all(), key=lambda r: (r.created_at, r.id), reverse=True)
        self.assertEqual([r for _, r in seen], [r.request_id for r in expected])
        self.assertEqual(len({r for _, r in seen}), 11)

    def test_a_row_says_everything_about_the_call_but_its_text(self) -> None:
        response = self.get(LOGS, {"request_id": "req_9"}, token=self.dana_token)
        row = json.loads(response.content, parse_float=Decimal)["items"][0]
        self.assertEqual(row["cost"], Decimal("0.280000000123"))  # exact, not a double's neighbour
        self.assertEqual(
            {k: row[k] for k in ("id", "route", "deployment", "input_tokens", "output_tokens", "cached_tokens", "account_id")},
            {
                "id": self.danas.call_id,
                "route": "chat/completions",
                "deployment": "deepseek-chat",
                "input_tokens": 10,
                "output_tokens": 5,
                "cached_tokens": 4,
                "account_id": self.dana.id,
            },
        )
        self.assertNotIn("prompt", row)
        row = self.assertOk(self.get(LOGS, {"status": "cancelled"}, token=self.bob_token))["items"][0]
        self.assertEqual((row["status"], row["streamed"], row["cancelled"], row["ttft_ms"]), (499, True, True, 40))

    def test_filters(self) -> None:
        admin = self.admin_key
        self.assertEqual(self.ids(admin, status="5xx"), ["req_7"])
        self.assertEqual(self.ids(admin, status="502"), ["req_7"])
        self.assertEqual(self.ids(admin, status="error"), ["req_7"])  # 499 is the client's leaving, not an error
        self.assertEqual(self.ids(admin, status="4xx"), ["req_8"])
        self.assertEqual(len(self.ids(admin, status="2xx")), 9)
        self.assertEqual(self.ids(admin, error_code="client_closed"), ["req_8"])
        self.assertEqual(self.ids(admin, model="claude-haiku-4-5"), ["req_7"])
        self.assertEqual(self.ids(admin, studio_id=self.alice_studio.id, model="claude-haiku-4-5"), ["req_7"])
        self.assertEqual(self.ids(admin, token_id=self.charlie.id), ["req_charlie"])
        self.assertEqual(self.ids(admin, account_id=self.dana.id), ["req_9"])
        self.assertEqual(self.ids(admin, request_id="req_3"), ["req_3"])
        window = {"start": (T0 + timedelta(minutes=1)).isoformat(), "end": (T0 + timedelta(minutes=2)).isoformat()}
        self.assertEqual(self.ids(admin, **window), ["req_3", "req_2"])
        self.assertEqual(self.ids(admin, studio_id=self.alice_studio.id, status="5xx", **window), [])

    def test_a_user_sees_only_its_studio_and_an_accounts_token_only_its_account(self) -> None:
        bobs = self.ids(self.bob_token, limit=200)
        self.assertEqual(len(bobs), 10)
        self.assertNotIn("req_charlie", bobs)
        self.assertEqual(self.ids(self.bob_token, request_id="req_charlie"), [])
        self.assertEqual(self.ids(self.bob_token, token_id=self.charlie.id), [])
        self.assertEqual(self.ids(self.charlie_token), ["req_charlie"])
        self.assertEqual(self.ids(self.dana_token), ["req_9"])
        self.assertEqual(self.ids(self.dana_token, token_id=self.bob.id), [])
        self.assertError(self.get(LOGS, {"studio_id": self.charlie_studio.id}, token=self.bob_token), 403, "permission_error")
        self.assertError(self.get(LOGS, {"account_id": "acct_other"}, token=self.dana_token), 403, "permission_error")
        self.assertError(self.get(LOGS, {}), 401, "authentication_error")

    def test_bad_input_is_a_400_naming_the_field(self) -> None:
        bad: list[tuple[dict[str, Any], str]] = [
            ({"limit": 0}, "limit"),
            ({"limit": 201}, "limit"),
            ({"status": "6xx"}, "status"),
            ({"status": "ok"}, "status"),
            ({"start": "yesterday"}, "start"),
            ({"start": "2026-12-02T00:00:00Z", "end": "2026-12-01T00:00:00Z"}, "end"),
            ({"cursor": "12345"}, "cursor"),
            ({"cursor": "MDEyMzQuMQ"}, "cursor"),  # "01234.1": a leading zero City never writes
            ({"sort": "cost"}, "sort"),
        ]
        for params, field in bad:
            with self.subTest(params=params):
                self.assertError(self.admin_get(LOGS, params), 400, "invalid_request_error", param=field)
        self.assertError(self.admin_post(LOGS, {"limit": "many"}), 400, "invalid_request_error", param="limit")
        self.assertError(self.admin_get(LOGS, {"studio_id": "studio_nope"}), 404, "not_found_error", code="studio_not_found")

    def test_a_page_is_one_query(self) -> None:
        self.get(LOGS, token=self.bob_token)  # the token, now in the cache
        with self.assertNumQueries(1):
            body = self.assertOk(self.get(LOGS, {"limit": 2, "status": "2xx"}, token=self.bob_token))
        with self.assertNumQueries(1):
            self.assertOk(self.get(LOGS, {"limit": 2, "cursor": body["next_cursor"]}, token=self.bob_token))
