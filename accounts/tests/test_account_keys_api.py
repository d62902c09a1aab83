"""The Keys API twin of /dashboard/keys: studios/tokens/* with an account's own user token."""

from accounts.models import Account
from accounts.tests.helpers import AccountsTestCase
from city.errors import ApiError
from studios import operations as studio_operations
from studios.models import UserToken


class AccountKeysApiTests(AccountsTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.dana = self.create_account()
        self.dana_token = self.assertOk(self.login())["user_token"]
        self.erin = self.create_account("erin@example.com", password="erin's long password 42")
        self.erin_token = self.assertOk(self.login("erin@example.com", "erin's long password 42"))["user_token"]

    def test_an_account_creates_lists_rotates_and_revokes_its_own_keys(self) -> None:
        key = self.assertOk(self.post("/v1/studios/tokens/apply", {"name": "laptop"}, token=self.dana_token))
        self.assertEqual(key["studio_id"], self.alice_studio.id)
        self.assertTrue(key["token"].startswith("ub_"))
        self.assertOk(self.get("/v1/studios/me", token=key["token"]))
        listed = self.assertOk(self.get("/v1/studios/tokens/list", token=self.dana_token))
        self.assertEqual({t["name"] for t in listed["items"]}, {"laptop", "Sign-in (password)"})
        self.assertNotIn("token", listed["items"][0])
        rotated = self.assertOk(self.post("/v1/studios/tokens/rotate", {"token_id": key["id"]}, token=self.dana_token))
        self.assertError(self.get("/v1/studios/me", token=key["token"]), 401, "authentication_error")
        self.assertOk(self.get("/v1/studios/me", token=rotated["token"]))
        self.assertOk(self.post("/v1/studios/tokens/revoke", {"token_id": key["id"]}, token=self.dana_token))
        self.assertError(self.get("/v1/studios/me", token=rotated["token"]), 401, "authentication_error", "token_revoked")

    def test_a_key_made_by_an_account_belongs_to_it(self) -> None:
        key = self.assertOk(self.post("/v1/studios/tokens/apply", {"name": "ci"}, token=self.dana_token))
        self.assertEqual(self.assertOk(self.get("/v1/accounts/me", token=key["token"]))["id"], self.dana["id"])

    def test_an_account_sees_and_touches_no_other_accounts_keys(self) -> None:
        erin_key = self.assertOk(self.post("/v1/studios/tokens/apply", {"name": "erin's"}, token=self.erin_token))
        listed = self.assertOk(self.get("/v1/studios/tokens/list", token=self.dana_token))
        self.assertNotIn(erin_key["id"], [t["id"] for t in listed["items"]])
        for action in ("revoke", "rotate"):
            self.assertError(
                self.post(f"/v1/studios/tokens/{action}", {"token_id": erin_key["id"]}, token=self.dana_token),
                404,
                "not_found_error",
                "token_not_found",
            )
        self.assertError(
            self.post("/v1/studios/tokens/revoke", {"token_id": self.bob.id}, token=self.dana_token),
            404,
            "not_found_error",
            "token_not_found",
        )
        self.assertOk(self.get("/v1/studios/me", token=erin_key["token"]))

    def test_an_account_cannot_reach_another_studio(self) -> None:
        self.assertError(
            self.post("/v1/studios/tokens/apply", {"name": "x", "studio_id": self.charlie_studio.id}, token=self.dana_token),
            403,
            "permission_error",
            "studio_mismatch",
        )
        self.assertError(
            self.get("/v1/studios/tokens/list", {"studio_id": self.charlie_studio.id}, token=self.dana_token),
            403,
            "permission_error",
            "studio_mismatch",
        )
        self.assertError(
            self.post(
                "/v1/studios/tokens/revoke", {"token_id": self.charlie.id, "studio_id": self.charlie_studio.id}, token=self.dana_token
            ),
            403,
            "permission_error",
            "studio_mismatch",
        )

    def test_a_plain_studio_token_still_manages_nothing(self) -> None:
        self.assertError(self.post("/v1/studios/tokens/apply", {"name": "x"}, token=self.bob_token), 403, "permission_error", "not_allowed")
        self.assertError(self.get("/v1/studios/tokens/list", token=self.bob_token), 403, "permission_error", "not_allowed")

    def test_the_admin_still_sees_every_token(self) -> None:
        listed = self.assertOk(self.admin_get("/v1/studios/tokens/list", {"studio_id": self.alice_studio.id}))
        self.assertEqual(len(listed["items"]), 3)  # Bob's, Dana's and Erin's sign-ins

    def test_a_disabled_account_gets_no_new_key(self) -> None:
        key = self.assertOk(self.post("/v1/studios/tokens/apply", {"name": "kept"}, token=self.dana_token))
        self.assertOk(self.admin_post("/v1/accounts/disable", {"account_id": self.dana["id"]}))
        self.assertError(
            self.post("/v1/studios/tokens/apply", {"name": "x"}, token=self.dana_token), 401, "authentication_error", "token_revoked"
        )
        self.assertError(self.get("/v1/studios/me", token=key["token"]), 401, "authentication_error", "token_revoked")

    def test_studios_issue_no_token_to_a_disabled_account_or_to_another_studios_account(self) -> None:
        # studios.operations asks accounts through settings.STUDIOS_TOKEN_ACCOUNT_CHECK; it imports no accounts code.
        before = UserToken.objects.count()
        with self.assertRaises(ApiError) as raised:
            studio_operations.issue_token(self.charlie_studio.id, "stray", expires_at=None, actor="test", account_id=self.dana["id"])
        self.assertEqual((raised.exception.status, raised.exception.code), (403, "account_disabled"))
        self.assertOk(self.admin_post("/v1/accounts/disable", {"account_id": self.dana["id"]}))
        self.assertFalse(Account.objects.get(id=self.dana["id"]).is_active)
        with self.assertRaises(ApiError) as raised:
            studio_operations.issue_token(self.alice_studio.id, "late", expires_at=None, actor="test", account_id=self.dana["id"])
        self.assertEqual((raised.exception.status, raised.exception.code), (403, "account_disabled"))
        self.assertEqual(UserToken.objects.count(), before)
