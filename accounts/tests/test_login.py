from django.test import override_settings

from accounts.models import Account
from accounts.tests.helpers import DANA_EMAIL, DANA_PASSWORD, AccountsTestCase
from accounts.throttle import Throttle


class PasswordLoginTests(AccountsTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.dana = self.create_account()

    def test_it_signs_in_with_a_token_bound_to_the_studio_and_the_account(self) -> None:
        body = self.assertOk(self.login())
        self.assertTrue(body["user_token"].startswith("ub_"))
        self.assertEqual(body["account"]["id"], self.dana["id"])
        self.assertEqual(body["account"]["email"], DANA_EMAIL)
        self.assertRegex(body["expires_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        me = self.assertOk(self.get("/v1/studios/me", token=body["user_token"]))
        self.assertEqual(me["studio"]["id"], self.alice_studio.id)
        self.assertEqual(me["token"]["id"], body["token_id"])
        account = self.assertOk(self.get("/v1/accounts/me", token=body["user_token"]))
        self.assertEqual(account["id"], self.dana["id"])

    def test_accounts_me_needs_an_accounts_token(self) -> None:
        self.assertError(self.get("/v1/accounts/me", token=self.bob_token), 403, "permission_error", "not_an_account_token")
        self.assertError(self.get("/v1/accounts/me"), 401, "authentication_error")

    def test_the_token_refuses_another_studio(self) -> None:
        token = self.assertOk(self.login())["user_token"]
        self.assertError(
            self.get("/v1/studios/me", {"studio_id": self.charlie_studio.id}, token=token), 403, "permission_error", "studio_mismatch"
        )

    def test_the_email_is_matched_whatever_its_case(self) -> None:
        self.assertOk(self.login(email="  Dana@Example.COM "))

    def test_the_password_is_stored_as_an_argon2_hash(self) -> None:
        self.assertTrue(Account.objects.get(id=self.dana["id"]).password.startswith("argon2$argon2id$"))

    def test_an_account_of_another_studio_does_not_sign_in_here(self) -> None:
        self.assertError(self.login(studio_id=self.charlie_studio.id), 401, "authentication_error", "invalid_credentials")

    def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(self) -> None:
        wrong_password = self.login(password="not the password")
        unknown_email = self.login(email="nobody@example.com", password="not the password")
        self.assertError(wrong_password, 401, "authentication_error", "invalid_credentials")
        self.assertEqual(wrong_password.status_code, unknown_email.status_code)
        self.assertEqual(wrong_password.content, unknown_email.content)

        # Every answer has its own X-Request-Id; nothing else may differ.
        def headers(response) -> list[tuple[str, str]]:
            return sorted((name, value) for name, value in response.headers.items() if name != "X-Request-Id")

        self.assertEqual(headers(wrong_password), headers(unknown_email))

    def test_an_account_without_a_password_is_answered_like_a_wrong_password(self) -> None:
        self.create_account("oauth-only@example.com", password=None)
        oauth_only = self.login(email="oauth-only@example.com", password="anything at all")
        self.assertEqual(oauth_only.content, self.login(password="anything at all").content)

    def test_failures_are_throttled_per_account_with_429_and_retry_after(self) -> None:
        for _ in range(5):
            self.assertError(self.login(password="wrong"), 401, "authentication_error")
        throttled = self.login()  # the right password, too late
        error = self.assertError(throttled, 429, "rate_limit_error", "too_many_signin_attempts")
        self.assertIn("try again in", error["message"])
        self.assertGreater(int(throttled["Retry-After"]), 0)
        self.assertLessEqual(int(throttled["Retry-After"]), 900)

    def test_an_unknown_email_is_throttled_exactly_like_a_known_one(self) -> None:
        Throttle.clock = lambda: 1_900_000_100.0  # frozen: Retry-After is in the message
        answers = {}
        for email in (DANA_EMAIL, "nobody@example.com"):
            for _ in range(5):
                self.login(email=email, password="wrong")
            answers[email] = self.login(email=email, password="wrong")
        known, unknown = answers.values()
        self.assertEqual((known.status_code, known.content), (unknown.status_code, unknown.content))
        self.assertEqual(known.status_code, 429)

    def test_the_throttle_lifts_when_its_window_ends(self) -> None:
        now = 900 * 2_100_000.0  # the start of a 900 s window
        Throttle.clock = lambda: now
        for _ in range(5):
            self.login(password="wrong")
        self.assertEqual(self.login().status_code, 429)
        Throttle.clock = lambda: now + 899
        self.assertEqual(self.login().status_code, 429)
        Throttle.clock = lambda: now + 900
        self.assertOk(self.login())

    def test_a_success_clears_the_account_count(self) -> None:
        for _ in range(4):
            self.login(password="wrong")
        self.assertOk(self.login())
        for _ in range(4):
            self.login(password="wrong")
        self.assertOk(self.login())

    def test_failures_are_throttled_per_client_address_across_emails(self) -> None:
        for n in range(20):
            self.assertEqual(self.login(email=f"guess{n}@example.com", password="wrong").status_code, 401)
        self.assertError(self.login(), 429, "rate_limit_error", "too_many_signin_attempts")
        other_address = self.client.post(
            "/v1/accounts/login",
            {"studio_id": self.alice_studio.id, "email": DANA_EMAIL, "password": DANA_PASSWORD},
            content_type="application/json",
            REMOTE_ADDR="192.0.2.7",
        )
        self.assertOk(other_address)

    @override_settings(ACCOUNTS_TRUSTED_PROXY_COUNT=1)
    def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(self) -> None:
        for n in range(20):
            self.login(email=f"guess{n}@example.com", password="wrong", headers={"X-Forwarded-For": "203.0.113.9"})
        self.assertEqual(self.login(headers={"X-Forwarded-For": "203.0.113.9"}).status_code, 429)
        self.assertOk(self.login(headers={"X-Forwarded-For": "203.0.113.10"}))

    def test_a_disabled_account_cannot_sign_in(self) -> None:
        self.assertOk(self.admin_post("/v1/accounts/disable", {"account_id": self.dana["id"]}))
        self.assertError(self.login(), 403, "permission_error", "account_disabled")
        # Without the right password, a disabled account looks like any other failure.
        self.assertError(self.login(password="wrong"), 401, "authentication_error", "invalid_credentials")

    def test_a_paused_studio_refuses_sign_in(self) -> None:
        self.assertOk(self.admin_post("/v1/studios/pause", {"studio_id": self.alice_studio.id}))
        self.assertError(self.login(), 403, "permission_error", "studio_paused")

    def test_an_unknown_studio_is_404(self) -> None:
        self.assertError(self.login(studio_id="studio_nope"), 404, "not_found_error", "studio_not_found")

    def test_missing_and_unknown_fields_are_named(self) -> None:
        self.assertError(
            self.post("/v1/accounts/login", {"studio_id": self.alice_studio.id, "email": DANA_EMAIL}),
            400,
            "invalid_request_error",
            param="password",
        )
        self.assertError(
            self.post("/v1/accounts/login", {"studio_id": self.alice_studio.id, "email": DANA_EMAIL, "password": "x", "remember": True}),
            400,
            "invalid_request_error",
            "unknown_field",
            "remember",
        )
        self.assertError(
            self.post("/v1/accounts/login", {"studio_id": self.alice_studio.id, "email": 7, "password": "x"}),
            400,
            "invalid_request_error",
            param="email",
        )

    def test_login_is_post_only(self) -> None:
        self.assertError(self.get("/v1/accounts/login"), 405, "invalid_request_error", "method_not_allowed")

    def test_no_answer_echoes_the_password(self) -> None:
        for response in (self.login(password="hunter2-secret"), self.login(email="x@example.com", password="hunter2-secret")):
            self.assertNotIn(b"hunter2-secret", response.content)
