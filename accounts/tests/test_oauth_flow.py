"""OAuth sign-in, start → browser step → callback → poll, against the loopback GitHub and Google simulator.

City runs in-process here (so that time can move); the providers are real HTTP servers on 127.0.0.1.
test_oauth_live.py drives the same flow through live City processes.
"""

import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from django.test import Client, override_settings

from accounts.models import Account
from accounts.oauth.flows import FlowStore
from accounts.tests.helpers import DANA_EMAIL, AccountsTestCase
from accounts.tests.oauth_simulator import OAuthSimulator, SimUser, s256
from city.runtime_env import runtime_env

BROWSER = httpx.Client(timeout=10)  # the user's browser at the provider; one for all tests (a client takes ~0.2 s to make)
CONFIRM_HEADING = "Is this sign-in yours?"
HIDDEN_FIELD = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


class OAuthTestCase(AccountsTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.sim = OAuthSimulator().start()
        self.addCleanup(self.sim.stop)
        self.configure(self.sim.env())
        self.addCleanup(runtime_env.invalidate)  # the snapshot would outlive this test's rolled-back rows
        self.addCleanup(setattr, FlowStore, "clock", FlowStore.clock)

    def configure(self, env: dict[str, str]) -> None:
        content = "\n".join(f"{k}={v}" for k, v in env.items())
        self.assertOk(self.admin_post("/v1/env/import", {"content": content}))

    def start(self, provider: str = "github", studio_id: str | None = None, **extra: Any) -> dict[str, Any]:
        body = {"provider": provider, "studio_id": studio_id or self.alice_studio.id, **extra}
        return self.assertOk(self.post("/v1/accounts/oauth/start", body))

    def browser_step(self, authorize_url: str) -> str:
        """What the user's browser does at the provider: returns City's callback URL it is sent to."""
        response = BROWSER.get(authorize_url, follow_redirects=False)
        self.assertEqual(response.status_code, 302, response.text)
        return response.headers["Location"]

    def callback(self, url: str, browser: Client | None = None):
        parts = urlsplit(url)
        self.assertEqual(parts.path, "/v1/accounts/oauth/callback")
        return (browser or self.client).get(f"{parts.path}?{parts.query}")

    def confirm(self, page, decision: str | None = "confirm", browser: Client | None = None, **changes: Any):
        """Press a button of City's confirm page, in the browser that showed it (its cookie included)."""
        self.assertContains(page, CONFIRM_HEADING)
        fields = dict(HIDDEN_FIELD.findall(page.content.decode()))
        self.assertEqual(set(fields), {"flow", "csrf_token"})
        form = {k: v for k, v in {**fields, "decision": decision, **changes}.items() if v is not None}
        # As a browser sends a form without enctype: URL-encoded.
        return (browser or self.client).post(
            "/v1/accounts/oauth/confirm", urlencode(form), content_type="application/x-www-form-urlencoded"
        )

    def result(self, flow_id: str):
        return self.get("/v1/accounts/oauth/result", {"flow_id": flow_id})

    def sign_in(self, provider: str = "github") -> tuple[dict[str, Any], Any]:
        """Start, the provider, the callback and, when City asks, "This is me": the last page City showed."""
        flow = self.start(provider)
        page = self.callback(self.browser_step(flow["authorize_url"]))
        if CONFIRM_HEADING in page.content.decode():
            page = self.confirm(page)
        return flow, page

    def assertPage(self, response, status: int, *phrases: str) -> None:
        self.assertEqual(response.status_code, status, response.content[:500])
        self.assertEqual(response["Content-Type"], "text/html; charset=utf-8")
        self.assertEqual(response["Cache-Control"], "no-store")
        # The confirm page's form must carry City's Origin (see accounts/oauth/confirm.py); no other page sends a Referer.
        self.assertEqual(response["Referrer-Policy"], "same-origin" if CONFIRM_HEADING in response.content.decode() else "no-referrer")
        for phrase in phrases:
            self.assertContains(response, phrase, status_code=status)


class OAuthSignInTests(OAuthTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.allow_self_registration()

    def test_github_sign_in_from_start_to_a_working_token(self) -> None:
        flow = self.start("github")
        self.assertEqual(set(flow), {"object", "flow_id", "provider", "authorize_url", "expires_in", "poll_interval", "user_code"})
        self.assertEqual((flow["expires_in"], flow["poll_interval"]), (600, 2))
        self.assertRegex(flow["user_code"], r"^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")
        self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["status"], "pending")
        page = self.callback(self.browser_step(flow["authorize_url"]))
        self.assertPage(page, 200, CONFIRM_HEADING, "ada@example.com", "Alice Studio", flow["user_code"], "This is me, sign in")
        self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["status"], "pending")  # not before the person confirms
        page = self.confirm(page)
        self.assertPage(page, 200, "Signed in", "ada@example.com", "Alice Studio", "close this window")
        body = self.assertOk(self.result(flow["flow_id"]))
        self.assertEqual(body["status"], "complete")
        self.assertEqual(body["account"]["email"], "ada@example.com")
        self.assertEqual(body["account"]["display_name"], "Ada Lovelace")
        self.assertEqual(
            [(i["provider"], i["provider_user_id"], i["verified"]) for i in body["account"]["identities"]], [("github", "4242", True)]
        )
        me = self.assertOk(self.get("/v1/studios/me", token=body["user_token"]))
        self.assertEqual(me["studio"]["id"], self.alice_studio.id)
        self.assertEqual(me["token"]["name"], "Sign-in (GitHub)")

    def test_google_sign_in_from_start_to_a_working_token(self) -> None:
        flow, page = self.sign_in("google")
        self.assertPage(page, 200, "Signed in", "grace@example.com")
        body = self.assertOk(self.result(flow["flow_id"]))
        self.assertEqual((body["status"], body["account"]["email"]), ("complete", "grace@example.com"))
        self.assertEqual(body["account"]["identities"][0]["provider_user_id"], "109876543210")
        self.assertOk(self.get("/v1/studios/me", token=body["user_token"]))

    def test_the_authorize_url_carries_state_pkce_scope_and_the_callback(self) -> None:
        for provider, scope in (("github", "read:user user:email"), ("google", "openid email profile")):
            flow = self.start(provider)
            query = {k: v[0] for k, v in parse_qs(urlsplit(flow["authorize_url"]).query).items()}
            self.assertEqual(query["redirect_uri"], "http://127.0.0.1:43127/v1/accounts/oauth/callback")
            self.assertEqual(query["scope"], scope)
            self.assertEqual(query["code_challenge_method"], "S256")
            self.assertGreaterEqual(len(query["state"]), 32)
            self.assertNotIn(query["state"], flow["flow_id"])

    def test_city_sends_the_pkce_verifier_and_its_secret_to_the_token_endpoint(self) -> None:
        _, page = self.sign_in("github")
        self.assertEqual(page.status_code, 200)
        challenge = self.sim.github.authorize_requests[-1]["code_challenge"]
        sent = self.sim.github.token_requests[-1]
        self.assertEqual(s256(sent["code_verifier"]), challenge)
        self.assertEqual(sent["client_secret"], self.sim.github.client_secret)
        self.assertEqual(sent["redirect_uri"], "http://127.0.0.1:43127/v1/accounts/oauth/callback")

    def test_a_second_sign_in_finds_the_same_account(self) -> None:
        first, _ = self.sign_in("github")
        second, _ = self.sign_in("github")
        a = self.assertOk(self.result(first["flow_id"]))["account"]["id"]
        b = self.assertOk(self.result(second["flow_id"]))["account"]["id"]
        self.assertEqual(a, b)
        self.assertEqual(Account.objects.count(), 1)

    def test_the_provider_user_id_decides_even_when_the_email_changed(self) -> None:
        first, _ = self.sign_in("github")
        account_id = self.assertOk(self.result(first["flow_id"]))["account"]["id"]
        self.sim.github.user = SimUser("4242", "octo-ada", "Ada", [("ada@new.example", True, True)])
        again, _ = self.sign_in("github")
        self.assertEqual(self.assertOk(self.result(again["flow_id"]))["account"]["id"], account_id)

    def test_an_account_the_admin_made_is_linked_by_its_verified_email(self) -> None:
        dana = self.create_account(DANA_EMAIL)
        self.sim.google.user = SimUser("g-dana", "", "Dana", [(DANA_EMAIL.upper(), True, True)])
        flow, page = self.sign_in("google")
        self.assertPage(page, 200, "Signed in")
        body = self.assertOk(self.result(flow["flow_id"]))
        self.assertEqual(body["account"]["id"], dana["id"])
        self.assertEqual(body["account"]["identities"][0]["provider"], "google")
        self.assertTrue(body["account"]["has_password"])  # linking keeps the password

    def test_an_account_whose_email_was_never_verified_is_not_linked(self) -> None:
        self.assertOk(
            self.post(
                "/v1/accounts/register",
                {"studio_id": self.alice_studio.id, "email": "ada@example.com", "password": "someone else's password 1"},
            )
        )
        flow, page = self.sign_in("github")
        self.assertPage(page, 403, "never verified")
        body = self.assertOk(self.result(flow["flow_id"]))
        self.assertEqual((body["status"], body["code"]), ("failed", "account_unverified"))

    def test_a_studio_closed_to_registration_signs_in_only_existing_accounts(self) -> None:
        self.allow_self_registration(False)
        flow, page = self.sign_in("github")
        self.assertPage(page, 403, "does not let people create their own accounts")
        self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["code"], "registration_closed")
        self.create_account("ada@example.com", password=None)
        flow, page = self.sign_in("github")
        self.assertPage(page, 200, "Signed in")

    def test_a_disabled_account_cannot_sign_in_with_oauth(self) -> None:
        first, _ = self.sign_in("github")
        account_id = self.assertOk(self.result(first["flow_id"]))["account"]["id"]
        self.assertOk(self.admin_post("/v1/accounts/disable", {"account_id": account_id}))
        flow, page = self.sign_in("github")
        self.assertPage(page, 403, "disabled")
        self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["code"], "account_disabled")

    def test_sign_in_works_for_the_studio_named_at_start_only(self) -> None:
        self.allow_self_registration(studio_id=self.charlie_studio.id)
        flow = self.start("github", studio_id=self.charlie_studio.id)
        self.assertPage(self.confirm(self.callback(self.browser_step(flow["authorize_url"]))), 200, "signed in to Charlie Studio")
        token = self.assertOk(self.result(flow["flow_id"]))["user_token"]
        self.assertEqual(self.assertOk(self.get("/v1/studios/me", token=token))["studio"]["id"], self.charlie_studio.id)
        self.assertError(
            self.get("/v1/studios/me", {"studio_id": self.alice_studio.id}, token=token), 403, "permission_error", "studio_mismatch"
        )


