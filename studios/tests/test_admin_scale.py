"""The admin at scale: 5,000 studios, 200,000 tokens and 50,000 audit entries; every list page and
search answers in under a second, with the same four queries as on an empty database.

The rows come from bench/admin_scale.py (multi-row INSERTs, COPY on PostgreSQL), which also times
the same pages with 200,000 audit entries.
"""

import time

from django.db import connection
from django.test import TestCase

from bench.admin_scale import admin_pages, seed
from city.tests.test_admin_pages import AdminPages
from studios.models import UserToken

PAGE_BUDGET_SECONDS = 1.0
# A page slow by design (a scan, a sort of every row) is slow at every attempt; a machine busy with
# other test runs is not busy at every attempt. The fastest of a few attempts measures the page.
ATTEMPTS = 3


class AdminAtScaleTests(AdminPages, TestCase):
    sample: dict[str, str]  # what seed() inserted that the searches look for

    @classmethod
    def setUpTestData(cls) -> None:
        super().setUpTestData()
        cls.sample = seed(studios=5_000, tokens=200_000, audit_entries=50_000)

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:  # seed() enlarged this connection's page cache; the next tests get the default back
                cursor.execute("PRAGMA cache_size = -2000")

    def fastest_answer_seconds(self, url: str) -> float:
        best = float("inf")
        for _ in range(ATTEMPTS):
            started = time.perf_counter()
            response = self.client.get(url)
            best = min(best, time.perf_counter() - started)
            self.assertEqual(response.status_code, 200, url)
            if best < PAGE_BUDGET_SECONDS:
                break
        return best

    def test_every_list_page_and_search_answers_within_a_second(self) -> None:
        for label, url in admin_pages(self.sample):
            with self.subTest(label):
                self.assertLess(self.fastest_answer_seconds(url), PAGE_BUDGET_SECONDS, f"{label}: {url}")

    def test_searches_find_their_rows(self) -> None:
        tokens = "/admin/studios/usertoken/"
        self.assertContains(self.page(tokens, {"q": self.sample["token_prefix"]}), self.sample["token_prefix"])
        self.assertContains(self.page(tokens, {"q": self.sample["token_name"]}), f" {self.sample['token_name']}</")
        by_studio = self.page(tokens, {"q": self.sample["studio_id"]})
        self.assertGreater(len(by_studio.context["cl"].result_list), 5)
        self.assertContains(self.page("/admin/studios/studio/", {"q": self.sample["studio_id"]}), self.sample["studio_id"])

    def test_counts_stop_at_ten_thousand(self) -> None:
        self.assertContains(self.page("/admin/studios/usertoken/"), "More than 10000 user tokens")
        revoked = UserToken.objects.filter(revoked_at__isnull=False).count()
        self.assertLess(revoked, 10_000)
        self.assertContains(self.page("/admin/studios/usertoken/", {"status": "revoked"}), f"\n{revoked} user tokens\n")
        self.assertContains(self.page("/admin/studios/studio/"), "5000 studios")
        # City's own list, through the same change-list template as every app's (city.admin_toolkit).
        self.assertContains(self.page("/admin/city/auditentry/"), "More than 10000 audit entries")

    def test_list_pages_run_four_queries_at_scale(self) -> None:
        for url in ("/admin/studios/studio/", "/admin/studios/usertoken/", "/admin/city/auditentry/"):
            with self.subTest(url), self.assertNumQueries(4):
                self.page(url)
