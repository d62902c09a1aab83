from datetime import timedelta

from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from aihub.models import UsageRecord
from studios.testing import CityTestCase

USAGE = "/admin/aihub/usagerecord/"


class UsageRecordAdminTests(CityTestCase):
    """The request log in the Django admin."""

    def setUp(self) -> None:
        super().setUp()
        self.browser = Client()
        self.browser.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "a long passphrase"))
        common = {"studio": self.alice_studio, "model": "deepseek-v4-flash", "provider": "deepseek", "modality": "chat"}
        self.ok = UsageRecord.objects.create(
            **common,
            request_id="req_ok",
            call_id="call_ok",
            token_id=self.bob.id,
            prompt_tokens=1000,
            completion_tokens=500,
            cost=280_000_000_001,
            route="chat/completions",
            deployment="deepseek-chat",
            streamed=True,
            ttft_ms=120,
            cached_tokens=300,
            reasoning_tokens=40,
        )
        self.failed = UsageRecord.objects.create(**common, request_id="req_failed", status=502, error_code="upstream_error")
        self.left = UsageRecord.objects.create(**common, request_id="req_left", status=499, error_code="client_closed", cancelled=True)
        UsageRecord.objects.create(
            **{**common, "studio": self.charlie_studio, "model": "claude-haiku-4-5"},
            request_id="req_other",
            created_at=timezone.now() - timedelta(days=3),
        )

    def ids(self, query: str) -> set[str]:
        page = self.browser.get(USAGE + query)
        self.assertEqual(page.status_code, 200)
        return {r.request_id for r in page.context["cl"].result_list}

    def test_the_list_shows_each_call_with_its_cost_in_exact_dollars(self) -> None:
        page = self.browser.get(USAGE)
        for shown in ("req_ok", "deepseek / deepseek-chat", "chat/completions", "0.280000000001", "Alice Studio", "upstream_error"):
            self.assertContains(page, shown)

    def test_search_and_filters(self) -> None:
        self.assertEqual(self.ids("?q=req_failed"), {"req_failed"})
        self.assertEqual(self.ids("?q=call_ok"), {"req_ok"})
        self.assertEqual(self.ids(f"?q={self.alice_studio.id}"), {"req_ok", "req_failed", "req_left"})
        self.assertEqual(self.ids(f"?studio_id={self.charlie_studio.id}"), {"req_other"})
        self.assertEqual(self.ids(f"?token_id={self.bob.id}"), {"req_ok"})
        self.assertEqual(self.ids("?model=claude-haiku-4-5"), {"req_other"})
        self.assertEqual(self.ids("?status=error"), {"req_failed"})
        self.assertEqual(self.ids("?status=5xx"), {"req_failed"})
        self.assertEqual(self.ids("?status=cancelled"), {"req_left"})
        self.assertEqual(self.ids("?status=2xx"), {"req_ok", "req_other"})
        self.assertEqual(self.ids("?error_code=client_closed"), {"req_left"})
        self.assertEqual(self.ids("?since=24h"), {"req_ok", "req_failed", "req_left"})
        self.assertEqual(self.ids("?since=7d&status=2xx"), {"req_ok", "req_other"})

    def test_the_filters_offer_what_the_log_holds_without_counting_it(self) -> None:
        page = self.browser.get(USAGE + f"?studio_id={self.alice_studio.id}")
        self.assertContains(page, "bob laptop")  # the studio's tokens, once a studio is chosen
        self.assertContains(page, "upstream_error")
        self.assertContains(page, "claude-haiku-4-5")  # every catalog model
        # Session and user, the capped count, the rows, then studios, tokens and error codes for the filters.
        with self.assertNumQueries(7):
            self.browser.get(USAGE + f"?studio_id={self.alice_studio.id}&status=error&since=30d")

    def test_the_detail_page_shows_every_field(self) -> None:
        page = self.browser.get(f"{USAGE}{self.ok.pk}/change/")
        self.assertEqual(page.status_code, 200)
        for shown in ("req_ok", "call_ok", "deepseek-chat", "chat/completions", "0.280000000001", "120", "300", "40", self.bob.id):
            self.assertContains(page, shown)

    def test_records_are_read_only(self) -> None:
        self.assertEqual(self.browser.get(USAGE + "add/").status_code, 403)
        response = self.browser.post(f"{USAGE}{self.ok.pk}/change/", {"cost": "0"})
        self.assertEqual(response.status_code, 403)
        self.assertEqual(UsageRecord.objects.get(pk=self.ok.pk).cost, 280_000_000_001)
        self.assertEqual(self.browser.post(f"{USAGE}{self.ok.pk}/delete/", {"post": "yes"}).status_code, 403)
        self.assertTrue(UsageRecord.objects.filter(pk=self.ok.pk).exists())
