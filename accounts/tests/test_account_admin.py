from django.contrib.auth.models import User
from django.test import override_settings

from accounts.models import Account
from accounts.tests.helpers import DANA_EMAIL, DANA_PASSWORD, AccountsTestCase
from city.models import AuditEntry


class AdminAccountActionTests(AccountsTestCase):
    def test_it_creates_an_account(self) -> None:
        dana = self.create_account(display_name="Dana")
        self.assertTrue(dana["id"].startswith("acct_"))
        self.assertEqual(
            {
                k: dana[k]
                for k in ("object", "studio_id", "email", "display_name", "status", "email_verified", "has_password", "identities")
            },
            {
                "object": "account",
                "studio_id": self.alice_studio.id,
                "email": DANA_EMAIL,
                "display_name": "Dana",
                "status": "active",
                "email_verified": True,
                "has_password": True,
                "identities": [],
            },
        )
        self.assertNotIn("password", dana)
        self.assertTrue(AuditEntry.objects.filter(action="accounts/create", target=dana["id"]).exists())

    def test_an_account_may_have_no_password(self) -> None:
        self.assertFalse(self.create_account(password=None)["has_password"])

    def test_one_email_per_studio(self) -> None:
        self.create_account()
        self.assertError(
            self.admin_post("/v1/accounts/create", {"studio_id": self.alice_studio.id, "email": "DANA@example.com"}),
            409,
            "invalid_request_error",
            "account_exists",
            "email",
        )
        self.create_account(studio_id=self.charlie_studio.id)  # another studio: another account

    def test_weak_passwords_and_bad_emails_are_refused(self) -> None:
        self.assertError(
            self.admin_post("/v1/accounts/create", {"studio_id": self.alice_studio.id, "email": DANA_EMAIL, "password": "short"}),
            400,
            "invalid_request_error",
            "weak_password",
            "password",
        )
        self.assertError(
            self.admin_post("/v1/accounts/create", {"studio_id": self.alice_studio.id, "email": "not-an-email"}),
            400,
            "invalid_request_error",
            param="email",
        )
        self.assertError(
            self.admin_post("/v1/accounts/create", {"studio_id": "studio_nope", "email": DANA_EMAIL}),
            404,
            "not_found_error",
            "studio_not_found",
        )

    def test_it_lists_accounts_by_studio_status_and_search(self) -> None:
        dana = self.create_account()
        erin = self.create_account("erin@example.com", display_name="Erin")
        self.create_account("frank@example.com", studio_id=self.charlie_studio.id)
        self.assertOk(self.admin_post("/v1/accounts/disable", {"account_id": dana["id"]}))
        listed = self.assertOk(self.admin_get("/v1/accounts/list", {"studio_id": self.alice_studio.id}))
        self.assertEqual([a["id"] for a in listed["items"]], [erin["id"], dana["id"]])
        disabled = self.assertOk(self.admin_get("/v1/accounts/list", {"status": "disabled"}))
        self.assertEqual([a["id"] for a in disabled["items"]], [dana["id"]])
        found = self.assertOk(self.admin_get("/v1/accounts/list", {"search": "erin"}))
        self.assertEqual([a["email"] for a in found["items"]], ["erin@example.com"])
        first = self.assertOk(self.admin_get("/v1/accounts/list", {"limit": 1}))
        self.assertTrue(first["has_more"])

    def test_a_refused_account_action_is_audited_with_the_account_it_named(self) -> None:
        self.assertError(self.admin_post("/v1/accounts/disable", {"account_id": "acct_nope"}), 404, "not_found_error", "account_not_found")
        entry = AuditEntry.objects.filter(action="accounts/disable").latest("id")
        self.assertEqual((entry.target, entry.outcome), ("acct_nope", "404 account_not_found"))

    def test_account_pages_stay_stable_while_accounts_are_created(self) -> None:
        dana = self.create_account()
        erin = self.create_account("erin@example.com")
        first = self.assertOk(self.admin_get("/v1/accounts/list", {"limit": 1}))
        self.create_account("frank@example.com")
        second = self.assertOk(self.admin_get("/v1/accounts/list", {"limit": 1, "cursor": first["next_cursor"]}))
        self.assertEqual([a["id"] for a in first["items"] + second["items"]], [erin["id"], dana["id"]])
        self.assertFalse(second["has_more"])

    def test_listing_an_unknown_studio_is_404_not_an_empty_list(self) -> None:
        self.assertError(self.admin_get("/v1/accounts/list", {"studio_id": self.bob.id}), 404, "not_found_error", "studio_not_found")
        self.assertEqual(self.assertOk(self.admin_get("/v1/accounts/list", {"studio_id": self.charlie_studio.id}))["items"], [])

    def test_a_bad_cursor_or_limit_is_400(self) -> None:
        for cursor in ["abc", self.alice_studio.id, self.bob.id]:
            with self.subTest(cursor=cursor):
                self.assertError(self.admin_get("/v1/accounts/list", {"cursor": cursor}), 400, "invalid_request_error", "invalid_cursor")
        self.assertError(self.admin_get("/v1/accounts/list", {"limit": "500"}), 400, "invalid_request_error", param="limit")

    def test_disabling_revokes_the_accounts_tokens_and_enabling_lets_it_sign_in_again(self) -> None:
        dana = self.create_account()
        token = self.assertOk(self.login())["user_token"]
        self.assertOk(self.get("/v1/studios/me", token=token))
        body = self.assertOk(self.admin_post("/v1/accounts/disable", {"account_id": dana["id"]}))
        self.assertEqual(body["status"], "disabled")
        self.assertError(self.get("/v1/studios/me", token=token), 401, "authentication_error", "token_revoked")
        self.assertEqual(self.assertOk(self.admin_post("/v1/accounts/enable", {"account_id": dana["id"]}))["status"], "active")
        self.assertOk(self.login())
        self.assertError(self.get("/v1/studios/me", token=token), 401, "authentication_error", "token_revoked")

    def test_disable_names_an_unknown_account(self) -> None:
        self.assertError(
            self.admin_post("/v1/accounts/disable", {"account_id": "acct_nope"}), 404, "not_found_error", "account_not_found", "account_id"
        )

    def test_admin_actions_need_the_admin(self) -> None:
        dana = self.create_account()
        user_token = self.assertOk(self.login())["user_token"]
        for token in (self.bob_token, user_token):
            self.assertError(
                self.post("/v1/accounts/create", {"studio_id": self.alice_studio.id, "email": "x@example.com"}, token=token),
                403,
                "permission_error",
            )
            self.assertError(self.post("/v1/accounts/disable", {"account_id": dana["id"]}, token=token), 403, "permission_error")
            self.assertError(self.get("/v1/accounts/list", token=token), 403, "permission_error")
        self.assertError(self.get("/v1/accounts/list"), 401, "authentication_error")

    def test_the_accounts_service_declares_its_env(self) -> None:
        accounts = next(s for s in self.assertOk(self.get("/v1/services"))["items"] if s["id"] == "accounts")
        keys = {e["key"] for e in accounts["env"]}
        self.assertLessEqual(
            {
                "GITHUB_CLIENT_ID",
                "GITHUB_CLIENT_SECRET",
                "GOOGLE_CLIENT_ID",
                "GOOGLE_CLIENT_SECRET",
                "GITHUB_OAUTH_BASE_URL",
                "GITHUB_API_BASE_URL",
                "GOOGLE_OIDC_DISCOVERY_URL",
            },
            keys,
        )


