"""The usage dashboard and the model board in a real browser: Debian's Chromium driven by Playwright,
against a live City process, with the upstream simulated on loopback (aihub/tests/upstream).

Screenshots at 1,400 px wide go to var/artifacts/admin/ (git-ignored).
"""

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import Page, expect, sync_playwright

from accounts.tests.test_dashboard_browser import CHROMIUM, CHROMIUM_FLAGS
from aihub.metering import insert_records
from aihub.models import UsageRecord, UsageRollup
from aihub.tests.live import AiLiveTestCase
from aihub.tests.test_rollups import record
from city.waiting import wait_until

ARTIFACTS = Path(settings.BASE_DIR) / "var" / "artifacts" / "admin"
PASSWORD = "a long passphrase for the admin"
WIDTH = 1400


class AdminPagesInChromiumTests(AiLiveTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        # The admin's CSS, served from STATIC_ROOT as `make run` collects it, before the process starts.
        call_command("collectstatic", interactive=False, verbosity=0)
        super().setUpClass()

    def setUp(self) -> None:
        super().setUp()
        self.assertTrue(Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make browser` (apt-get install chromium).")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
        self.other = self.ok(self.admin.post("/v1/studios/create", json={"name": "Beta Works"}))
        other_token = self.ok(self.admin.post("/v1/studios/tokens/apply", json={"studio_id": self.other["id"], "name": "beta ci"}))
        now = timezone.now()
        models = ["deepseek-v4-flash", "gpt-5-mini", "claude-sonnet-4-6", "gemini-2.5-flash"]
        rows = []
        for day in range(14):
            for n, model in enumerate(models):
                for k in range(1 + (day + n) % 3):
                    studio, token = (self.studio["id"], self.token_id) if (day + k) % 3 else (self.other["id"], other_token["id"])
                    rows.append(
                        record(
                            f"d{day}-{n}-{k}",
                            studio,
                            at=now - timedelta(days=day, hours=k),
                            token_id=token,
                            model=model,
                            status=502 if (day + n + k) % 7 == 0 else 200,
                        )
                    )
        insert_records(rows)
        self.written = len(rows)  # read here: Playwright's loop and the ORM do not mix

    def shot(self, page: Page, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def sign_in(self, page: Page) -> None:
        page.goto(f"{self.city.url}/admin/login/?next=/admin/")
        page.fill("#id_username", "root")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        expect(page.locator("#app-pages")).to_contain_text("Usage dashboard")

    def test_the_dashboard_draws_its_charts_and_the_model_board_tests_a_model(self) -> None:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": WIDTH, "height": 900})
            self.sign_in(page)

            page.click("text=Usage dashboard")
            expect(page.locator("h1")).to_have_text("Usage")
            page.select_option("#id_range", "30d")
            page.click("input[value=Show]")
            expect(page.locator("#period")).to_contain_text("Last 30 days")
            expect(page.locator("#spend-legend")).to_contain_text("claude-sonnet-4-6")
            self.assertGreater(page.locator("#spend-chart svg rect").count(), 20)
            self.assertGreater(page.locator("#traffic-chart svg rect").count(), 14)
            expect(page.locator("#top-studios")).to_contain_text("Beta Works")
            expect(page.locator("#top-tokens")).to_contain_text("game server")
            requests = int(page.inner_text("#total-requests"))
            self.assertEqual(requests, self.written)
            # Readable at 1,400 px: the charts and the totals side by side, nothing wider than the window.
            chart, totals = page.locator("#spend-chart svg").bounding_box(), page.locator("#totals").bounding_box()
            assert chart is not None and totals is not None
            self.assertGreater(chart["width"], 600)
            self.assertGreater(totals["x"], chart["x"] + chart["width"])
            self.assertLessEqual(page.evaluate("document.documentElement.scrollWidth"), WIDTH)
            self.shot(page, "01-usage-dashboard")

            page.goto(f"{self.city.url}/admin/usage/?range=custom&start=2026-12-09&end=2026-12-01")
            expect(page.locator(".messagelist")).to_contain_text("The end date is before the start date")
            self.shot(page, "02-usage-dashboard-bad-range")

            page.click("text=Model board")
            row = page.locator("#model-deepseek-v4-flash")
            expect(row).to_contain_text("yes")
            expect(page.locator("#model-claude-sonnet-4-6")).to_contain_text("ANTHROPIC_API_KEY")
            page.fill("#studio_id", self.studio["id"])
            row.get_by_role("button", name="Test").click()
            expect(page.locator("#outcome")).to_contain_text("deepseek-v4-flash answered")
            expect(page.locator("#outcome")).to_contain_text(f"billed to studio {self.studio['id']}")
            self.shot(page, "03-model-board-test-answered")
            request_id = page.inner_text("#outcome small").split()[1].rstrip(",")

            page.locator("#model-text-embedding-3-small").get_by_role("button", name="Test").click()
            expect(page.locator("#outcome")).to_contain_text("text-embedding-3-small answered")
            expect(page.locator("#outcome")).to_contain_text("a vector of")

            self.sim.fail(500, message="the simulated upstream is down")
            page.locator("#model-deepseek-v4-flash").get_by_role("button", name="Test").click()
            expect(page.locator("#outcome")).to_contain_text("failed: status 502 (upstream_error)")
            expect(page.locator("#outcome-error")).to_contain_text("The upstream provider failed with status 500")
            expect(page.locator("#outcome-error")).to_contain_text("the simulated upstream is down")
            self.assertNotIn("Traceback", page.content())
            self.shot(page, "04-model-board-upstream-failure")
            browser.close()

        # Both test calls were metered like any call of that studio: records and rollups, no token.
        tested = UsageRecord.objects.filter(studio_id=self.studio["id"], token_id=None, model="deepseek-v4-flash")
        wait_until(lambda: tested.count() == 2, message="the two test calls' usage records")
        self.assertEqual(sorted(tested.values_list("status", flat=True)), [200, 502])
        self.assertTrue(tested.filter(request_id=request_id, status=200, cost__gt=0).exists())
        rollup = UsageRollup.objects.filter(studio_id=self.studio["id"], token_id="", model="deepseek-v4-flash")
        self.assertEqual(sum(rollup.values_list("requests", flat=True)), 2)
