"""The token cache as a server process runs it (city/refresh_ahead.py): an entry past half its lifetime
is served and read again in the background; CITY_TOKEN_CACHE_SECONDS stays the bound."""

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.test import TransactionTestCase, override_settings
from django.utils import timezone

from city.refresh_ahead import refresher
from city.testing import ApiTestMixin, MovableClock
from city.tests.test_refresh_ahead import wait_idle
from studios import operations
from studios.credentials import TokenCache, token_cache
from studios.models import UserToken
from studios.testing import ADMIN_ACTOR


@override_settings(CITY_TOKEN_CACHE_SECONDS=2.0, CITY_ENV_CACHE_SECONDS=2.0)
class TokenRefreshAheadTests(ApiTestMixin, TransactionTestCase):
    """The caches as a server process runs them: a change another process committed (no broadcast)
    is taken in the background before the copy expires, and no request waits for the read."""

    @classmethod
    def captureOnCommitCallbacks(cls, *, using: str = "default", execute: bool = False) -> AbstractContextManager[list[Callable[[], Any]]]:
        return nullcontext([])  # TransactionTestCase commits for real; hooks run by themselves

    def setUp(self) -> None:
        refresher.enabled = True
        self.addCleanup(setattr, refresher, "enabled", False)
        self.addCleanup(wait_idle, refresher)
        self.clock = MovableClock()
        self.addCleanup(setattr, TokenCache, "clock", TokenCache.clock)
        TokenCache.clock = self.clock
        token_cache.clear()
        studio = operations.create_studio("Refresh Studio", actor=ADMIN_ACTOR)
        self.token, self.raw = operations.issue_token(studio.id, "laptop", expires_at=None, actor=ADMIN_ACTOR)

    def test_a_token_revoked_elsewhere_is_refused_before_its_entry_expires(self) -> None:
        self.assertOk(self.get("/v1/system/whoami", token=self.raw))
        UserToken.objects.filter(id=self.token.id).update(revoked_at=timezone.now())  # another process, no broadcast
        self.clock.now += 1.2  # past half the lifetime: served from the cache, read again behind it
        self.assertOk(self.get("/v1/system/whoami", token=self.raw))
        wait_idle(refresher)
        self.clock.now += 0.1  # still within the first entry's lifetime
        self.assertError(self.get("/v1/system/whoami", token=self.raw), 401, "authentication_error", "token_revoked")

    def test_a_young_entry_is_not_read_again(self) -> None:
        self.assertOk(self.get("/v1/system/whoami", token=self.raw))
        self.clock.now += 0.5
        with self.assertNumQueries(0):
            self.assertOk(self.get("/v1/system/whoami", token=self.raw))
        self.assertTrue(refresher.idle())
