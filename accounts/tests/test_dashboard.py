"""/dashboard/keys through Django's test client with CSRF checks on (test_dashboard_browser.py uses Chromium)."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from django.test import Client, override_settings
from django.utils import timezone

from accounts.tests.helpers import DANA_EMAIL, DANA_PASSWORD, AccountsTestCase
from accounts.tests.oauth_simulator import OAuthSimulator
from aihub.testing import write_usage
from city.runtime_env import runtime_env
from studios.models import UserToken


class DashboardTestCase(AccountsTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.client = Client(enforce_csrf_checks=True)
        self.dana = self.create_account()

    def csrf(self) -> str:
        if "csrftoken" not in self.client.cookies:
            self.client.get(f"/dashboard/keys/signin?studio={self.alice_studio.id}")
        return self.client.cookies["csrftoken"].value

    def form(self, path: str, data: dict[str, str], **extra):
        token = self.csrf()
        with self.captureOnCommitCallbacks(execute=True):  # as in production: the token cache forgets on commit
            return self.client.post(path, {**data, "csrfmiddlewaretoken": token}, **extra)

    def sign_in(self, email: str = DANA_EMAIL, password: str = DANA_PASSWORD):
        return self.form("/dashboard/keys/signin", {"studio_id": self.alice_studio.id, "email": email, "password": password})

    def create_key(self, name: str = "laptop"):
        return self.form("/dashboard/keys/create", {"name": name})

    @staticmethod
    def raw_key(response) -> str:
        match = re.search(r'id="new-key-value">(ub_[A-Za-z0-9_-]+)<', response.content.decode())
        assert match is not None, "no new key on the page"
        return match.group(1)


class DashboardSignInTests(DashboardTestCase):
    def test_the_signin_page_names_the_studio_from_the_link_and_carries_a_csrf_token(self) -> None:
        page = self.client.get(f"/dashboard/keys/signin?studio={self.alice_studio.id}")
        self.assertContains(page, f'value="{self.alice_studio.id}"')
        self.assertContains(page, 'name="csrfmiddlewaretoken"')
        self.assertNotContains(page, "<script")

    def test_no_provider_buttons_while_no_provider_is_configured(self) -> None:
        page = self.client.get(f"/dashboard/keys/signin?studio={self.alice_studio.id}")
        self.assertNotContains(page, "Or sign in with")
        self.assertNotContains(page, 'id="signin-github"')
        self.assertNotContains(page, 'id="signin-google"')

    def test_signed_out_visitors_are_sent_to_sign_in(self) -> None:
        response = self.client.get(f"/dashboard/keys?studio={self.alice_studio.id}")
        self.assertRedirects(response, f"/dashboard/keys/signin?studio={self.alice_studio.id}", fetch_redirect_response=False)

    def test_it_signs_in_with_a_password(self) -> None:
        response = self.sign_in()
        self.assertRedirects(response, "/dashboard/keys", fetch_redirect_response=False)
        page = self.client.get("/dashboard/keys")
        self.assertContains(page, DANA_EMAIL)
        self.assertContains(page, "Alice Studio")

    def test_a_form_without_its_csrf_token_is_refused(self) -> None:
        self.csrf()
        response = self.client.post(
            "/dashboard/keys/signin", {"studio_id": self.alice_studio.id, "email": DANA_EMAIL, "password": DANA_PASSWORD}
        )
        self.assertEqual(response.status_code, 403)
        self.assertNotIn("accounts.account_id", self.client.session)

    def test_a_wrong_password_and_an_unknown_email_read_the_same(self) -> None:
        wrong = self.sign_in(password="wrong password")
        unknown = self.sign_in(email="nobody@example.com", password="wrong password")
        self.assertEqual((wrong.status_code, unknown.status_code), (401, 401))
        message = "The email or password is not right for this studio."
        self.assertContains(wrong, message, status_code=401)
        self.assertContains(unknown, message, status_code=401)

    def test_failed_sign_ins_are_throttled_here_too(self) -> None:
        for _ in range(5):
            self.sign_in(password="wrong password")
        response = self.sign_in()
        self.assertContains(response, "Too many failed sign-ins", status_code=429)
        self.assertIn("Retry-After", response.headers)

    def test_nul_characters_and_over_long_fields_are_refused_before_the_database(self) -> None:
        studio = self.alice_studio.id
        for data in [
            {"studio_id": "studio_\x00", "email": DANA_EMAIL, "password": DANA_PASSWORD},
            {"studio_id": studio, "email": "dana\x00@example.com", "password": DANA_PASSWORD},
            {"studio_id": studio, "email": DANA_EMAIL, "password": DANA_PASSWORD + "\x00"},
            {"studio_id": studio, "email": DANA_EMAIL, "password": "p" * 1025},
        ]:
            with self.subTest(data=data):
                self.assertEqual(self.form("/dashboard/keys/signin", data).status_code, 400)
        self.assertNotIn("accounts.account_id", self.client.session)
        self.assertEqual(self.sign_in().status_code, 302)  # none of them counted as a failed sign-in

    def test_a_nul_studio_id_is_refused_when_starting_oauth(self) -> None:
        response = self.form("/dashboard/keys/oauth/start", {"provider": "github", "studio_id": "studio_\x00"})
        self.assertContains(response, "Studio: Null characters are not allowed.", status_code=400)
        self.assertContains(
            self.form("/dashboard/keys/oauth/start", {"provider": "gitlab", "studio_id": "x"}), "choose GitHub", status_code=400
        )

    def test_the_session_cookie_is_http_only_and_same_site(self) -> None:
        self.sign_in()
        cookie = self.client.cookies["sessionid"]
        self.assertTrue(cookie["httponly"])
        self.assertEqual(cookie["samesite"], "Lax")

    @override_settings(SESSION_COOKIE_SECURE=True, CSRF_COOKIE_SECURE=True)  # what CITY_SECURE_COOKIES=true sets
    def test_behind_https_the_cookies_are_secure(self) -> None:
        self.sign_in()
        self.assertTrue(self.client.cookies["sessionid"]["secure"])
        self.assertTrue(self.client.cookies["csrftoken"]["secure"])

    def test_signing_in_starts_a_new_session(self) -> None:
        self.csrf()
        self.client.session.save()
        before = self.client.cookies.get("sessionid")
        self.sign_in()
        self.assertNotEqual(before.value if before else None, self.client.cookies["sessionid"].value)

    def test_a_disabled_account_is_signed_out_at_its_next_click(self) -> None:
        self.sign_in()
        self.assertOk(self.admin_post("/v1/accounts/disable", {"account_id": self.dana["id"]}))
        self.assertEqual(self.client.get("/dashboard/keys").status_code, 302)

    def test_sign_out(self) -> None:
        self.sign_in()
        self.assertEqual(self.form("/dashboard/keys/signout", {}).status_code, 302)
        self.assertEqual(self.client.get("/dashboard/keys").status_code, 302)

    def test_pages_are_never_cached_and_run_no_scripts(self) -> None:
        self.sign_in()
        page = self.client.get("/dashboard/keys")
        self.assertEqual(page["Cache-Control"], "no-store")
        self.assertIn("default-src 'none'", page["Content-Security-Policy"])
        self.assertEqual(page["X-Frame-Options"], "DENY")


class DashboardKeyTests(DashboardTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.sign_in()

    def test_a_new_key_is_shown_once_and_works(self) -> None:
        response = self.create_key("laptop")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Cache-Control"], "no-store")
        raw = self.raw_key(response)
        self.assertContains(response, "shown only this once")
        self.assertOk(self.get("/v1/studios/me", token=raw))
        page = self.client.get("/dashboard/keys")
        self.assertNotContains(page, raw)
        self.assertContains(page, raw[:11] + "…")
        self.assertContains(page, "laptop")
        self.assertNotIn(raw, str(dict(self.client.session)))

    def test_a_key_is_revoked_and_stops_working(self) -> None:
        raw = self.raw_key(self.create_key("old"))
        token_id = self.assertOk(self.get("/v1/studios/me", token=raw))["token"]["id"]
        response = self.form("/dashboard/keys/revoke", {"token_id": token_id})
        self.assertRedirects(response, "/dashboard/keys", fetch_redirect_response=False)
        self.assertError(self.get("/v1/studios/me", token=raw), 401, "authentication_error", "token_revoked")
        page = self.client.get("/dashboard/keys")
        self.assertContains(page, "is revoked")
        self.assertNotContains(page, f'data-token-id="{token_id}"')

    def test_another_accounts_key_cannot_be_revoked(self) -> None:
        self.create_account("erin@example.com", password="erin's long password 42")
        erin = self.assertOk(self.login("erin@example.com", "erin's long password 42"))
        for token_id in (erin["token_id"], self.bob.id):
            self.assertContains(self.form("/dashboard/keys/revoke", {"token_id": token_id}), "No token", status_code=404)
        self.assertOk(self.get("/v1/studios/me", token=erin["user_token"]))
        self.assertOk(self.get("/v1/studios/me", token=self.bob_token))

    def test_a_key_needs_a_name(self) -> None:
        self.assertContains(self.create_key(""), "Name the key", status_code=400)
        self.assertContains(self.create_key("x" * 101), "Name the key", status_code=400)

    def test_nul_characters_in_key_forms_are_refused_and_change_nothing(self) -> None:
        keys_before = UserToken.objects.count()
        self.assertContains(self.create_key("lap\x00top"), "Name: Null characters are not allowed.", status_code=400)
        self.assertContains(self.form("/dashboard/keys/revoke", {"token_id": "tok_\x00"}), "Null characters", status_code=400)
        self.assertContains(self.form("/dashboard/keys/revoke", {}), "Choose a key", status_code=400)
        self.assertEqual(UserToken.objects.count(), keys_before)
        self.assertFalse(UserToken.objects.filter(revoked_at__isnull=False).exists())

    def test_only_the_accounts_own_keys_are_listed(self) -> None:
        self.create_key("mine")
        page = self.client.get("/dashboard/keys")
        self.assertContains(page, "mine")
        self.assertNotContains(page, "bob laptop")

    def test_this_months_usage_and_spend(self) -> None:
        key = self.raw_key(self.create_key("metered"))
        token_id = self.assertOk(self.get("/v1/studios/me", token=key))["token"]["id"]
        now = timezone.now()
        mine = {"studio_id": self.alice_studio.id, "model": "m", "token_id": token_id, "account_id": self.dana["id"]}
        write_usage(
            {**mine, "prompt_tokens": 1000, "completion_tokens": 500, "cost": 2_500_000_000},
            {**mine, "prompt_tokens": 200, "completion_tokens": 100, "cost": 1_000_000_000},
            {**mine, "prompt_tokens": 9, "completion_tokens": 9, "cost": 9 * 10**12, "created_at": now.replace(day=1) - timedelta(days=2)},
            {**mine, "token_id": self.bob.id, "account_id": None, "prompt_tokens": 7, "completion_tokens": 7, "cost": 7 * 10**12},
        )
        page = self.client.get("/dashboard/keys").content.decode()
        self.assertIn('id="usage-requests">2<', page)
        self.assertIn('id="usage-tokens">1800<', page)
        self.assertIn('id="usage-spend">$0.0035<', page)
        self.assertIn("2 req · $0.0035", page)


class DashboardOAuthTests(DashboardTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.sim = OAuthSimulator().start()
        self.addCleanup(self.sim.stop)
        self.assertOk(self.admin_post("/v1/env/import", {"content": "\n".join(f"{k}={v}" for k, v in self.sim.env().items())}))
        self.addCleanup(runtime_env.invalidate)
        self.sim.github.user.emails = [(DANA_EMAIL, True, True)]

    def test_it_signs_in_with_github_in_the_browser(self) -> None:
        start = self.form("/dashboard/keys/oauth/start", {"provider": "github", "studio_id": self.alice_studio.id})
        self.assertEqual(start.status_code, 302)
        self.assertTrue(start["Location"].startswith(f"{self.sim.url}/github/login/oauth/authorize?"))
        callback = httpx.get(start["Location"]).headers["Location"]  # the provider's redirect
        parts = urlsplit(callback)
        back = self.client.get(f"{parts.path}?{parts.query}")
        self.assertEqual(back.status_code, 302)
        self.assertRegex(back["Location"], r"^/dashboard/keys/oauth/finish\?code=oac_[A-Za-z0-9_-]{43}$")  # a one-time code
        self.assertRedirects(self.client.get(back["Location"]), "/dashboard/keys", fetch_redirect_response=False)
        self.assertContains(self.client.get("/dashboard/keys"), DANA_EMAIL)

    def test_a_sign_in_started_in_one_browser_and_finished_in_another_signs_neither_in(self) -> None:
        # The attacker starts a dashboard sign-in in their browser and sends its authorize URL to Dana.
        start = self.form("/dashboard/keys/oauth/start", {"provider": "github", "studio_id": self.alice_studio.id})
        callback = urlsplit(httpx.get(start["Location"]).headers["Location"])  # Dana at GitHub
        dana = Client()
        back = dana.get(f"{callback.path}?{callback.query}")
        self.assertEqual(back.status_code, 302)
        # The attacker's session holds the flow, but not the code, which only Dana's browser received.
        flow_id = self.client.session["accounts.oauth_flow_id"]
        for attempt in ("/dashboard/keys/oauth/finish", "/dashboard/keys/oauth/finish?code=oac_guessed"):
            with self.subTest(attempt=attempt):
                session = self.client.session
                session["accounts.oauth_flow_id"] = flow_id  # each finish pops it: put it back for this attempt
                session.save()
                self.assertContains(self.client.get(attempt), "finished in another browser", status_code=403)
                self.assertEqual(self.client.get("/dashboard/keys").status_code, 302)  # still signed out
        # Dana's browser has the code but not the session: nothing is signed in there either.
        self.assertContains(dana.get(back["Location"]), "No sign-in is in progress", status_code=400)
        self.assertEqual(dana.get("/dashboard/keys").status_code, 302)

    def test_a_dashboard_flow_cannot_be_picked_up_through_the_api(self) -> None:
        self.form("/dashboard/keys/oauth/start", {"provider": "github", "studio_id": self.alice_studio.id})
        flow_id = self.client.session["accounts.oauth_flow_id"]
        self.assertError(self.get("/v1/accounts/oauth/result", {"flow_id": flow_id}), 404, "not_found_error", "flow_not_found")

    def test_a_refused_sign_in_comes_back_with_its_reason(self) -> None:
        self.sim.consent = False
        start = self.form("/dashboard/keys/oauth/start", {"provider": "google", "studio_id": self.alice_studio.id})
        parts = urlsplit(httpx.get(start["Location"]).headers["Location"])
        self.client.get(f"{parts.path}?{parts.query}")
        self.assertContains(self.client.get("/dashboard/keys/oauth/finish"), "You declined", status_code=403)
        self.assertEqual(self.client.get("/dashboard/keys").status_code, 302)

    def test_finish_without_a_sign_in_in_progress(self) -> None:
        self.assertContains(self.client.get("/dashboard/keys/oauth/finish"), "No sign-in is in progress", status_code=400)

    def test_configured_providers_have_buttons(self) -> None:
        page = self.client.get(f"/dashboard/keys/signin?studio={self.alice_studio.id}")
        self.assertContains(page, 'id="signin-github"')
        self.assertContains(page, 'id="signin-google"')

    def test_an_unconfigured_provider_has_no_button_and_its_keys_stay_the_admins_business(self) -> None:
        self.assertOk(self.admin_post("/v1/env/remove", {"key": "GOOGLE_CLIENT_ID"}))
        page = self.client.get(f"/dashboard/keys/signin?studio={self.alice_studio.id}")
        self.assertContains(page, 'id="signin-github"')
        self.assertNotContains(page, 'id="signin-google"')
        response = self.form("/dashboard/keys/oauth/start", {"provider": "google", "studio_id": self.alice_studio.id})
        self.assertContains(response, "Sign-in with Google is not available here; ask the studio", status_code=503)
        self.assertNotContains(response, "GOOGLE_CLIENT_ID", status_code=503)
        self.assertNotContains(response, "env/upsert", status_code=503)
