"""The guest throttles with their cache down (a Redis nobody listens on): sign-in and registration
refuse with a typed 503; OAuth starts count in the process's memory, and their limit still holds."""

from typing import Any

from accounts.tests.helpers import DANA_EMAIL, AccountsTestCase
from accounts.throttle import Throttle
from city.livecity import free_port
from city.sharedcache import shared_cache
from studios.models import UserToken


class ThrottleWithCacheDownTests(AccountsTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.create_account()
        self.allow_self_registration()
        self.addCleanup(shared_cache.reset)  # the next test finds the cache up again
        Throttle.clock = lambda: 900 * 3_000_123.0  # a window of its own: the in-memory counts start at zero
        closed = {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
        cache_down = self.settings(CACHES={"default": closed})
        cache_down.enable()
        self.addCleanup(cache_down.disable)

    def assertCacheUnavailable(self, response: Any) -> None:
        error = self.assertError(response, 503, "api_error", "cache_unavailable")
        self.assertIn("REDIS_URL", error["message"])
        self.assertEqual(response["Retry-After"], "5")

    def test_sign_in_is_refused_typed_and_issues_nothing(self) -> None:
        tokens = UserToken.objects.count()
        self.assertCacheUnavailable(self.login())
        self.assertCacheUnavailable(self.login(password="wrong"))  # a guess is not answered 401 either
        self.assertEqual(UserToken.objects.count(), tokens)

    def test_registration_is_refused_typed(self) -> None:
        body = {"studio_id": self.alice_studio.id, "email": "new@example.com", "password": "another long passphrase"}
        self.assertCacheUnavailable(self.post("/v1/accounts/register", body))
        self.assertEqual(self.assertOk(self.admin_get("/v1/accounts/list"))["items"][0]["email"], DANA_EMAIL)

    def test_oauth_starts_are_counted_in_memory_and_their_limit_holds(self) -> None:
        for key in ("GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET"):
            self.assertOk(self.admin_post("/v1/env/upsert", {"key": key, "value": "city-test-not-real"}))
        start = {"provider": "github", "studio_id": self.alice_studio.id}
        with self.settings(ACCOUNTS_OAUTH_MAX_STARTS_PER_ADDRESS=2):
            for _ in range(2):
                self.assertIn("authorize_url", self.assertOk(self.post("/v1/accounts/oauth/start", start)))
            self.assertError(self.post("/v1/accounts/oauth/start", start), 429, "rate_limit_error", "too_many_attempts")
