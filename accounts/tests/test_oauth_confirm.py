"""The polling sign-in's confirm step: the token waits until the person who came back from the provider
says, on City's page (studio, the app's self-declared name, the app's user code), that it is theirs.

The attack it stops: someone starts a flow, sends its authorize URL to a victim, and polls for the token.
"""

from urllib.parse import urlencode

from django.test import Client

from accounts.models import OAuthFlow
from accounts.oauth.confirm import csrf_cookie_name
from accounts.oauth.flows import FlowStore
from accounts.tests.test_oauth_flow import CONFIRM_HEADING, HIDDEN_FIELD, OAuthTestCase
from studios.models import UserToken


class ConfirmTestCase(OAuthTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.allow_self_registration()
        self.victim = Client()  # the victim's browser; the attacker only calls the API

    def attacker_starts(self, **extra):
        return self.start("github", app_name="Totally Legit Notes", **extra)

    def victim_goes_through_the_provider(self, flow):
        return self.callback(self.browser_step(flow["authorize_url"]), self.victim)

    def signin_tokens(self) -> int:
        return UserToken.objects.filter(account__isnull=False).count()


class HijackTests(ConfirmTestCase):
    def test_the_attacker_gets_nothing_unless_the_victim_confirms_a_page_naming_the_attackers_app_and_code(self) -> None:
        flow = self.attacker_starts()
        page = self.victim_goes_through_the_provider(flow)
        # The victim sees who asks: the studio, the app as it named itself (flagged unverified) and the code.
        self.assertPage(page, 200, CONFIRM_HEADING, "Alice Studio", "ada@example.com", flow["user_code"])
        self.assertContains(page, '“Totally Legit Notes” <span class="note">(the app\'s own name for itself, not verified by City)')
        self.assertContains(page, "If someone sent you a link, or the codes differ, press Cancel")
        # The provider step is done, yet the attacker's poll reads pending, as long as nobody confirms.
        for _ in range(3):
            self.assertEqual(self.assertOk(self.result(flow["flow_id"])), {"status": "pending", "provider": "github"})
        # The attacker cannot confirm in the victim's stead: they hold the flow id and the authorize URL's
        # state, but not the form's secrets, which only the victim's browser received.
        forged = urlencode({"flow": flow["flow_id"], "csrf_token": flow["flow_id"], "decision": "confirm"})
        self.assertPage(self.client.post("/v1/accounts/oauth/confirm", forged, content_type="application/x-www-form-urlencoded"), 403)
        self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["status"], "pending")
        # The victim cancels: the flow is over, typed, and no token was ever minted.
        done = self.confirm(page, "cancel", browser=self.victim)
        self.assertPage(done, 200, "Sign-in cancelled", "gets nothing")
        body = self.assertOk(self.result(flow["flow_id"]))
        self.assertEqual((body["status"], body["code"]), ("cancelled", "flow_cancelled"))
        self.assertNotIn("user_token", body)
        self.assertEqual(self.signin_tokens(), 0)
        # And a cancelled flow stays cancelled.
        self.assertPage(self.confirm(page, browser=self.victim), 403)  # its cookie is gone with the answer
        self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["status"], "cancelled")

    def test_a_victim_who_never_answers_leaves_the_attacker_with_an_expired_flow(self) -> None:
        now = FlowStore.clock()
        FlowStore.clock = lambda: now
        flow = self.attacker_starts()
        page = self.victim_goes_through_the_provider(flow)
        self.assertEqual(page.status_code, 200)
        FlowStore.clock = lambda: now + 601
        self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["status"], "expired")
        self.assertPage(self.confirm(page, browser=self.victim), 410, "expired")  # too late to confirm, too
        self.assertEqual(self.signin_tokens(), 0)

    def test_the_person_who_confirms_gets_the_token_to_their_app_once(self) -> None:
        flow = self.start("github", app_name="Paint Desktop")
        page = self.victim_goes_through_the_provider(flow)
        done = self.confirm(page, browser=self.victim)
        self.assertPage(done, 200, "Signed in", "signed in to Alice Studio as ada@example.com", "return to “Paint Desktop”")
        self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["status"], "complete")
        self.assertError(self.result(flow["flow_id"]), 410, "invalid_request_error", "result_taken")
        self.assertPage(self.confirm(page, "cancel", browser=self.victim), 403)  # no second answer (its cookie is gone)
        self.assertEqual(self.signin_tokens(), 1)