class OAuthRejectionTests(OAuthTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.allow_self_registration()

    def test_a_wrong_state_is_refused_and_the_flow_stays_pending(self) -> None:
        flow = self.start()
        url = self.browser_step(flow["authorize_url"])
        forged = url.replace("state=", "state=forged")
        self.assertPage(self.callback(forged), 400, "unknown state")
        self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["status"], "pending")

    def test_a_missing_state_is_refused(self) -> None:
        self.assertPage(self.client.get("/v1/accounts/oauth/callback", {"code": "x"}), 400, "no state")

    def test_a_reused_state_is_refused(self) -> None:
        flow = self.start()
        url = self.browser_step(flow["authorize_url"])
        page = self.callback(url)
        self.assertPage(page, 200, CONFIRM_HEADING)
        self.assertPage(self.callback(url), 400, "used already")
        self.assertPage(self.confirm(page), 200, "Signed in")
        self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["status"], "complete")  # the first one stands

    def test_a_replayed_code_is_refused_by_the_provider_and_fails_the_flow(self) -> None:
        first = self.start()
        first_url = self.browser_step(first["authorize_url"])
        self.assertPage(self.callback(first_url), 200)
        old_code = parse_qs(urlsplit(first_url).query)["code"][0]
        second = self.start()
        second_url = self.browser_step(second["authorize_url"])
        second_state = parse_qs(urlsplit(second_url).query)["state"][0]
        replay = f"/v1/accounts/oauth/callback?code={old_code}&state={second_state}"
        self.assertPage(self.callback(replay), 400, "GitHub refused the sign-in code", "bad_verification_code")
        body = self.assertOk(self.result(second["flow_id"]))
        self.assertEqual((body["status"], body["code"]), ("failed", "code_rejected"))
        self.assertIn("Start again", body["reason"])

    def test_a_replayed_code_is_refused_by_google_too(self) -> None:
        first = self.start("google")
        first_url = self.browser_step(first["authorize_url"])
        self.callback(first_url)
        second = self.start("google")
        state = parse_qs(urlsplit(self.browser_step(second["authorize_url"])).query)["state"][0]
        code = parse_qs(urlsplit(first_url).query)["code"][0]
        self.assertPage(
            self.callback(f"/v1/accounts/oauth/callback?code={code}&state={state}"), 400, "Google refused the sign-in code", "invalid_grant"
        )

    def test_an_expired_flow_is_refused_at_the_callback_and_polls_as_expired(self) -> None:
        now = FlowStore.clock()
        FlowStore.clock = lambda: now
        flow = self.start()
        url = self.browser_step(flow["authorize_url"])
        FlowStore.clock = lambda: now + 601
        self.assertPage(self.callback(url), 410, "expired")
        body = self.assertOk(self.result(flow["flow_id"]))
        self.assertEqual((body["status"], body["code"]), ("expired", "flow_expired"))

    def test_a_result_not_picked_up_in_time_expires(self) -> None:
        now = FlowStore.clock()
        FlowStore.clock = lambda: now
        flow, page = self.sign_in()
        self.assertEqual(page.status_code, 200)
        FlowStore.clock = lambda: now + 601
        self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["status"], "expired")

    def test_the_result_is_handed_out_once(self) -> None:
        flow, _ = self.sign_in()
        self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["status"], "complete")
        error = self.assertError(self.result(flow["flow_id"]), 410, "invalid_request_error", "result_taken", "flow_id")
        self.assertIn("handed out once", error["message"])

    def test_an_unknown_flow_id_is_404(self) -> None:
        self.assertError(self.result("oaf_not-a-flow"), 404, "not_found_error", "flow_not_found", "flow_id")
        self.assertError(self.get("/v1/accounts/oauth/result"), 400, "invalid_request_error", param="flow_id")

    def test_a_github_user_without_a_verified_email_is_refused(self) -> None:
        self.sim.github.user = SimUser("77", "nomail", "No Mail", [("nomail@example.com", True, False)])
        flow, page = self.sign_in("github")
        self.assertPage(page, 403, "no verified email")
        body = self.assertOk(self.result(flow["flow_id"]))
        self.assertEqual((body["status"], body["code"]), ("failed", "email_unverified"))
        self.assertFalse(Account.objects.filter(email="nomail@example.com").exists())

    def test_a_google_user_without_a_verified_email_is_refused(self) -> None:
        self.sim.google.user = SimUser("g77", "", "No Mail", [("nomail@example.com", True, False)])
        flow, page = self.sign_in("google")
        self.assertPage(page, 403, "no verified email")
        self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["code"], "email_unverified")

    def test_a_denied_consent_ends_the_flow_as_denied(self) -> None:
        self.sim.consent = False
        for provider in ("github", "google"):
            flow, page = self.sign_in(provider)
            self.assertPage(page, 403, "You declined", "nothing was shared")
            body = self.assertOk(self.result(flow["flow_id"]))
            self.assertEqual((body["status"], body["code"]), ("denied", "access_denied"))

    def test_an_unreachable_provider_fails_the_flow(self) -> None:
        flow = self.start("github")
        url = self.browser_step(flow["authorize_url"])
        self.sim.stop()
        self.assertPage(self.callback(url), 502, "GitHub did not complete the sign-in")
        self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["code"], "provider_unavailable")

    def test_a_token_answer_without_an_access_token_fails_the_flow_at_once(self) -> None:
        for provider, reply in [
            ("github", {"token_type": "bearer", "scope": ""}),
            ("google", {"access_token": "ya29.x", "token_type": "MAC"}),
        ]:
            with self.subTest(provider=provider):
                self.sim.provider(provider).token_reply = reply
                flow, page = self.sign_in(provider)
                self.assertEqual(page.status_code, 502)
                body = self.assertOk(self.result(flow["flow_id"]))
                self.assertEqual((body["status"], body["code"]), ("failed", "provider_error"))  # not "pending" until it expires
                self.assertIn("try again", body["reason"])

    def test_a_provider_error_is_repeated_only_as_a_short_printable_code(self) -> None:
        flow = self.start()
        state = parse_qs(urlsplit(self.browser_step(flow["authorize_url"])).query)["state"][0]
        # A NUL anywhere in a query is refused before any action (city/storable.py), the flow untouched.
        response = self.client.get("/v1/accounts/oauth/callback", {"state": state, "error": "server_error\x00"})
        self.assertError(response, 400, "invalid_request_error", "invalid_characters", param="error")
        self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["status"], "pending")
        hostile = 'server_error\x07"<script>' + "x" * 5000
        response = self.client.get("/v1/accounts/oauth/callback", {"state": state, "error": hostile})
        kept = "server_error&lt;script&gt;" + "x" * (64 - len("server_error<script>"))  # BEL and quote dropped, 64 characters, escaped
        self.assertPage(response, 400, f"GitHub did not complete the sign-in ({kept}). Start again")
        self.assertNotContains(response, "<script>", status_code=400)
        body = self.assertOk(self.result(flow["flow_id"]))
        self.assertEqual((body["status"], body["code"]), ("failed", "provider_error"))
        self.assertNotIn("\x00", body["reason"])
        self.assertLess(len(body["reason"]), 200)

    def test_start_names_the_missing_env_keys(self) -> None:
        self.assertOk(self.admin_post("/v1/env/remove", {"key": "GITHUB_CLIENT_SECRET"}))
        error = self.assertError(
            self.post("/v1/accounts/oauth/start", {"provider": "github", "studio_id": self.alice_studio.id}),
            503,
            "api_error",
            "oauth_provider_not_configured",
        )
        self.assertIn("GITHUB_CLIENT_SECRET", error["message"])
        self.assertNotIn("GITHUB_CLIENT_ID", error["message"])
        for key in ("GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET"):
            self.assertOk(self.admin_post("/v1/env/remove", {"key": key}))
        error = self.assertError(
            self.post("/v1/accounts/oauth/start", {"provider": "google", "studio_id": self.alice_studio.id}), 503, "api_error"
        )
        self.assertIn("GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET", error["message"])
        self.assertNotIn(self.sim.github.client_id, error["message"])

    def test_start_checks_the_provider_and_the_studio(self) -> None:
        self.assertError(
            self.post("/v1/accounts/oauth/start", {"provider": "myspace", "studio_id": self.alice_studio.id}),
            400,
            "invalid_request_error",
            param="provider",
        )
        self.assertError(
            self.post("/v1/accounts/oauth/start", {"provider": "github", "studio_id": "studio_nope"}),
            404,
            "not_found_error",
            "studio_not_found",
        )
        self.assertOk(self.admin_post("/v1/studios/pause", {"studio_id": self.alice_studio.id}))
        self.assertError(
            self.post("/v1/accounts/oauth/start", {"provider": "github", "studio_id": self.alice_studio.id}),
            403,
            "permission_error",
            "studio_paused",
        )

    @override_settings(ACCOUNTS_OAUTH_MAX_STARTS_PER_ADDRESS=3)
    def test_starts_are_throttled_per_client_address(self) -> None:
        for provider in ("github", "google", "github"):
            self.start(provider)
        response = self.post("/v1/accounts/oauth/start", {"provider": "google", "studio_id": self.alice_studio.id})
        self.assertError(response, 429, "rate_limit_error", "too_many_attempts")

    def test_a_studio_paused_before_pickup_gets_no_token(self) -> None:
        flow, _ = self.sign_in()
        self.assertOk(self.admin_post("/v1/studios/pause", {"studio_id": self.alice_studio.id}))
        self.assertError(self.result(flow["flow_id"]), 403, "permission_error", "studio_paused")
        self.assertOk(self.admin_post("/v1/studios/activate", {"studio_id": self.alice_studio.id}))
        self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["status"], "complete")  # not used up by the refusal

    def test_no_flow_secret_is_stored(self) -> None:
        from accounts.models import OAuthFlow

        flow = self.start()
        state = parse_qs(urlsplit(flow["authorize_url"]).query)["state"][0]
        row = OAuthFlow.objects.get()
        self.assertNotIn(flow["flow_id"], str(row.__dict__))
        self.assertNotIn(state, str(row.__dict__))
