"""Two City processes sharing one database: changes through one are honoured by the other within 5 s."""

import threading
import time

import httpx

from city.livecity import LiveCity, LiveCityTestCase
from city.waiting import wait_until

PROPAGATION_LIMIT_SECONDS = 5.0


class Traffic:
    """Requests flowing to one process in the background, each recorded as (time, status)."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.results: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {self.token}"}, timeout=5) as client:
            while not self._stop.is_set() and len(self.results) < 20_000:
                status = client.get(f"{self.url}/v1/studios/me").status_code
                self.results.append((time.monotonic(), status))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


class TwoProcessTests(LiveCityTestCase):
    """One pair of processes for the class (each test has its own studio and token, so nothing one
    test's processes cached can answer for the next)."""

    a: LiveCity
    b: LiveCity

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.a, cls.b = LiveCity.many({}, {})
        for city in (cls.a, cls.b):
            cls.addClassCleanup(city.stop)

    def setUp(self) -> None:
        self.admin = httpx.Client(base_url=self.a.url, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=10)
        self.addCleanup(self.admin.close)
        self.studio = self.admin.post("/v1/studios/create", json={"name": "Twins"}).json()
        self.token = self.admin.post("/v1/studios/tokens/apply", json={"studio_id": self.studio["id"], "name": "t"}).json()

    def until(self, url: str, expected_status: int, *, token: str) -> float:
        """Seconds until `url` answers `expected_status` with `token` (fails past the limit)."""
        start = time.monotonic()
        while time.monotonic() - start < PROPAGATION_LIMIT_SECONDS + 1:
            if httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == expected_status:
                return time.monotonic() - start
            time.sleep(0.05)
        self.fail(f"{url} did not answer {expected_status} within {PROPAGATION_LIMIT_SECONDS} s")

    def test_a_token_revoked_through_one_is_refused_by_the_other(self) -> None:
        traffic = Traffic(self.b.url, self.token["token"])
        self.addCleanup(traffic.stop)
        # B has resolved and cached the token: it answers with it.
        wait_until(lambda: [s for _, s in traffic.results].count(200) > 10, message="B answered the token")
        revoked_at = time.monotonic()
        self.assertEqual(self.admin.post("/v1/studios/tokens/revoke", json={"token_id": self.token["id"]}).status_code, 200)
        self.assertEqual(
            httpx.get(f"{self.a.url}/v1/studios/me", headers={"Authorization": f"Bearer {self.token['token']}"}).status_code, 401
        )
        deadline = revoked_at + PROPAGATION_LIMIT_SECONDS
        while time.monotonic() < deadline and not any(s == 401 for _, s in traffic.results):
            time.sleep(0.05)
        answered = len(traffic.results)
        wait_until(lambda: len(traffic.results) >= answered + 5, message="B answered more requests")  # the refusal lasts
        traffic.stop()
        statuses = [s for _, s in traffic.results]
        self.assertGreater(statuses.count(200), 10, "requests kept flowing before the revocation")
        self.assertEqual(set(statuses), {200, 401}, "nothing but success, then refusal")
        first_refusal = next(t for t, s in traffic.results if s == 401)
        self.assertLess(first_refusal - revoked_at, PROPAGATION_LIMIT_SECONDS)
        after = [s for t, s in traffic.results if t > first_refusal]
        self.assertTrue(after and set(after) == {401}, "once refused, always refused")

    def test_a_pause_through_one_is_honoured_by_the_other(self) -> None:
        me = f"{self.b.url}/v1/studios/me"
        self.assertEqual(httpx.get(me, headers={"Authorization": f"Bearer {self.token['token']}"}).status_code, 200)
        self.assertEqual(self.admin.post("/v1/studios/pause", json={"studio_id": self.studio["id"]}).status_code, 200)
        self.assertLess(self.until(me, 403, token=self.token["token"]), PROPAGATION_LIMIT_SECONDS)
        self.assertEqual(self.admin.post("/v1/studios/activate", json={"studio_id": self.studio["id"]}).status_code, 200)
        self.assertLess(self.until(me, 200, token=self.token["token"]), PROPAGATION_LIMIT_SECONDS)

    def test_a_rotation_through_one_is_honoured_by_the_other(self) -> None:
        me = f"{self.b.url}/v1/studios/me"
        self.assertEqual(httpx.get(me, headers={"Authorization": f"Bearer {self.token['token']}"}).status_code, 200)
        rotated = self.admin.post("/v1/studios/tokens/rotate", json={"token_id": self.token["id"]}).json()
        self.assertLess(self.until(me, 401, token=self.token["token"]), PROPAGATION_LIMIT_SECONDS)
        self.assertEqual(httpx.get(me, headers={"Authorization": f"Bearer {rotated['token']}"}).status_code, 200)


class LiveBodyLimitTests(LiveCityTestCase):
    def test_an_oversized_body_is_refused_before_it_is_read(self) -> None:
        city = self.start_city(extra_env={"CITY_MAX_BODY_BYTES": "10000"})
        headers = {"Authorization": f"Bearer {self.admin_key}", "Content-Type": "application/json"}
        response = httpx.post(f"{city.url}/v1/studios/create", content=b'{"name": "' + b"x" * 20000 + b'"}', headers=headers)
        self.assertEqual(response.status_code, 413)
        self.assertEqual(response.json()["error"]["code"], "body_too_large")

        def chunked():  # no Content-Length: the limit applies while the body arrives
            for _ in range(30):
                yield b"x" * 1000

        response = httpx.post(f"{city.url}/v1/studios/create", content=chunked(), headers=headers)
        self.assertEqual(response.status_code, 413)
        self.assertEqual(self.admin_get("/v1/studios/list").json()["items"], [])
        ok = httpx.post(f"{city.url}/v1/studios/create", json={"name": "small"}, headers={"Authorization": f"Bearer {self.admin_key}"})
        self.assertEqual(ok.status_code, 200)


class TwoProcessEnvTests(LiveCityTestCase):
    def test_an_env_value_upserted_through_one_is_seen_by_the_other(self) -> None:
        a, b = self.start_cities({"extra_env": {"DEEPSEEK_API_KEY": ""}}, {"extra_env": {"DEEPSEEK_API_KEY": ""}})
        admin = httpx.Client(base_url=a.url, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=10)
        self.addCleanup(admin.close)
        studio = admin.post("/v1/studios/create", json={"name": "Env"}).json()
        token = admin.post("/v1/studios/tokens/apply", json={"studio_id": studio["id"], "name": "t"}).json()["token"]

        def callable_on_b() -> set[str]:
            body = httpx.get(f"{b.url}/v1/ai/models", headers={"Authorization": f"Bearer {token}"}).json()
            return {item["id"] for item in body["items"]}

        self.assertNotIn("deepseek-v4-flash", callable_on_b())
        upserted_at = time.monotonic()
        self.assertEqual(
            admin.post("/v1/env/upsert", json={"key": "DEEPSEEK_API_KEY", "value": "sk-test-not-a-real-key-0000"}).status_code, 200
        )
        while "deepseek-v4-flash" not in callable_on_b():
            self.assertLess(time.monotonic() - upserted_at, PROPAGATION_LIMIT_SECONDS, "B did not see the upsert in time")
            time.sleep(0.05)
        removed_at = time.monotonic()
        self.assertEqual(admin.post("/v1/env/remove", json={"key": "DEEPSEEK_API_KEY"}).status_code, 200)
        while "deepseek-v4-flash" in callable_on_b():
            self.assertLess(time.monotonic() - removed_at, PROPAGATION_LIMIT_SECONDS, "B did not see the removal in time")
            time.sleep(0.05)
