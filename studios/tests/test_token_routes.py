from datetime import timedelta

from django.utils import timezone

from city.keys import token_digest
from city.models import AuditEntry
from studios.models import UserToken
from studios.testing import CityTestCase


class ApplyTokenTests(CityTestCase):
    def apply(self, **fields):
        return self.admin_post("/v1/studios/tokens/apply", {"studio_id": self.alice_studio.id, "name": "ci", **fields})

    def test_it_returns_the_secret_once(self) -> None:
        body = self.assertOk(self.apply())
        self.assertEqual(set(body) >= {"id", "token", "prefix", "studio_id", "name", "expires_at", "created_at"}, True)
        self.assertRegex(body["id"], r"^tok_[0-9a-z]{26}$")
        self.assertRegex(body["token"], r"^ub_[A-Za-z0-9_\-]{43}$")
        self.assertEqual(body["prefix"], body["token"][:11])
        self.assertEqual(body["studio_id"], self.alice_studio.id)
        listed = self.assertOk(self.admin_get("/v1/studios/tokens/list", {"studio_id": self.alice_studio.id}))
        self.assertNotIn(body["token"], str(listed))
        self.assertTrue(all("token" not in item for item in listed["items"]))

    def test_only_an_hmac_digest_is_stored(self) -> None:
        body = self.assertOk(self.apply())
        row = UserToken.objects.get(id=body["id"])
        self.assertEqual(row.digest, token_digest(body["token"]))
        self.assertNotIn(body["token"][11:], row.digest + row.prefix + row.name)

    def test_the_new_token_works(self) -> None:
        body = self.assertOk(self.apply())
        me = self.assertOk(self.get("/v1/studios/me", token=body["token"]))
        self.assertEqual(me["token"]["id"], body["id"])

    def test_it_takes_an_expiry_in_the_future(self) -> None:
        soon = timezone.now() + timedelta(days=1)
        body = self.assertOk(self.apply(expires_at=soon.isoformat()))
        self.assertEqual(body["expires_at"], soon.strftime("%Y-%m-%dT%H:%M:%SZ"))
        self.assertError(
            self.apply(expires_at=(timezone.now() - timedelta(seconds=1)).isoformat()), 400, "invalid_request_error", param="expires_at"
        )
        self.assertError(self.apply(expires_at="tomorrow"), 400, "invalid_request_error", param="expires_at")

    def test_an_expired_token_is_401(self) -> None:
        token = UserToken.objects.get(id=self.bob.id)
        token.expires_at = timezone.now() - timedelta(seconds=1)
        token.save(update_fields=["expires_at"])
        self.assertError(self.get("/v1/studios/me", token=self.bob_token), 401, "authentication_error", "token_expired")

    def test_it_needs_a_known_studio(self) -> None:
        self.assertError(self.apply(studio_id="studio_nope"), 404, "not_found_error", "studio_not_found")
        self.assertError(
            self.admin_post("/v1/studios/tokens/apply", {"name": "x"}), 400, "invalid_request_error", "missing_field", "studio_id"
        )

    def test_a_removed_studio_gets_no_tokens(self) -> None:
        self.admin_post("/v1/studios/remove", {"studio_id": self.alice_studio.id})
        self.assertError(self.apply(), 409, "invalid_request_error", "studio_removed")
        self.assertEqual(UserToken.objects.filter(studio=self.alice_studio).count(), 1)

    def test_users_cannot_issue_tokens(self) -> None:
        self.assertError(
            self.post("/v1/studios/tokens/apply", {"studio_id": self.alice_studio.id, "name": "x"}, token=self.bob_token),
            403,
            "permission_error",
        )

    def test_the_audit_entry_carries_no_secret(self) -> None:
        body = self.assertOk(self.apply())
        entry = AuditEntry.objects.get(action="studios/tokens/apply", target=body["id"])
        self.assertNotIn(body["token"], str(entry.detail) + entry.target)


class ListTokensTests(CityTestCase):
    def test_it_lists_without_secrets(self) -> None:
        body = self.assertOk(self.admin_get("/v1/studios/tokens/list"))
        self.assertEqual([t["id"] for t in body["items"]], [self.charlie.id, self.bob.id])
        item = body["items"][1]
        self.assertEqual(
            set(item),
            {
                "id",
                "object",
                "prefix",
                "studio_id",
                "name",
                "status",
                "created_at",
                "expires_at",
                "last_used_at",
                "rotated_at",
                "revoked_at",
                "plan_id",
            },
        )
        self.assertEqual(item["status"], "active")

    def test_it_filters_by_studio_and_status(self) -> None:
        self.admin_post("/v1/studios/tokens/revoke", {"token_id": self.bob.id})
        revoked = self.assertOk(self.admin_get("/v1/studios/tokens/list", {"status": "revoked"}))
        self.assertEqual([t["id"] for t in revoked["items"]], [self.bob.id])
        active = self.assertOk(self.admin_get("/v1/studios/tokens/list", {"status": "active", "studio_id": self.alice_studio.id}))
        self.assertEqual(active["items"], [])

    def test_pages_stay_stable_while_tokens_are_issued(self) -> None:
        first = self.assertOk(self.admin_get("/v1/studios/tokens/list", {"limit": 1}))
        self.assertOk(self.admin_post("/v1/studios/tokens/apply", {"studio_id": self.alice_studio.id, "name": "new"}))
        second = self.assertOk(self.admin_get("/v1/studios/tokens/list", {"limit": 1, "cursor": first["next_cursor"]}))
        self.assertEqual([t["id"] for t in first["items"] + second["items"]], [self.charlie.id, self.bob.id])
        self.assertFalse(second["has_more"])

    def test_an_unknown_studio_is_404_not_an_empty_list(self) -> None:
        for studio_id in ["studio_nope", self.bob.id]:
            with self.subTest(studio_id=studio_id):
                response = self.admin_get("/v1/studios/tokens/list", {"studio_id": studio_id})
                self.assertError(response, 404, "not_found_error", "studio_not_found", "studio_id")
        self.admin_post("/v1/studios/tokens/revoke", {"token_id": self.bob.id})
        self.assertEqual(
            self.assertOk(self.admin_get("/v1/studios/tokens/list", {"studio_id": self.alice_studio.id, "status": "active"}))["items"], []
        )

    def test_bad_cursors_and_limits_are_400(self) -> None:
        for cursor in ["garbage", self.alice_studio.id, "tok_" + "!" * 26]:
            with self.subTest(cursor=cursor):
                response = self.admin_get("/v1/studios/tokens/list", {"cursor": cursor})
                self.assertError(response, 400, "invalid_request_error", "invalid_cursor", "cursor")
        for limit in ["0", "201", "ten", "-1"]:
            with self.subTest(limit=limit):
                self.assertError(self.admin_get("/v1/studios/tokens/list", {"limit": limit}), 400, "invalid_request_error", param="limit")

    def test_last_used_is_recorded(self) -> None:
        self.assertOk(self.get("/v1/studios/me", token=self.bob_token))
        self.assertIsNotNone(UserToken.objects.get(id=self.bob.id).last_used_at)


