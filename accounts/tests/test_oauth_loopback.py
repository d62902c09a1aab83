"""The RFC 8252 loopback sign-in: City redirects the browser to the app's own http://127.0.0.1:PORT with a
one-time code, which the app exchanges with its PKCE verifier (RFC 7636) at oauth/token.

The app is a real listener on 127.0.0.1 (accounts/tests/loopback_app.py); the providers are the loopback
simulator; City runs in-process (so time can move). test_oauth_loopback_live.py races two exchanges.
"""

from typing import Any
from urllib.parse import parse_qs, urlsplit

from accounts.models import OAuthFlow
from accounts.oauth.flows import FlowStore
from accounts.tests.loopback_app import LoopbackListener, Pkce
from accounts.tests.test_oauth_flow import BROWSER, OAuthTestCase
from studios.models import UserToken


class LoopbackTestCase(OAuthTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.allow_self_registration()
        self.app = LoopbackListener().start()
        self.addCleanup(self.app.stop)
        self.pkce = Pkce()

    def start_loopback(self, provider: str = "github", **changes: Any):
        body = {
            "provider": provider,
            "studio_id": self.alice_studio.id,
            "app_name": "Paint Desktop",
            "redirect_uri": self.app.redirect_uri,
            "code_challenge": self.pkce.challenge,
            "code_challenge_method": "S256",
            "state": "app-state-123",
            **changes,
        }
        return self.post("/v1/accounts/oauth/start", {k: v for k, v in body.items() if v is not None})

    def through_provider(self, started: dict[str, Any]):
        """The browser: the provider, then City's callback; returns City's answer to the callback."""
        return self.callback(self.browser_step(started["authorize_url"]))

    def code_at_the_app(self, provider: str = "github") -> str:
        """Start, the provider, City's redirect followed by the browser to the app's listener: the code it got."""
        answer = self.through_provider(self.assertOk(self.start_loopback(provider)))
        self.assertEqual(answer.status_code, 302, answer.content[:300])
        self.assertEqual(BROWSER.get(answer["Location"]).status_code, 200)  # the browser reaches the app
        received = self.app.wait()
        self.assertEqual(received["state"], "app-state-123")
        return received["code"]

    def exchange(self, code: str, verifier: str | None = None, **extra: Any):
        return self.post("/v1/accounts/oauth/token", {"code": code, "code_verifier": verifier or self.pkce.verifier, **extra})


class LoopbackSignInTests(LoopbackTestCase):
    def test_the_app_gets_a_code_on_its_loopback_port_and_exchanges_it_once(self) -> None:
        started = self.assertOk(self.start_loopback())
        self.assertEqual(set(started), {"object", "provider", "authorize_url", "redirect_uri", "expires_in"})  # nothing to poll
        self.assertEqual(started["redirect_uri"], self.app.redirect_uri)
        query = parse_qs(urlsplit(started["authorize_url"]).query)
        self.assertEqual(query["redirect_uri"], ["http://127.0.0.1:43127/v1/accounts/oauth/callback"])  # the provider sees City's
        self.assertNotEqual(query["code_challenge"], [self.pkce.challenge])  # City's own PKCE with the provider, not the app's

        answer = self.through_provider(started)
        self.assertEqual(answer.status_code, 302)
        self.assertEqual((answer["Cache-Control"], answer["Referrer-Policy"]), ("no-store", "no-referrer"))
        location = urlsplit(answer["Location"])
        self.assertEqual(f"{location.scheme}://{location.netloc}{location.path}", self.app.redirect_uri)
        self.assertEqual(BROWSER.get(answer["Location"]).status_code, 200)
        received = self.app.wait()
        self.assertEqual(set(received), {"code", "state"})
        self.assertEqual(received["state"], "app-state-123")
        self.assertRegex(received["code"], r"^oac_[A-Za-z0-9_-]{43}$")

        body = self.assertOk(self.exchange(received["code"], redirect_uri=self.app.redirect_uri))
        self.assertEqual((body["provider"], body["account"]["email"]), ("github", "ada@example.com"))
        me = self.assertOk(self.get("/v1/studios/me", token=body["user_token"]))
        self.assertEqual((me["studio"]["id"], me["token"]["name"]), (self.alice_studio.id, "Sign-in (GitHub)"))

        error = self.assertError(self.exchange(received["code"]), 400, "invalid_request_error", "code_used", "code")
        self.assertIn("works once", error["message"])
        self.assertEqual(UserToken.objects.filter(account__email="ada@example.com").count(), 1)

    def test_google_and_an_ipv6_loopback_uri(self) -> None:
        started = self.assertOk(self.start_loopback("google", redirect_uri="http://[::1]:51234/cb/ok", state=None))
        answer = self.through_provider(started)
        self.assertEqual(answer.status_code, 302)
        self.assertRegex(answer["Location"], r"^http://\[::1\]:51234/cb/ok\?code=oac_[A-Za-z0-9_-]{43}$")  # no state: none was sent
        code = parse_qs(urlsplit(answer["Location"]).query)["code"][0]
        self.assertEqual(self.assertOk(self.exchange(code))["account"]["email"], "grace@example.com")

    def test_a_wrong_verifier_is_refused_and_spends_the_code(self) -> None:
        code = self.code_at_the_app()
        error = self.assertError(self.exchange(code, Pkce().verifier), 400, "invalid_request_error", "invalid_grant", "code_verifier")
        self.assertIn("does not match the code_challenge", error["message"])
        # Whoever presented it holds the code: the right verifier no longer helps.
        self.assertError(self.exchange(code), 400, "invalid_request_error", "code_used", "code")
        self.assertEqual(OAuthFlow.objects.get().failure_code, "code_misused")
        self.assertFalse(UserToken.objects.filter(account__isnull=False).exists())

    def test_a_different_redirect_uri_at_the_exchange_is_refused(self) -> None:
        code = self.code_at_the_app()
        self.assertError(
            self.exchange(code, redirect_uri="http://127.0.0.1:1/other"), 400, "invalid_request_error", "invalid_grant", "redirect_uri"
        )
        self.assertError(self.exchange(code), 400, "invalid_request_error", "code_used")

    def test_a_code_expires_after_a_minute(self) -> None:
        now = FlowStore.clock()
        FlowStore.clock = lambda: now
        code = self.code_at_the_app()
        FlowStore.clock = lambda: now + 61
        error = self.assertError(self.exchange(code), 400, "invalid_request_error", "code_expired", "code")
        self.assertIn("expired", error["message"])
        FlowStore.clock = lambda: now + 59  # within its minute it works
        self.assertOk(self.exchange(code))

    def test_an_unknown_code_and_bad_input_are_refused(self) -> None:
        self.assertError(self.exchange("oac_" + "x" * 43), 400, "invalid_request_error", "invalid_grant", "code")
        self.assertError(self.post("/v1/accounts/oauth/token", {"code": "oac_x"}), 400, "invalid_request_error", param="code_verifier")
        self.assertError(self.exchange("oac_x", "short"), 400, "invalid_request_error", param="code_verifier")
        self.assertError(self.exchange("oac_x", "x" * 42 + "\x00"), 400, "invalid_request_error", param="code_verifier")

    def test_a_dashboard_code_is_not_a_loopback_code(self) -> None:
        from django.test import Client

        browser = Client()
        start = browser.post("/dashboard/keys/oauth/start", {"provider": "github", "studio_id": self.alice_studio.id})
        back = self.callback(self.browser_step(start["Location"]), browser)
        code = parse_qs(urlsplit(back["Location"]).query)["code"][0]
        self.assertError(self.exchange(code), 400, "invalid_request_error", "invalid_grant")

    def test_a_refusal_reaches_the_app_as_an_oauth_error(self) -> None:
        self.sim.consent = False
        answer = self.through_provider(self.assertOk(self.start_loopback()))
        self.assertEqual(answer.status_code, 302)
        BROWSER.get(answer["Location"])
        received = self.app.wait()
        self.assertEqual((received["error"], received["state"]), ("access_denied", "app-state-123"))
        self.assertIn("declined", received["error_description"])
        self.assertNotIn("code", received)

    def test_a_failed_sign_in_reaches_the_app_too(self) -> None:
        self.allow_self_registration(False)
        answer = self.through_provider(self.assertOk(self.start_loopback()))
        received = parse_qs(urlsplit(answer["Location"]).query)
        self.assertEqual(received["error"], ["access_denied"])
        self.assertIn("does not let people create their own accounts", received["error_description"][0])

    def test_no_code_or_verifier_is_stored(self) -> None:
        code = self.code_at_the_app()
        row = str(OAuthFlow.objects.get().__dict__)
        self.assertNotIn(code, row)
        self.assertNotIn(self.pkce.verifier, row)


class LoopbackHijackTests(LoopbackTestCase):
    def test_the_code_goes_only_to_the_uri_chosen_at_start_and_is_useless_without_the_verifier(self) -> None:
        # The attacker starts a loopback sign-in and sends its authorize URL to the victim.
        attacker = Pkce()
        started = self.assertOk(self.start_loopback(code_challenge=attacker.challenge))
        # The victim's browser goes through the provider; City sends it to the loopback URI of the start,
        # which is the victim's own machine: the attacker's server is not on it.
        answer = self.through_provider(started)
        self.assertTrue(answer["Location"].startswith(f"{self.app.redirect_uri}?code="))
        # Nothing on City's side hands the attacker anything: no flow to poll, no page to confirm.
        self.assertNotIn("flow_id", started)
        self.assertNotIn(b"Is this sign-in yours", answer.content)
        # A code caught by another program (another app on that port, a log) is refused without the verifier of the start.
        code = parse_qs(urlsplit(answer["Location"]).query)["code"][0]
        self.assertError(self.exchange(code, self.pkce.verifier), 400, "invalid_request_error", "invalid_grant", "code_verifier")
        self.assertFalse(UserToken.objects.filter(account__isnull=False).exists())

    def test_only_loopback_redirect_uris_are_accepted(self) -> None:
        refused = [
            "https://evil.example/cb",
            "http://evil.example/cb",
            "http://127.0.0.1.evil.example:8080/cb",
            "http://127.0.0.1.evil.example/cb",
            "http://10.0.0.1:8080/cb",
            "http://192.168.1.1:80/",
            "http://127.0.0.1@evil.example/cb",
            "http://127.0.0.1:8080@evil.example/cb",
            "http://user:pw@127.0.0.1:8080/cb",
            "http://127.0.0.1:8080\\@evil.example/cb",
            "http://127.0.0.1:8080\\evil.example",
            "http://localhost:8080/cb",
            "http://LOCALHOST:8080/cb",
            "https://127.0.0.1:8080/cb",
            "HTTP://127.0.0.1:8080/cb",
            "http://127.0.0.1/cb",  # a port is required
            "http://127.0.0.1:0/cb",
            "http://127.0.0.1:65536/cb",
            "http://127.0.0.1:08080/cb",
            "http://127.0.0.1:8080/cb?next=https://evil.example",
            "http://127.0.0.1:8080/cb#frag",
            "http://127.0.0.1:8080/cb\r\nLocation: https://evil.example",
            "http://127.0.0.1:8080/c b",
            "http://127.1:8080/cb",
            "http://2130706433:8080/cb",
            "http://0x7f.0.0.1:8080/cb",
            "http://127.0.0.2:8080/cb",
            "http://[::1].evil.example:8080/cb",
            "http://[::ffff:127.0.0.1]:8080/cb",
            "http://[::1]/cb",
            "//127.0.0.1:8080/cb",
            "javascript:alert(1)//127.0.0.1:8080",
            "http://127.0.0.1:8080/" + "a" * 200,
            "",
        ]
        for uri in refused:
            with self.subTest(uri=uri):
                self.assertError(self.start_loopback(redirect_uri=uri), 400, "invalid_request_error", param="redirect_uri")
        self.assertFalse(OAuthFlow.objects.exists())  # nothing was started
        error = self.assertError(self.start_loopback(redirect_uri="http://localhost:8080/cb"), 400, "invalid_request_error")
        self.assertIn("127.0.0.1", error["message"])
        for uri in ("http://127.0.0.1:1/", "http://127.0.0.1:65535/a/b-c_d.e~f%20g", "http://[::1]:8080", "http://127.0.0.1:8080/@x"):
            with self.subTest(accepted=uri):
                self.assertOk(self.start_loopback(redirect_uri=uri))

    def test_pkce_is_required_with_s256(self) -> None:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"code_challenge": None}, "code_challenge"),
            ({"code_challenge_method": None}, "code_challenge_method"),
            ({"code_challenge_method": "plain"}, "code_challenge_method"),
            ({"code_challenge": "too-short"}, "code_challenge"),
            ({"code_challenge": "x" * 42 + "="}, "code_challenge"),
            ({"state": "a\x00b"}, "state"),
            ({"app_name": "<script>"}, "app_name"),
        ]
        for changes, param in cases:
            with self.subTest(changes=changes):
                self.assertError(self.start_loopback(**changes), 400, "invalid_request_error", param=param)
        for name, value in (("code_challenge", self.pkce.challenge), ("code_challenge_method", "S256"), ("state", "x")):
            with self.subTest(without_redirect_uri=name):
                response = self.post("/v1/accounts/oauth/start", {"provider": "github", "studio_id": self.alice_studio.id, name: value})
                self.assertError(response, 400, "invalid_request_error", param=name)
        self.assertFalse(OAuthFlow.objects.exists())