class SelfRegistrationTests(AccountsTestCase):
    def register(self, email: str = DANA_EMAIL, password: str = DANA_PASSWORD, **kw):
        return self.post("/v1/accounts/register", {"studio_id": self.alice_studio.id, "email": email, "password": password, **kw})

    def test_registration_is_closed_by_default(self) -> None:
        self.assertError(self.register(), 403, "permission_error", "registration_closed")
        settings = self.assertOk(self.admin_get("/v1/accounts/settings", {"studio_id": self.alice_studio.id}))
        self.assertFalse(settings["self_registration"])

    def test_an_open_studio_lets_people_register_and_sign_in(self) -> None:
        self.allow_self_registration()
        body = self.assertOk(self.register(display_name="Dana"))
        self.assertEqual(body["account"]["email_verified"], False)  # City sends no mail to verify it
        self.assertOk(self.get("/v1/studios/me", token=body["user_token"]))
        self.assertOk(self.login())

    def test_registration_closes_again(self) -> None:
        self.allow_self_registration()
        self.allow_self_registration(False)
        self.assertError(self.register(), 403, "permission_error", "registration_closed")

    @override_settings(ACCOUNTS_REGISTER_MAX_PER_ADDRESS=2)
    def test_registrations_are_throttled_per_client_address(self) -> None:
        self.allow_self_registration()
        self.assertOk(self.register("one@example.com"))
        self.assertError(self.register("one@example.com"), 409, "invalid_request_error", "account_exists")
        throttled = self.register("three@example.com")
        self.assertError(throttled, 429, "rate_limit_error", "too_many_attempts")
        self.assertIn("Retry-After", throttled.headers)

    def test_registration_refuses_weak_passwords(self) -> None:
        self.allow_self_registration()
        self.assertError(self.register(password="password"), 400, "invalid_request_error", "weak_password", "password")

    def test_settings_are_for_the_admin_and_change_only_with_post(self) -> None:
        self.assertError(
            self.get("/v1/accounts/settings", {"studio_id": self.alice_studio.id}, token=self.bob_token), 403, "permission_error"
        )
        self.assertError(
            self.admin_get("/v1/accounts/settings", {"studio_id": self.alice_studio.id, "self_registration": "true"}),
            400,
            "invalid_request_error",
            "read_only",
        )
        self.assertError(self.admin_get("/v1/accounts/settings", {"studio_id": "studio_nope"}), 404, "not_found_error", "studio_not_found")


