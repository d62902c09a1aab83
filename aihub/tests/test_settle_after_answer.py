"""An answer goes out once its settlement is written to Redis, without waiting for Redis's reply, unless
the call's reservation was tight (the client's next call needs what it holds): then the reply too. A
server that stops finishes the settlements first.

Redis is made slow by aihub/tests/redis_proxy.py, in front of a redis-server of the class's own: its
replies late, or its reading of the settle script late. Without the change these tests describe, an
answer took one more delayed round trip; answered before a tight settlement was in, the next call at
concurrency 1 or at the edge of a TPM was refused; without the drain at shutdown, a call answered just
before SIGTERM kept its reservation and its record waited for another process's reaper.
"""

import signal
import time
from collections.abc import Callable

import httpx

from aihub.ledger_redis import SHAS
from aihub.models import UsageRecord
from aihub.tests.live_plans import MODEL, OPENAI_KEY, PlanCitiesTestCase, chat_body, price, wait_for_records, worst_case
from aihub.tests.redis_proxy import SlowRedisProxy
from aihub.tests.test_serve_prod import ServeProd, serve_prod_env
from aihub.tests.upstream.openai_sim import OpenAISim
from city.livecity import LiveCityTestCase
from city.liveredis import LiveRedis
from city.waiting import wait_until

DELAY_SECONDS = 0.5  # each Redis reply, or the settle script's reading, this late
EXIT_SECONDS = 30.0


