"""Each pytest-xdist worker's Redis database (city/testworkers.py)."""

from django.test import SimpleTestCase

from city.testworkers import WorkerRedisError, redis_url_of_worker, worker_environment


class WorkerRedisTests(SimpleTestCase):
    def test_worker_n_takes_the_database_number_plus_n(self) -> None:
        self.assertEqual(redis_url_of_worker("redis://127.0.0.1:6379/6", 0), "redis://127.0.0.1:6379/6")
        self.assertEqual(redis_url_of_worker("redis://127.0.0.1:6379/6", 1), "redis://127.0.0.1:6379/7")
        self.assertEqual(redis_url_of_worker("redis://127.0.0.1:6379", 1), "redis://127.0.0.1:6379/1")
        self.assertEqual(redis_url_of_worker("rediss://user:pw@cache.internal:6380/0", 1), "rediss://user:pw@cache.internal:6380/1")

    def test_a_url_it_cannot_renumber_or_past_the_last_database_is_refused(self) -> None:
        for url, index in (("redis://127.0.0.1:6379/15", 1), ("redis://127.0.0.1:6379/0?db=2", 1), ("unix:///run/redis.sock", 1)):
            with self.subTest(url=url), self.assertRaises(WorkerRedisError):
                redis_url_of_worker(url, index)

    def test_only_the_redis_urls_that_are_set_change(self) -> None:
        self.assertEqual(
            worker_environment({"REDIS_URL": "redis://127.0.0.1:6379/0", "PATH": "/bin"}, 1), {"REDIS_URL": "redis://127.0.0.1:6379/1"}
        )
        self.assertEqual(worker_environment({"REDIS_URL": "", "CITY_CHANNEL_LAYER_URL": ""}, 1), {})
        self.assertEqual(
            worker_environment({"REDIS_URL": "redis://h/2", "CITY_CHANNEL_LAYER_URL": "redis://h/9"}, 1),
            {"REDIS_URL": "redis://h/3", "CITY_CHANNEL_LAYER_URL": "redis://h/10"},
        )