class DjangoAdminTests(AccountsTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.staff = User.objects.create_superuser("root", "root@example.com", "admin password not secret")
        self.client.force_login(self.staff)

    def test_the_admin_lists_and_shows_accounts_without_hashes(self) -> None:
        dana = self.create_account()
        listing = self.client.get("/admin/accounts/account/")
        self.assertContains(listing, DANA_EMAIL)
        page = self.client.get(f"/admin/accounts/account/{dana['id']}/change/")
        self.assertContains(page, DANA_EMAIL)
        self.assertNotContains(page, "argon2$")

    def test_the_admin_action_disables_through_the_operation(self) -> None:
        dana = self.create_account()
        token = self.assertOk(self.login())["user_token"]
        response = self.client.post("/admin/accounts/account/", {"action": "disable_accounts", "_selected_action": [dana["id"]]})
        self.assertEqual(response.status_code, 302)
        self.assertError(self.get("/v1/studios/me", token=token), 401, "authentication_error", "token_revoked")
        self.assertTrue(AuditEntry.objects.filter(action="accounts/disable", actor="admin:root").exists())

    def test_accounts_cannot_be_deleted_from_the_admin(self) -> None:
        dana = self.create_account()
        self.assertEqual(self.client.get(f"/admin/accounts/account/{dana['id']}/delete/").status_code, 403)

    def test_a_list_past_ten_thousand_accounts_says_more_than(self) -> None:
        # The one large-list change-list template (city.admin_toolkit.LargeTableAdmin) serves accounts too.
        Account.objects.bulk_create(
            Account(studio_id=self.alice_studio.id, email=f"user{n}@example.com", password="!") for n in range(10_001)
        )
        listing = self.client.get("/admin/accounts/account/")
        self.assertContains(listing, "More than 10000 accounts: filter or search to narrow the list")
        self.assertNotContains(listing, "\n10000 accounts\n")
        found = self.client.get("/admin/accounts/account/", {"q": "example.com"})
        self.assertContains(found, "more than 10000 results")
        self.assertContains(found, "Select all matching (more than 10000) accounts")
        one = self.client.get("/admin/accounts/account/", {"q": "user7@"})
        self.assertContains(one, "\n1 account\n")
        self.assertContains(one, "1 result")
