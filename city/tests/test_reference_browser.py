"""/v1/reference in a real browser (Debian's Chromium, driven by Playwright) against a live City: the
reference renders every route, and the browser fetches nothing from another origin.

Screenshots go to test-artifacts/reference/ (git-ignored).
"""

from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import expect, sync_playwright

from city.livecity import LiveCityTestCase

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "reference"


class ReferencePageInChromiumTests(LiveCityTestCase):
    def test_the_reference_renders_every_route_from_city_s_own_files(self) -> None:
        self.assertTrue(Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make browser` (apt-get install chromium).")
        call_command("collectstatic", interactive=False, verbosity=0)  # as `make migrate` does, before City starts
        city = self.start_city()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        requested: list[str] = []
        problems: list[str] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda request: requested.append(request.url))
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(f"{city.url}/v1/reference")
            expect(page.locator(".opblock-summary-path", has_text="/v1/studios/tokens/apply")).to_be_visible(timeout=20_000)
            expect(page.locator(".opblock-summary-path", has_text="/v1/chat/completions")).to_be_visible()
            self.assertGreater(page.locator(".opblock").count(), 45)
            page.locator(".opblock-summary-path", has_text="/v1/studios/tokens/apply").click()
            expect(page.locator(".opblock-body").first).to_contain_text("expires_at")
            page.screenshot(path=str(ARTIFACTS / "reference.png"), full_page=False)
            browser.close()
        self.assertEqual(problems, [])
        self.assertIn(f"{city.url}/v1/openapi.json", requested)
        elsewhere = [url for url in requested if not url.startswith(f"{city.url}/") and not url.startswith("data:")]
        self.assertEqual(elsewhere, [])
