"""Two City processes on one database: a change made through one is honoured by the other at once,
carried by the channel layer (city/invalidation.py), and within the caches' TTL when the layer is down.

The caches' TTL is set to 30 s where the broadcast is measured, so that nothing but the broadcast can
explain a refusal within BROADCAST_LIMIT_SECONDS. The layer is REDIS_URL's Redis when the run has one,
else a Redis of the test's own (city/liveredis.py), so that both CI passes run these tests.
"""

import time
from collections.abc import Callable
from urllib.parse import urlparse

import httpx
import redis
from django.conf import settings

from city.invalidation import GROUP
from city.livecity import LiveCity, LiveCityTestCase, free_port
from city.liveredis import LiveRedis

# Here a broadcast is honoured in 0.04-0.12 s, even with both cores busy; a shared CI machine running the
# other worker's browser and Node clients beside these four processes once took 0.9 s. Still 15 times
# under the caches' TTL, so that only the broadcast can explain a refusal within it.
BROADCAST_LIMIT_SECONDS = 2.0
LONG_TTL_SECONDS = 30
WAIT_LIMIT_SECONDS = 15.0  # how long a poll waits before failing (the assertions are tighter)
DEEPSEEK_MODEL = "deepseek-v4-flash"  # listed once DEEPSEEK_API_KEY is set


def subscribers(layer_url: str) -> int:
    """Processes listening for invalidations on `layer_url` (0 when that Redis does not answer)."""
    channel = f"city-db{urlparse(layer_url).path.strip('/') or '0'}__group__{GROUP}"
    try:
        with redis.Redis.from_url(layer_url, socket_timeout=2) as client:
            return int(dict(client.pubsub_numsub(channel))[channel.encode()])
    except redis.ConnectionError:
        return 0


