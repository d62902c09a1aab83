"""The request log in the Django admin, in a real browser (Debian's Chromium driven by Playwright)
against a live City process: the list, a filter, then one request found by its id.

Screenshots go to var/artifacts/request-log/ (git-ignored).
"""

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from accounts.tests.test_dashboard_browser import CHROMIUM, CHROMIUM_FLAGS
from aihub.models import UsageRecord
from city.livecity import LiveCity, LiveCityTestCase
from studios import operations

ARTIFACTS = Path(settings.BASE_DIR) / "var" / "artifacts" / "request-log"
PASSWORD = "a long admin passphrase 42"


class RequestLogInChromiumTests(LiveCityTestCase):
    city: LiveCity

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        cls.city = LiveCity()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.city.stop()
        super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        self.assertTrue(Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make browser` (apt-get install chromium).")
        # Set-up in the database, before the browser starts (Playwright's loop and the ORM do not mix).
        get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
        studio = operations.create_studio("Paint Studio", actor="test-admin")
        token, _ = operations.issue_token(studio.id, "render farm", expires_at=None, actor="test-admin")
        now = timezone.now()
        for n in range(30):
            failed = n % 10 == 3
            UsageRecord.objects.create(
                created_at=now - timedelta(minutes=n),
                studio=studio,
                token_id=token.id,
                request_id=f"req_paint_{n:02d}",
                call_id=f"call_paint_{n:02d}",
                model="claude-haiku-4-5" if n % 2 else "deepseek-v4-flash",
                provider="anthropic" if n % 2 else "deepseek",
                deployment="claude-haiku-4-5-20251001" if n % 2 else "deepseek-chat",
                modality="chat",
                route="chat/completions",
                prompt_tokens=1200 + n,
                completion_tokens=300,
                cached_tokens=1000 if n % 3 == 0 else 0,
                cost=0 if failed else 1_234_567_000 + n,
                latency_ms=800 + 10 * n,
                ttft_ms=150 + n,
                streamed=n % 2 == 0,
                status=502 if failed else 200,
                error_code="upstream_error" if failed else "",
            )

    def test_an_admin_lists_filters_and_opens_one_request(self) -> None:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{self.city.url}/admin/login/?next=/admin/aihub/usagerecord/")
            page.fill("#id_username", "root")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")

            expect(page.locator("#result_list tbody tr")).to_have_count(30)
            expect(page.locator("#result_list")).to_contain_text("anthropic / claude-haiku-4-5-20251001")
            expect(page.locator("#result_list")).to_contain_text("0.001234567")
            page.screenshot(path=str(ARTIFACTS / "1-list.png"), full_page=True)

            page.click("#changelist-filter a:text-is('5xx')")
            expect(page.locator("#result_list tbody tr")).to_have_count(3)
            expect(page.locator("#result_list")).to_contain_text("upstream_error")
            page.screenshot(path=str(ARTIFACTS / "2-failures.png"), full_page=True)

            page.goto(f"{self.city.url}/admin/aihub/usagerecord/")
            page.fill("#searchbar", "req_paint_13")
            page.press("#searchbar", "Enter")
            expect(page.locator("#result_list tbody tr")).to_have_count(1)
            page.click("#result_list a:text-is('req_paint_13')")
            content = page.locator("#content")
            for shown in ("req_paint_13", "call_paint_13", "claude-haiku-4-5-20251001", "upstream_error", "502", "1213"):
                expect(content).to_contain_text(shown)
            expect(page.locator("input[type=submit][name=_save]")).to_have_count(0)  # read-only
            page.screenshot(path=str(ARTIFACTS / "3-one-request.png"), full_page=True)
            browser.close()
