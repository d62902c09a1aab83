"""Every identity against actions allowing anyone ([]), users (["user"]) and admins (["admin"])."""

from studios.testing import CityTestCase

GUEST_ACTION = ("GET", "/v1/system/whoami")
USER_ACTION = ("GET", "/v1/studios/me")
ADMIN_ACTION = ("GET", "/v1/studios/tokens/list")


class IdentityMatrixTests(CityTestCase):
    def setUp(self) -> None:
        super().setUp()
        paused = self.assertOk(self.admin_post("/v1/studios/create", {"name": "Paused"}))
        self.paused_token = self.assertOk(self.admin_post("/v1/studios/tokens/apply", {"studio_id": paused["id"], "name": "p"}))["token"]
        self.assertOk(self.admin_post("/v1/studios/pause", {"studio_id": paused["id"]}))
        revoked = self.assertOk(self.admin_post("/v1/studios/tokens/apply", {"studio_id": self.alice_studio.id, "name": "r"}))
        self.revoked_token = revoked["token"]
        self.assertOk(self.admin_post("/v1/studios/tokens/revoke", {"token_id": revoked["id"]}))

    def status(self, action: tuple[str, str], token: str | None) -> int:
        method, route = action
        return self.call(method, route, token=token).status_code

    def test_the_matrix(self) -> None:
        credentials = {
            "guest": None,
            "user": self.bob_token,
            "admin": self.admin_key,
            "revoked user": self.revoked_token,
            "paused-studio user": self.paused_token,
        }
        expected = {
            # identity:             ([] action, ["user"] action, ["admin"] action)
            "guest": (200, 401, 401),
            "user": (200, 200, 403),
            "admin": (200, 400, 200),  # an admin passes every check; studios/me then needs a studio_id
            "revoked user": (401, 401, 401),
            "paused-studio user": (403, 403, 403),
        }
        actual = {
            name: tuple(self.status(action, token) for action in (GUEST_ACTION, USER_ACTION, ADMIN_ACTION))
            for name, token in credentials.items()
        }
        self.assertEqual(actual, expected)

    def test_whoami_names_the_identity(self) -> None:
        self.assertEqual(self.assertOk(self.get("/v1/system/whoami"))["identity"], "guest")
        self.assertEqual(self.assertOk(self.get("/v1/system/whoami", token=self.admin_key))["identity"], "admin")
        me = self.assertOk(self.get("/v1/system/whoami", token=self.bob_token))
        self.assertEqual((me["identity"], me["studio_id"], me["token_id"]), ("user", self.alice_studio.id, self.bob.id))

    def test_health_is_open_to_guests(self) -> None:
        self.assertEqual(self.assertOk(self.get("/v1/system/health")), {"status": "ok"})