class LiveTwoProcesses(LiveCityTestCase):
    """Helpers: a City process with a given channel layer and TTL, and polls with a deadline."""

    def cities(self, layer_url: str, ttl: float) -> list[LiveCity]:
        """A under Daphne and B under uvicorn, with this channel layer and TTL (started side by side)."""
        env = {
            "CITY_CHANNEL_LAYER_URL": layer_url,
            "CITY_TOKEN_CACHE_SECONDS": str(ttl),
            "CITY_ENV_CACHE_SECONDS": str(ttl),
            "DEEPSEEK_API_KEY": "",
        }
        return self.start_cities({"extra_env": env, "server": "daphne"}, {"extra_env": env, "server": "uvicorn"})

    def admin_of(self, city: LiveCity) -> httpx.Client:
        client = httpx.Client(base_url=city.url, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=10)
        self.addCleanup(client.close)
        return client

    def status(self, city: LiveCity, token: str) -> int:
        return httpx.get(f"{city.url}/v1/studios/me", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code

    def seconds_until(self, check: Callable[[], bool], what: str) -> float:
        started = time.monotonic()
        while not check():
            elapsed = time.monotonic() - started
            if elapsed > WAIT_LIMIT_SECONDS:
                self.fail(f"{what}: not within {WAIT_LIMIT_SECONDS} s")
            time.sleep(0.01)
        return time.monotonic() - started

    def wait_subscribed(self, layer_url: str, count: int) -> None:
        self.seconds_until(lambda: subscribers(layer_url) >= count, f"{count} processes listening on the channel layer")

    def new_token(self, admin: httpx.Client, studio_id: str) -> dict:
        response = admin.post("/v1/studios/tokens/apply", json={"studio_id": studio_id, "name": "t"})
        self.assertEqual(response.status_code, 200, response.text)
        return response.json()

    def models_on(self, city: LiveCity, token: str) -> set[str]:
        body = httpx.get(f"{city.url}/v1/ai/models", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        return {item["id"] for item in body["items"]}


class BroadcastTests(LiveTwoProcesses):
    """A is Daphne (the listener starts on its first request), B is uvicorn (it starts with the lifespan)."""

    def setUp(self) -> None:
        self.layer_url = settings.REDIS_URL or self.own_redis().url
        self.a, self.b = self.cities(self.layer_url, LONG_TTL_SECONDS)
        self.wait_subscribed(self.layer_url, 2)
        self.admin = self.admin_of(self.a)
        self.studio = self.admin.post("/v1/studios/create", json={"name": "Broadcast"}).json()

    def own_redis(self) -> LiveRedis:
        server = LiveRedis()
        self.addCleanup(server.stop)
        return server

    def assertSeenAtOnce(self, check: Callable[[], bool], what: str) -> None:
        self.assertLess(self.seconds_until(check, what), BROADCAST_LIMIT_SECONDS, what)

    def test_a_revocation_through_one_is_refused_by_the_other_at_once(self) -> None:
        token = self.new_token(self.admin, self.studio["id"])
        self.assertEqual(self.status(self.b, token["token"]), 200)  # B has it cached, for 30 s
        self.assertEqual(self.admin.post("/v1/studios/tokens/revoke", json={"token_id": token["id"]}).status_code, 200)
        self.assertSeenAtOnce(lambda: self.status(self.b, token["token"]) == 401, "B refuses the token A revoked")
        # And the other way: uvicorn publishes, Daphne listens.
        other = self.new_token(self.admin, self.studio["id"])
        self.assertEqual(self.status(self.a, other["token"]), 200)
        self.assertEqual(self.admin_of(self.b).post("/v1/studios/tokens/revoke", json={"token_id": other["id"]}).status_code, 200)
        self.assertSeenAtOnce(lambda: self.status(self.a, other["token"]) == 401, "A refuses the token B revoked")

    def test_a_rotation_through_one_is_honoured_by_the_other_at_once(self) -> None:
        token = self.new_token(self.admin, self.studio["id"])
        self.assertEqual(self.status(self.b, token["token"]), 200)
        rotated = self.admin.post("/v1/studios/tokens/rotate", json={"token_id": token["id"]}).json()
        self.assertSeenAtOnce(lambda: self.status(self.b, token["token"]) == 401, "B refuses the old secret")
        self.assertEqual(self.status(self.b, rotated["token"]), 200)

    def test_pause_activate_and_removal_through_one_are_honoured_by_the_other_at_once(self) -> None:
        token = self.new_token(self.admin, self.studio["id"])["token"]
        self.assertEqual(self.status(self.b, token), 200)
        for action, expected in (("pause", 403), ("activate", 200), ("remove", 401)):
            self.assertEqual(self.admin.post(f"/v1/studios/{action}", json={"studio_id": self.studio["id"]}).status_code, 200)

            def answered(expected: int = expected) -> bool:
                return self.status(self.b, token) == expected

            self.assertSeenAtOnce(answered, f"B answers {expected} after {action}")

    def test_an_account_disabled_through_one_is_refused_by_the_other_at_once(self) -> None:
        email, password = "ada@example.com", "a long password for ada 1815"
        account = self.admin.post("/v1/accounts/create", json={"studio_id": self.studio["id"], "email": email, "password": password}).json()
        login = httpx.post(f"{self.b.url}/v1/accounts/login", json={"studio_id": self.studio["id"], "email": email, "password": password})
        self.assertEqual(login.status_code, 200, login.text)
        token = login.json()["user_token"]
        self.assertEqual(self.status(self.b, token), 200)
        self.assertEqual(self.admin.post("/v1/accounts/disable", json={"account_id": account["id"]}).status_code, 200)
        self.assertSeenAtOnce(lambda: self.status(self.b, token) == 401, "B refuses the disabled account's token")

    def test_env_changes_through_one_are_seen_by_the_other_at_once(self) -> None:
        token = self.new_token(self.admin, self.studio["id"])["token"]
        self.assertNotIn(DEEPSEEK_MODEL, self.models_on(self.b, token))  # B has its env snapshot, for 30 s
        key = {"key": "DEEPSEEK_API_KEY", "value": "sk-test-not-a-real-key-0000"}
        self.assertEqual(self.admin.post("/v1/env/upsert", json=key).status_code, 200)
        self.assertSeenAtOnce(lambda: DEEPSEEK_MODEL in self.models_on(self.b, token), "B sees the upserted key")
        self.assertEqual(self.admin.post("/v1/env/remove", json={"key": "DEEPSEEK_API_KEY"}).status_code, 200)
        self.assertSeenAtOnce(lambda: DEEPSEEK_MODEL not in self.models_on(self.b, token), "B sees the removal")
        imported = self.admin.post("/v1/env/import", json={"content": "DEEPSEEK_API_KEY=sk-test-not-a-real-key-0001\n"})
        self.assertEqual(imported.status_code, 200, imported.text)
        self.assertSeenAtOnce(lambda: DEEPSEEK_MODEL in self.models_on(self.b, token), "B sees the imported key")


class LayerDownTests(LiveTwoProcesses):
    """The channel layer's Redis down (the cache, REDIS_URL, still up when the run has one): the TTL carries
    the change, and no request fails or waits for the layer."""

    TTL_SECONDS = 4.0
    TTL_MARGIN_SECONDS = 3.0  # a loaded machine: the poll's own requests, the revocation's round trip

    def test_with_no_layer_from_the_start_a_revocation_is_refused_within_the_ttl(self) -> None:
        dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
        a, b = self.cities(dead, self.TTL_SECONDS)
        self.assertRefusedWithinTheTtl(a, b)

    def test_when_the_layer_drops_the_ttl_applies_and_when_it_returns_the_broadcast_does(self) -> None:
        layer = LiveRedis()
        self.addCleanup(layer.stop)
        a, b = self.cities(layer.url, self.TTL_SECONDS)
        self.wait_subscribed(layer.url, 2)
        layer.stop()
        self.assertRefusedWithinTheTtl(a, b)
        layer.start()  # same port: both processes resubscribe by themselves
        self.wait_subscribed(layer.url, 2)
        admin = self.admin_of(a)
        studio = admin.post("/v1/studios/create", json={"name": "Back"}).json()
        token = self.new_token(admin, studio["id"])
        self.assertEqual(self.status(b, token["token"]), 200)  # cached just now: the TTL cannot expire it soon
        self.assertEqual(admin.post("/v1/studios/tokens/revoke", json={"token_id": token["id"]}).status_code, 200)
        seconds = self.seconds_until(lambda: self.status(b, token["token"]) == 401, "B refuses once the layer is back")
        self.assertLess(seconds, BROADCAST_LIMIT_SECONDS)

    def assertRefusedWithinTheTtl(self, a: LiveCity, b: LiveCity) -> None:
        admin = self.admin_of(a)
        studio = admin.post("/v1/studios/create", json={"name": "Down"}).json()
        self.assertEqual(studio.get("object"), "studio", studio)
        token = self.new_token(admin, studio["id"])
        self.assertEqual(self.status(b, token["token"]), 200)
        self.assertEqual(admin.post("/v1/studios/tokens/revoke", json={"token_id": token["id"]}).status_code, 200)
        self.assertEqual(self.status(a, token["token"]), 401)  # the process that revoked it: at once
        seconds = self.seconds_until(lambda: self.status(b, token["token"]) != 200, "B refuses within the TTL")
        self.assertEqual(self.status(b, token["token"]), 401)
        self.assertLess(seconds, self.TTL_SECONDS + self.TTL_MARGIN_SECONDS)
