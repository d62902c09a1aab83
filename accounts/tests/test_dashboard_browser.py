"""/dashboard/keys in a real browser: Debian's Chromium driven by Playwright, against live City processes.

Chromium is installed by `make browser` (a dependency of `make test`); Playwright never downloads one.
Screenshots go to test-artifacts/ (git-ignored).
"""

import time
from pathlib import Path

import httpx
from django.conf import settings
from django.core.cache import cache
from playwright.sync_api import Page, expect, sync_playwright

from accounts.tests.oauth_simulator import OAuthSimulator
from city.livecity import LiveCity, LiveCityTestCase

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "dashboard"
PASSWORD = "a long and unguessable passphrase"
REVOCATION_DEADLINE_SECONDS = 5.0


class DashboardInChromiumTests(LiveCityTestCase):
    sim: OAuthSimulator
    city: LiveCity
    other_city: LiveCity

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        cls.sim = OAuthSimulator()
        cls.sim.consent_page = True  # a real page with an Authorize button, as at GitHub
        cls.sim.start()
        # Secure, HTTP-only cookies, as behind HTTPS (Chromium accepts Secure cookies from 127.0.0.1).
        env = {**cls.sim.env(), "CITY_SECURE_COOKIES": "true"}
        cls.city = LiveCity(extra_env=env, wait=False)
        cls.other_city = LiveCity(extra_env={**env, "CITY_PUBLIC_URL": cls.city.url}, wait=False)
        LiveCity.all_ready(cls.city, cls.other_city)  # started side by side

    @classmethod
    def tearDownClass(cls) -> None:
        cls.city.stop()
        cls.other_city.stop()
        cls.sim.stop()
        super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        cache.clear()  # throttle counters: with Redis they outlive a run, and the processes share them
        self.assertTrue(Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make browser` (apt-get install chromium).")
        # Set-up through the admin API, before the browser starts (Playwright's loop and the ORM do not mix).
        self.studio = self.assertOk(self.admin_post("/v1/studios/create", {"name": "Paint Studio"}))
        self.assertOk(
            self.admin_post(
                "/v1/accounts/create",
                {"studio_id": self.studio["id"], "email": "dana@example.com", "display_name": "Dana", "password": PASSWORD},
            )
        )
        self.sim.github.user.emails = [("dana@example.com", True, True)]
        self.http = httpx.Client(timeout=15)
        self.addCleanup(self.http.close)

    def shot(self, page: Page, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def me(self, city: LiveCity, key: str) -> httpx.Response:
        return self.http.get(f"{city.url}/v1/studios/me", headers={"Authorization": f"Bearer {key}"})

    def test_an_account_signs_in_creates_a_key_sees_it_once_and_revokes_it(self) -> None:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1100, "height": 800})

            page.goto(f"{self.city.url}/dashboard/keys?studio={self.studio['id']}")
            expect(page).to_have_url(f"{self.city.url}/dashboard/keys/signin?studio={self.studio['id']}")
            expect(page.locator("#studio_id")).to_have_value(self.studio["id"])
            page.fill("#email", "dana@example.com")
            page.fill("#password", "not my password")
            page.click("#signin")
            expect(page.locator("#error")).to_contain_text("The email or password is not right")
            self.shot(page, "01-signin-refused")
            page.fill("#password", PASSWORD)
            page.click("#signin")
            expect(page).to_have_url(f"{self.city.url}/dashboard/keys")
            expect(page.locator("#who")).to_contain_text("dana@example.com · Paint Studio")
            expect(page.locator("#no-keys")).to_be_visible()
            cookies = {c["name"]: c for c in page.context.cookies()}
            self.assertTrue(cookies["sessionid"]["httpOnly"])
            self.assertTrue(cookies["sessionid"]["secure"])
            self.assertEqual(cookies["sessionid"]["sameSite"], "Lax")
            self.shot(page, "02-signed-in")

            page.fill("#name", "laptop")
            page.click("#create")
            expect(page.locator("#new-key")).to_contain_text("shown only this once")
            key = page.inner_text("#new-key-value").strip()
            self.assertTrue(key.startswith("ub_"))
            self.shot(page, "03-new-key-shown-once")
            self.assertEqual(self.me(self.other_city, key).status_code, 200)  # and now cached by that process
            models = self.http.get(f"{self.other_city.url}/v1/ai/models", headers={"Authorization": f"Bearer {key}"})
            self.assertEqual(models.status_code, 200, models.text)

            page.goto(f"{self.city.url}/dashboard/keys")
            expect(page.locator("#keys")).to_contain_text("laptop")
            expect(page.locator("#keys")).to_contain_text(key[:11] + "…")
            self.assertNotIn(key, page.content())
            self.shot(page, "04-key-listed-without-its-secret")

            page.locator("#keys tr", has_text="laptop").get_by_role("button", name="Revoke").click()
            revoked_at = time.monotonic()
            expect(page.get_by_role("status")).to_contain_text("is revoked")
            expect(page.locator("#no-keys")).to_be_visible()
            self.shot(page, "05-key-revoked")
            browser.close()

        # The other process had the key cached; it must refuse it within the deadline.
        while self.me(self.other_city, key).status_code == 200:
            self.assertLess(time.monotonic() - revoked_at, REVOCATION_DEADLINE_SECONDS, "a revoked key still worked after 5 s")
            time.sleep(0.1)
        refused_after = time.monotonic() - revoked_at
        (ARTIFACTS / "revocation.txt").write_text(f"a revoked key was refused by another process {refused_after:.2f} s after the click\n")
        self.assertEqual(self.me(self.other_city, key).json()["error"]["code"], "token_revoked")
        self.assertEqual(self.me(self.city, key).status_code, 401)

    def test_an_account_signs_in_with_github_in_the_browser(self) -> None:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            page.goto(f"{self.city.url}/dashboard/keys/signin?studio={self.studio['id']}")
            page.click("#signin-github")
            expect(page.locator("h1")).to_contain_text("GitHub (simulated)")
            self.shot(page, "06-provider-consent")
            page.click("#authorize")
            expect(page).to_have_url(f"{self.city.url}/dashboard/keys")
            expect(page.locator("#who")).to_contain_text("dana@example.com")
            self.shot(page, "07-signed-in-with-github")

            # A desktop app's sign-in: it starts a flow, opens the browser, and polls; the person confirms on City's page.
            flow = self.http.post(
                f"{self.city.url}/v1/accounts/oauth/start",
                json={"provider": "github", "studio_id": self.studio["id"], "app_name": "Paint Desktop"},
            ).json()
            page.goto(flow["authorize_url"])
            page.click("#authorize")
            expect(page.locator("#user-code")).to_have_text(flow["user_code"])
            expect(page.locator("#app")).to_contain_text("“Paint Desktop” (the app's own name for itself, not verified by City)")
            self.shot(page, "08-app-sign-in-confirm")
            page.click("#confirm")  # the form's CSRF cookie is Secure, HttpOnly, SameSite=Strict: this proves Chromium sends it
            expect(page.locator("#message")).to_contain_text("You are signed in to Paint Studio as dana@example.com")
            self.shot(page, "09-app-sign-in-done")
            browser.close()
        result = self.http.get(f"{self.other_city.url}/v1/accounts/oauth/result", params={"flow_id": flow["flow_id"]}).json()
        self.assertEqual(result["status"], "complete")
        self.assertEqual(self.me(self.other_city, result["user_token"]).status_code, 200)