class RevokeTokenTests(CityTestCase):
    def test_it_revokes(self) -> None:
        self.assertOk(self.get("/v1/studios/me", token=self.bob_token))  # now cached in this process
        body = self.assertOk(self.admin_post("/v1/studios/tokens/revoke", {"token_id": self.bob.id}))
        self.assertEqual(body["status"], "revoked")
        self.assertIsNotNone(body["revoked_at"])
        self.assertError(self.get("/v1/studios/me", token=self.bob_token), 401, "authentication_error", "token_revoked")

    def test_revoking_twice_keeps_the_first_time(self) -> None:
        first = self.assertOk(self.admin_post("/v1/studios/tokens/revoke", {"token_id": self.bob.id}))["revoked_at"]
        second = self.assertOk(self.admin_post("/v1/studios/tokens/revoke", {"token_id": self.bob.id}))["revoked_at"]
        self.assertEqual(first, second)
        self.assertEqual(AuditEntry.objects.filter(action="studios/tokens/revoke").count(), 1)

    def test_an_unknown_token_is_404(self) -> None:
        self.assertError(
            self.admin_post("/v1/studios/tokens/revoke", {"token_id": "tok_nope"}), 404, "not_found_error", "token_not_found", "token_id"
        )

    def test_a_studio_scope_that_does_not_match_is_404(self) -> None:
        self.assertError(
            self.admin_post("/v1/studios/tokens/revoke", {"token_id": self.bob.id, "studio_id": self.charlie_studio.id}),
            404,
            "not_found_error",
        )
        self.assertIsNone(UserToken.objects.get(id=self.bob.id).revoked_at)

    def test_it_requires_admin(self) -> None:
        self.assertError(
            self.post("/v1/studios/tokens/revoke", {"token_id": self.charlie.id}, token=self.bob_token), 403, "permission_error"
        )
        self.assertIsNone(UserToken.objects.get(id=self.charlie.id).revoked_at)


class RotateTokenTests(CityTestCase):
    def test_the_new_secret_works_and_the_old_one_dies(self) -> None:
        self.assertOk(self.get("/v1/studios/me", token=self.bob_token))
        body = self.assertOk(self.admin_post("/v1/studios/tokens/rotate", {"token_id": self.bob.id}))
        self.assertEqual(body["id"], self.bob.id)
        self.assertNotEqual(body["token"], self.bob_token)
        self.assertEqual(body["prefix"], body["token"][:11])
        self.assertError(self.get("/v1/studios/me", token=self.bob_token), 401, "authentication_error", "invalid_api_key")
        self.assertOk(self.get("/v1/studios/me", token=body["token"]))

    def test_a_token_of_a_removed_studio_is_not_rotated(self) -> None:
        self.assertOk(self.admin_post("/v1/studios/remove", {"studio_id": self.alice_studio.id}))
        before = UserToken.objects.get(id=self.bob.id).digest
        response = self.admin_post("/v1/studios/tokens/rotate", {"token_id": self.bob.id})
        self.assertError(response, 409, "invalid_request_error", "studio_removed", "token_id")
        self.assertNotIn("token", response.json())
        self.assertEqual(UserToken.objects.get(id=self.bob.id).digest, before)

    def test_a_revoked_token_cannot_be_rotated(self) -> None:
        self.admin_post("/v1/studios/tokens/revoke", {"token_id": self.bob.id})
        self.assertError(
            self.admin_post("/v1/studios/tokens/rotate", {"token_id": self.bob.id}), 409, "invalid_request_error", "token_revoked"
        )

    def test_rotation_is_audited_without_secrets(self) -> None:
        body = self.assertOk(self.admin_post("/v1/studios/tokens/rotate", {"token_id": self.bob.id}))
        entry = AuditEntry.objects.get(action="studios/tokens/rotate")
        self.assertEqual(entry.target, self.bob.id)
        self.assertNotIn(body["token"], str(entry.detail))
        self.assertNotIn(self.bob_token, str(entry.detail))
