"""A credential that is sent must be valid on every route, guest routes included: a paused studio's
token gets 403, and a removed studio's, a revoked, an expired or a disabled account's token 401."""

from datetime import timedelta

from django.utils import timezone

from city.registry import registry
from studios.models import UserToken
from studios.testing import CityTestCase


def every_route() -> list[tuple[str, str]]:
    """(method, path) of every declared action and alias, and /v1/services."""
    routes = [("GET", "/v1/services")]
    for service in registry().services.values():
        routes += [(action.methods[0], f"/v1/{service.id}/{action.name}") for action in service.actions]
        for alias, name in service.aliases.items():
            action = service.action(name)
            assert action is not None, f"alias {alias} names no action"
            routes.append((action.methods[0], f"/v1/{alias}"))
    return routes


class EveryActionRefusesBadCredentialsTests(CityTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.tokens = {}
        for name in ("paused", "removed"):
            studio = self.assertOk(self.admin_post("/v1/studios/create", {"name": name}))
            self.tokens[name] = self.assertOk(self.admin_post("/v1/studios/tokens/apply", {"studio_id": studio["id"], "name": "t"}))[
                "token"
            ]
            verb = "pause" if name == "paused" else "remove"
            self.assertOk(self.admin_post(f"/v1/studios/{verb}", {"studio_id": studio["id"]}))
        revoked = self.assertOk(self.admin_post("/v1/studios/tokens/apply", {"studio_id": self.alice_studio.id, "name": "r"}))
        self.assertOk(self.admin_post("/v1/studios/tokens/revoke", {"token_id": revoked["id"]}))
        self.tokens["revoked"] = revoked["token"]
        expired = self.assertOk(self.admin_post("/v1/studios/tokens/apply", {"studio_id": self.alice_studio.id, "name": "e"}))
        UserToken.objects.filter(id=expired["id"]).update(expires_at=timezone.now() - timedelta(microseconds=1))
        self.tokens["expired"] = expired["token"]

    def test_every_route_refuses_them_before_doing_anything(self) -> None:
        expected = {
            "paused": (403, "permission_error", "studio_paused"),
            "removed": (401, "authentication_error", "studio_removed"),
            "revoked": (401, "authentication_error", "token_revoked"),
            "expired": (401, "authentication_error", "token_expired"),
        }
        routes = every_route()
        self.assertGreater(len(routes), 30)
        for method, path in routes:
            for name, (status, type, code) in expected.items():
                with self.subTest(route=path, token=name):
                    self.assertError(self.call(method, path, {}, token=self.tokens[name]), status, type, code)

    def test_a_disabled_accounts_tokens_stop_working_everywhere(self) -> None:
        account = self.assertOk(
            self.admin_post(
                "/v1/accounts/create", {"studio_id": self.alice_studio.id, "email": "erin@example.com", "password": "a long passphrase 42"}
            )
        )
        signed_in = self.assertOk(
            self.post(
                "/v1/accounts/login", {"studio_id": self.alice_studio.id, "email": "erin@example.com", "password": "a long passphrase 42"}
            )
        )
        own_key = self.assertOk(self.post("/v1/studios/tokens/apply", {"name": "own"}, token=signed_in["user_token"]))["token"]
        self.assertOk(self.admin_post("/v1/accounts/disable", {"account_id": account["id"]}))
        for method, path in every_route():
            for token in (signed_in["user_token"], own_key):
                with self.subTest(route=path):
                    self.assertError(self.call(method, path, {}, token=token), 401, "authentication_error", "token_revoked")