class AnsweredBeforeRedisRepliesTests(PlanCitiesTestCase):
    own = True  # a redis-server of the class's own, behind the proxy
    proxy: SlowRedisProxy | None = None

    @classmethod
    def redis_url(cls) -> str:
        if cls.proxy is None:
            assert cls.processes.redis is not None
            cls.proxy = SlowRedisProxy(cls.processes.redis.url).start()
            cls.addClassCleanup(cls.proxy.stop)
        return cls.proxy.url

    def setUp(self) -> None:
        super().setUp()
        assert self.proxy is not None
        self.proxy.reply_delay, self.proxy.held, self.proxy.hold = 0.0, b"", 0.0

    def timed_call(self, client: httpx.Client) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = client.post("/v1/chat/completions", json=chat_body("Hi", 10))
        return response, time.monotonic() - started

    def test_an_answer_waits_for_its_reservation_but_not_for_the_settlements_reply(self) -> None:
        assert self.proxy is not None
        studio = self.planned_studio(max_concurrency=5, rpm=1000)
        self.sim.script.usage = (7, 3)
        for client in studio.clients:
            self.assertEqual(client.post("/v1/chat/completions", json=chat_body("Hi", 10)).status_code, 200)  # caches warm
        self.proxy.reply_delay = DELAY_SECONDS
        for client in studio.clients:  # Daphne and uvicorn
            response, seconds = self.timed_call(client)
            self.assertEqual(response.status_code, 200, response.text[:300])
            self.assertGreaterEqual(seconds, DELAY_SECONDS, "the reservation's reply is waited for")
            self.assertLess(seconds, 1.8 * DELAY_SECONDS, "the settlement's reply is not")
        self.proxy.reply_delay = 0.0
        records = wait_for_records(studio.studio_id, 4)
        self.assertEqual({(r.status, r.prompt_tokens, r.completion_tokens, r.cost) for r in records}, {(200, 7, 3, price(7, 3))})

    def test_a_call_that_takes_the_last_slot_is_answered_once_its_settlement_is_in(self) -> None:
        # At concurrency 1 every call takes the last slot: the client's next call, on either process,
        # needs it, so the answer waits for the settlement even while Redis reads it late.
        assert self.proxy is not None
        studio = self.planned_studio(max_concurrency=1)
        for client in studio.clients:
            self.assertEqual(client.post("/v1/chat/completions", json=chat_body("Hi", 10)).status_code, 200)
        self.proxy.held, self.proxy.hold = SHAS["SETTLE"].encode(), DELAY_SECONDS
        for index in range(4):
            response, seconds = self.timed_call(studio.clients[index % 2])  # Daphne, uvicorn, Daphne, uvicorn
            self.assertEqual(response.status_code, 200, f"call {index}: {response.text[:300]}")
            self.assertGreaterEqual(seconds, 0.9 * DELAY_SECONDS, "the answer waited for the settlement")
        self.assertGreaterEqual(self.proxy.held_commands, 4)
        self.assertEqual(self.sim.max_in_flight, 1)
        self.proxy.held = b""
        wait_for_records(studio.studio_id, 6)

    def test_a_call_that_leaves_no_room_for_another_like_it_is_answered_once_its_settlement_is_in(self) -> None:
        body = chat_body("Hi", 10)
        worst = worst_case(body)
        # One call's worst case fits the TPM, two do not: the second fits only once the first settled to
        # its real tokens (the upstream reports fewer), so the first's answer waits for that, even while
        # Redis reads the settlement late; the second call comes through the other process.
        studio = self.planned_studio(tpm=(worst.input_tokens + worst.output_tokens) * 3 // 2)
        self.sim.script.usage = (worst.input_tokens, 1)
        assert self.proxy is not None
        self.proxy.held, self.proxy.hold = SHAS["SETTLE"].encode(), DELAY_SECONDS
        for index, client in enumerate(studio.clients):
            response, seconds = self.timed_call(client)
            self.assertEqual(response.status_code, 200, f"call {index}: {response.text[:300]}")
            self.assertGreaterEqual(seconds, 0.9 * DELAY_SECONDS, "the answer waited for the settlement")
        self.proxy.held = b""


class StoppedWhileRedisRepliesTests(LiveCityTestCase):
    """SIGTERM right after an answer whose settlement's reply is still on its way: the process ends once it
    came, with the call's own record written."""

    def setUp(self) -> None:
        super().setUp()
        self.sim = OpenAISim().start()
        self.addCleanup(self.sim.stop)
        redis_server = LiveRedis()
        self.addCleanup(redis_server.stop)
        self.proxy = SlowRedisProxy(redis_server.url).start()
        self.addCleanup(self.proxy.stop)
        self.env = {
            "OPENAI_API_KEY": OPENAI_KEY,
            "OPENAI_BASE_URL": self.sim.url + "/v1",
            "REDIS_URL": self.proxy.url,
            "CITY_CHANNEL_LAYER_URL": self.proxy.url,
        }

    def token(self, url: str) -> tuple[str, str]:
        admin = {"Authorization": f"Bearer {self.admin_key}"}
        studio = httpx.post(url + "/v1/studios/create", json={"name": "Acme Games"}, headers=admin, timeout=10).json()
        # Room for more calls than the test makes: no reservation is tight, so no answer waits for Redis's reply.
        plan = httpx.post(
            url + "/v1/studios/plans/create", json={"name": "five at a time", "max_concurrency": 5}, headers=admin, timeout=10
        )
        assign = {"plan_id": plan.json()["id"], "studio_id": studio["id"]}
        self.assertEqual(httpx.post(url + "/v1/studios/plans/assign", json=assign, headers=admin, timeout=10).status_code, 200)
        issued = httpx.post(url + "/v1/studios/tokens/apply", json={"studio_id": studio["id"], "name": "t"}, headers=admin, timeout=10)
        return studio["id"], issued.json()["token"]

    def answer_then_stop(self, url: str, process_stop: Callable[[], None]) -> str:
        studio_id, token = self.token(url)
        headers = {"Authorization": f"Bearer {token}"}
        self.sim.script.usage = (7, 3)
        self.assertEqual(httpx.post(url + "/v1/chat/completions", json=chat_body("Hi", 10), headers=headers, timeout=10).status_code, 200)
        wait_for_records(studio_id, 1)
        self.proxy.reply_delay = DELAY_SECONDS
        response = httpx.post(url + "/v1/chat/completions", json=chat_body("Hi", 10, model=MODEL), headers=headers, timeout=10)
        self.assertEqual(response.status_code, 200, response.text[:300])
        process_stop()
        return studio_id

    def assert_written_by_the_process(self, studio_id: str) -> None:
        # Counted once the process has ended: no other process is there to reap the call.
        records = UsageRecord.objects.filter(studio_id=studio_id)
        self.assertEqual(sorted((r.status, r.cost) for r in records), [(200, price(7, 3))] * 2)

    def test_serve_prod_finishes_the_settlement_before_it_ends(self) -> None:
        city = ServeProd(1, serve_prod_env(**self.env))
        self.addCleanup(city.stop)
        wait_until(lambda: _answers(city.url), timeout=30, message="serve-prod answering")

        def stop() -> None:
            city.process.send_signal(signal.SIGTERM)
            self.assertEqual(city.process.wait(EXIT_SECONDS), 0, city.log())

        self.assert_written_by_the_process(self.answer_then_stop(city.url, stop))
        self.assertNotIn("Traceback", city.log())

    def test_daphne_finishes_the_settlement_before_it_ends(self) -> None:
        city = self.start_city(extra_env=self.env)

        def stop() -> None:
            city.process.send_signal(signal.SIGTERM)
            self.assertIsNotNone(city.process.wait(EXIT_SECONDS))

        self.assert_written_by_the_process(self.answer_then_stop(city.url, stop))
        self.assertNotIn("Traceback", city.log_path.read_text())


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/v1/services", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
