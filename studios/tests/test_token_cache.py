"""The per-process token cache: what another process changed is honoured once an entry is older than the TTL."""

from django.test import override_settings
from django.utils import timezone

from city.testing import MovableClock
from studios.credentials import TokenCache, token_cache
from studios.models import Studio, UserToken
from studios.testing import CityTestCase


@override_settings(CITY_TOKEN_CACHE_SECONDS=2.0)
class TokenCacheTests(CityTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.clock = MovableClock()
        self.original = TokenCache.clock
        TokenCache.clock = self.clock
        self.addCleanup(setattr, TokenCache, "clock", self.original)

    def change_behind_the_cache(self) -> None:
        """What another process does: the row changes, this process is not told."""
        UserToken.objects.filter(id=self.bob.id).update(revoked_at=timezone.now())

    def test_a_cached_token_costs_no_query(self) -> None:
        self.assertOk(self.get("/v1/studios/me", token=self.bob_token))
        with self.assertNumQueries(0):
            self.get("/v1/system/whoami", token=self.bob_token)

    def test_a_change_elsewhere_is_seen_once_the_entry_is_older_than_the_ttl(self) -> None:
        self.assertOk(self.get("/v1/system/whoami", token=self.bob_token))
        self.change_behind_the_cache()
        self.clock.now += 1.9
        self.assertOk(self.get("/v1/system/whoami", token=self.bob_token))  # still trusted
        self.clock.now += 0.2
        self.assertError(self.get("/v1/system/whoami", token=self.bob_token), 401, "authentication_error", "token_revoked")

    def test_a_pause_elsewhere_is_seen_after_the_ttl(self) -> None:
        self.assertOk(self.get("/v1/system/whoami", token=self.bob_token))
        Studio.objects.filter(id=self.alice_studio.id).update(status="paused")
        self.clock.now += 2.0
        self.assertError(self.get("/v1/system/whoami", token=self.bob_token), 403, "permission_error", "studio_paused")

    def test_unknown_tokens_are_cached_too(self) -> None:
        bogus = "ub_" + "q" * 43
        self.get("/v1/system/whoami", token=bogus)
        with self.assertNumQueries(0):
            self.assertError(self.get("/v1/system/whoami", token=bogus), 401, "authentication_error", "invalid_api_key")

    def test_the_cache_is_bounded(self) -> None:
        from studios import credentials

        for n in range(credentials.MAX_CACHED_TOKENS + 10):
            token_cache.put(f"digest-{n}", credentials.CachedToken(token_id=None, loaded_at=self.clock.now))
        self.assertEqual(len(token_cache._entries), credentials.MAX_CACHED_TOKENS)
