"""Shared set-up for the accounts tests: Dana has an account in Alice's studio."""

from typing import Any

from django.test import override_settings

from accounts.throttle import Throttle
from studios.testing import CityTestCase

DANA_EMAIL = "dana@example.com"
DANA_PASSWORD = "correct horse battery staple"


@override_settings(PASSWORD_HASHERS=["accounts.tests.hashers.LightArgon2PasswordHasher"])
class AccountsTestCase(CityTestCase):
    def setUp(self) -> None:
        super().setUp()
        from django.core.cache import cache

        cache.clear()  # throttle counters live in the cache, which outlives each test's transaction
        self.addCleanup(cache.clear)
        self.addCleanup(setattr, Throttle, "clock", Throttle.clock)

    def create_account(
        self, email: str = DANA_EMAIL, password: str | None = DANA_PASSWORD, studio_id: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        body = {"studio_id": studio_id or self.alice_studio.id, "email": email, **extra}
        if password is not None:
            body["password"] = password
        return self.assertOk(self.admin_post("/v1/accounts/create", body))

    def login(self, email: str = DANA_EMAIL, password: str = DANA_PASSWORD, studio_id: str | None = None, **kw: Any):
        return self.post("/v1/accounts/login", {"studio_id": studio_id or self.alice_studio.id, "email": email, "password": password}, **kw)

    def allow_self_registration(self, allowed: bool = True, studio_id: str | None = None) -> None:
        self.assertOk(
            self.admin_post("/v1/accounts/settings", {"studio_id": studio_id or self.alice_studio.id, "self_registration": allowed})
        )
