from django.contrib.auth import get_user_model
from django.test import Client

from aihub.models import UsageRecord
from studios.testing import CityTestCase

USAGE = "/admin/aihub/usagerecord/"


class UsageRecordAdminTests(CityTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.browser = Client()
        self.browser.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "a long passphrase"))
        common = {"studio": self.alice_studio, "model": "deepseek-v4-flash", "provider": "deepseek", "modality": "chat"}
        self.ok = UsageRecord.objects.create(
            **common, request_id="req_ok", token_id=self.bob.id, prompt_tokens=1000, completion_tokens=500, cost=280_000_000_000
        )
        self.failed = UsageRecord.objects.create(**common, request_id="req_failed", status=502, error_code="upstream_error")
        UsageRecord.objects.create(**{**common, "studio": self.charlie_studio}, request_id="req_other")

    def test_the_list_shows_each_call_with_its_cost_in_dollars(self) -> None:
        page = self.browser.get(USAGE)
        self.assertContains(page, "deepseek-v4-flash")
        self.assertContains(page, "0.28")  # 280,000,000,000 units of 1e-12 USD
        self.assertContains(page, "Alice Studio")

    def test_search_by_request_id_studio_or_token_and_filter_failures(self) -> None:
        def ids(query: str) -> set[str]:
            page = self.browser.get(USAGE + query)
            self.assertEqual(page.status_code, 200)
            return {r.request_id for r in page.context["cl"].result_list}

        self.assertEqual(ids("?q=req_failed"), {"req_failed"})
        self.assertEqual(ids(f"?q={self.alice_studio.id}"), {"req_ok", "req_failed"})
        self.assertEqual(ids(f"?q={self.bob.id}"), {"req_ok"})
        self.assertEqual(ids("?outcome=failed"), {"req_failed"})

    def test_records_are_read_only(self) -> None:
        self.assertEqual(self.browser.get(USAGE + "add/").status_code, 403)
        response = self.browser.post(f"{USAGE}{self.ok.pk}/change/", {"cost": "0"})
        self.assertEqual(response.status_code, 403)
        self.assertEqual(UsageRecord.objects.get(pk=self.ok.pk).cost, 280_000_000_000)
        self.assertEqual(self.browser.post(f"{USAGE}{self.ok.pk}/delete/", {"post": "yes"}).status_code, 403)
        self.assertTrue(UsageRecord.objects.filter(pk=self.ok.pk).exists())
