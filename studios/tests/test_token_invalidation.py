"""The token cache's invalidation handlers (registered in studios/apps.py) and stale reads."""

from django.test import SimpleTestCase

from city import invalidation
from studios.credentials import CachedToken, TokenCache, token_cache


def entry(token_id: str, studio_id: str = "s1", account_id: str | None = None) -> CachedToken:
    return CachedToken(token_id=token_id, studio_id=studio_id, account_id=account_id, loaded_at=TokenCache.clock())


class HandlerTests(SimpleTestCase):
    def setUp(self) -> None:
        token_cache.clear()
        self.addCleanup(token_cache.clear)
        token_cache.put("d1", entry("t1", "s1", "a1"))
        token_cache.put("d2", entry("t2", "s1", "a2"))
        token_cache.put("d3", entry("t3", "s2", "a1"))

    def cached(self) -> set[str]:
        return {digest for digest in ("d1", "d2", "d3") if token_cache.get(digest) is not None}

    def test_a_token_message_drops_that_digest(self) -> None:
        invalidation.dispatch("token", "d2")
        self.assertEqual(self.cached(), {"d1", "d3"})

    def test_a_studio_message_drops_that_studios_tokens(self) -> None:
        invalidation.dispatch("studio", "s1")
        self.assertEqual(self.cached(), {"d3"})

    def test_an_account_message_drops_that_accounts_tokens(self) -> None:
        invalidation.dispatch("account", "a1")
        self.assertEqual(self.cached(), {"d2"})


class StaleReadTests(SimpleTestCase):
    """A row read before an invalidation is not cached after it: it may hold the state before the change."""

    def test_an_entry_read_before_a_forget_is_not_cached(self) -> None:
        cache = TokenCache()
        generation = cache.generation  # taken before the row is read
        cache.forget("d1")  # the invalidation arrives while the row is being read
        cache.put("d1", entry("t1"), generation)
        self.assertIsNone(cache.get("d1"))
        cache.put("d1", entry("t1"), cache.generation)
        self.assertIsNotNone(cache.get("d1"))
