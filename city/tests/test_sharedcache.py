from django.core.cache import BaseCache
from django.test import SimpleTestCase
from redis.exceptions import ConnectionError as RedisConnectionError

from city.sharedcache import CACHE_RETRY_SECONDS, CacheUnavailable, SharedCache


class SharedCacheTests(SimpleTestCase):
    def setUp(self) -> None:
        self.now = 1000.0
        self.shared = SharedCache()
        self.shared.clock = lambda: self.now
        self.calls = 0

    def failing(self, cache: BaseCache) -> None:
        self.calls += 1
        raise RedisConnectionError("Connection refused")

    def test_after_a_failure_the_cache_is_left_alone_for_a_moment_then_tried_again(self) -> None:
        with self.assertRaises(CacheUnavailable):
            self.shared.call(self.failing)
        self.now += CACHE_RETRY_SECONDS - 0.01
        with self.assertRaises(CacheUnavailable):
            self.shared.call(self.failing)
        self.assertEqual(self.calls, 1, "no call waits on a cache that just failed")
        self.now += 0.01
        self.assertEqual(self.shared.call(lambda cache: "answered"), "answered")

    def test_errors_that_are_not_the_cache_being_down_pass_through(self) -> None:
        def missing_key(cache: BaseCache) -> None:
            raise ValueError("Key 'x' not found")  # what incr() raises for a key that is not there

        with self.assertRaises(ValueError):
            self.shared.call(missing_key)
        self.assertEqual(self.shared.call(lambda cache: "answered"), "answered")