class ConfirmFormTests(ConfirmTestCase):
    def test_the_form_is_csrf_protected(self) -> None:
        flow = self.attacker_starts()
        page = self.victim_goes_through_the_provider(flow)
        refusals = {
            "no token": lambda: self.confirm(page, browser=self.victim, csrf_token=None),
            "an empty token": lambda: self.confirm(page, browser=self.victim, csrf_token=""),
            "a wrong token": lambda: self.confirm(page, browser=self.victim, csrf_token="x" * 43),
            "no flow reference": lambda: self.confirm(page, browser=self.victim, flow=None),
            "another browser (no cookie)": lambda: self.confirm(page, browser=Client()),
            "another site's form": lambda: self.confirm(page, browser=self.victim_with_origin("https://evil.example")),
            "an opaque origin": lambda: self.confirm(page, browser=self.victim_with_origin("null")),
            "a look-alike origin": lambda: self.confirm(page, browser=self.victim_with_origin("http://127.0.0.1:43127.evil.example")),
            "a non-ASCII origin": lambda: self.confirm(page, browser=self.victim_with_origin("http://127.0.0.1:43127\u00e9")),
        }
        for name, attempt in refusals.items():
            with self.subTest(name):
                response = attempt()
                self.assertPage(response, 403, "sign-in page in this browser, so it was refused")
                self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["status"], "pending")
        # A token and cookie pair of the attacker's own making (equal, but not this flow's) is refused too.
        forged = Client()
        forged.cookies[csrf_cookie_name(self.fields(page)["flow"])] = "forged-token"
        self.assertPage(self.confirm(page, browser=forged, csrf_token="forged-token"), 403)
        # The page itself, from City's origin (its public URL's, or the host it was reached at), still works.
        done = self.confirm(page, browser=self.victim_with_origin("http://127.0.0.1:43127"))
        self.assertPage(done, 200, "Signed in")
        self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["status"], "complete")
        second = self.attacker_starts()
        page = self.victim_goes_through_the_provider(second)
        self.assertPage(self.confirm(page, browser=self.victim_with_origin("http://testserver")), 200, "Signed in")  # the host reached

    def fields(self, page) -> dict[str, str]:
        return dict(HIDDEN_FIELD.findall(page.content.decode()))

    def victim_with_origin(self, origin: str) -> Client:
        browser = Client(HTTP_ORIGIN=origin)
        browser.cookies = self.victim.cookies
        return browser

    def test_the_cookie_and_page_headers(self) -> None:
        page = self.victim_goes_through_the_provider(self.attacker_starts())
        cookie = page.cookies[csrf_cookie_name(self.fields(page)["flow"])]
        self.assertEqual((cookie["path"], cookie["samesite"], cookie["httponly"]), ("/v1/accounts/oauth/confirm", "Strict", True))
        self.assertGreater(int(cookie["max-age"]), 500)
        self.assertIn(f'name="csrf_token" value="{cookie.value}"', page.content.decode())
        self.assertIn("form-action 'self'", page["Content-Security-Policy"])
        self.assertIn("frame-ancestors 'none'", page["Content-Security-Policy"])
        self.assertEqual(page["Referrer-Policy"], "same-origin")

    def test_a_decision_is_required(self) -> None:
        flow = self.attacker_starts()
        page = self.victim_goes_through_the_provider(flow)
        self.assertPage(self.confirm(page, "maybe", browser=self.victim), 400, "This is me, sign in")
        self.assertPage(self.confirm(page, None, browser=self.victim), 400)
        self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["status"], "pending")
        self.assertPage(self.confirm(page, browser=self.victim), 200, "Signed in")

    def test_the_confirm_route_takes_only_the_pages_form(self) -> None:
        self.assertError(self.get("/v1/accounts/oauth/confirm"), 405, "invalid_request_error", "method_not_allowed")
        page = self.victim_goes_through_the_provider(self.attacker_starts())
        as_json = self.victim.post(
            "/v1/accounts/oauth/confirm", {**self.fields(page), "decision": "confirm"}, content_type="application/json"
        )
        self.assertError(as_json, 415, "invalid_request_error", "unsupported_media_type")
        too_many = "&".join(f"f{i}=x" for i in range(1001))  # over DATA_UPLOAD_MAX_NUMBER_FIELDS
        response = self.victim.post("/v1/accounts/oauth/confirm", too_many, content_type="application/x-www-form-urlencoded")
        self.assertPage(response, 400, "could not be read")
        self.assertPage(self.confirm(page, browser=self.victim), 200, "Signed in")  # none of it got in the way

    def test_two_sign_ins_confirmed_in_one_browser_each_keep_their_cookie(self) -> None:
        first, second = self.start("github", app_name="One"), self.start("github", app_name="Two")
        first_page = self.victim_goes_through_the_provider(first)
        second_page = self.victim_goes_through_the_provider(second)
        self.assertPage(self.confirm(first_page, browser=self.victim), 200, "return to “One”")
        self.assertPage(self.confirm(second_page, browser=self.victim), 200, "return to “Two”")
        for flow in (first, second):
            self.assertEqual(self.assertOk(self.result(flow["flow_id"]))["status"], "complete")

    def test_an_app_without_a_name_is_shown_as_such_and_names_are_escaped(self) -> None:
        page = self.victim_goes_through_the_provider(self.start("github"))
        self.assertContains(page, "an app that gave no name")
        self.victim = Client()
        page = self.victim_goes_through_the_provider(self.start("github", app_name='Tom & Jerry\'s "Notes"'))
        self.assertContains(page, "“Tom &amp; Jerry&#x27;s &quot;Notes&quot;”")
        for bad in ("<b>bold</b>", "tab\there", "x" * 61):
            with self.subTest(app_name=bad):
                response = self.post("/v1/accounts/oauth/start", {"provider": "github", "studio_id": self.alice_studio.id, "app_name": bad})
                self.assertError(response, 400, "invalid_request_error", param="app_name")

    def test_user_codes_differ_between_flows(self) -> None:
        codes = {self.start("github")["user_code"] for _ in range(10)}
        self.assertEqual(len(codes), 10)
        self.assertEqual(set(OAuthFlow.objects.values_list("user_code", flat=True)), codes)

    def test_no_confirm_secret_is_stored(self) -> None:
        page = self.victim_goes_through_the_provider(self.attacker_starts())
        secrets = [value for _, value in HIDDEN_FIELD.findall(page.content.decode())]
        self.assertEqual(len(secrets), 2)
        row = str(OAuthFlow.objects.get().__dict__)
        for secret in secrets:
            self.assertGreater(len(secret), 40)
            self.assertNotIn(secret, row)
