"""Real City processes for the plan tests (budgets, rate limits, concurrency), with the OpenAI-compatible
upstream simulated on loopback.

`PlanCitiesTestCase` starts two City processes for a whole class (A under Daphne, B under uvicorn),
sharing the test database and one Redis: CI's `REDIS_URL` when the run has one, else a redis-server of
the class's own (city/liveredis.py). `EmbeddedCityTestCase` starts one process with no Redis at all
(embedded mode: counters in the process, rebuilt from the database at start). The simulator is the
class's too, named to City in the process environment (so it outlives the database flush between
tests); each test resets it and gets a fresh studio, plan and token.
"""

import asyncio
import os
import re
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.db.models import Sum

from aihub.models import COST_UNITS_PER_USD, UsageRecord
from aihub.tests.upstream.openai_sim import OpenAISim
from city.livecity import LiveCity, LiveCityTestCase
from city.liveredis import LiveRedis
from city.waiting import wait_until

OPENAI_KEY = "sk-test-openai-not-real"
# gpt-5.4 costs $2.50 and $15.00 per million tokens: 2.5 and 15 micro-USD a token, so a call with an
# even number of input tokens costs a whole number of micro-dollars, exactly its reservation.
MODEL = "gpt-5.4"
MICRO_USD = COST_UNITS_PER_USD // 1_000_000  # record cost units (1e-12 USD) per micro-USD
# OpenAI's reset durations: "1s", "6m0s", "12ms", "1m30.5s", "0s".
DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?s)?$|^\d+(\.\d+)?ms$|^0s$")
RATE_HEADERS = ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests")
TOKEN_HEADERS = ("x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens")
# Bounds of every wait in these tests (the machine may be loaded; nothing here is a timed assertion).
RECORDS_WAIT_SECONDS = 15.0
REQUEST_TIMEOUT_SECONDS = 30.0


def dollars(micro_usd: int) -> float:
    """Micro-USD as the plan API takes money: dollars, as a JSON number."""
    return micro_usd / 1_000_000


@dataclass
class PlannedStudio:
    """A studio with a plan (on the studio, or on its token), a token, and clients on each City."""

    studio_id: str
    token: str
    token_id: str
    plan: dict[str, Any]
    clients: list[httpx.Client]  # one per City process, authorized with the token


def chat_body(prompt: str, max_tokens: int, *, stream: bool = False, model: str = MODEL) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return body


def worst_case(body: dict[str, Any]) -> Any:
    """City's own worst case for a chat body (aihub.estimate), the reservation it will make."""
    from aihub.catalog import models_by_id
    from aihub.estimate import worst_chat

    return worst_chat(models_by_id()[body["model"]], body)


def exact_prompt(max_tokens: int) -> tuple[dict[str, Any], Any]:
    """A chat body whose worst case is a whole number of micro-dollars (an even count of input
    tokens at gpt-5.4's price), and that worst case: a call reporting it costs exactly its reservation."""
    for words in range(1, 40):
        body = chat_body("Say hello" + " again" * words + ".", max_tokens)
        worst = worst_case(body)
        if worst.input_tokens % 2 == 0:
            return body, worst
    raise AssertionError("no prompt with an even input-token count in 40 tries")


def record_cost(worst: Any, completion_tokens: int | None = None) -> int:
    """What a call reporting the worst case's input (and `completion_tokens`, default the cap) costs, 1e-12 USD."""
    from aihub.catalog import models_by_id

    model = models_by_id()[MODEL]
    completion = worst.output_tokens if completion_tokens is None else completion_tokens
    return worst.input_tokens * model.input_price + completion * model.output_price


def price(prompt_tokens: int, completion_tokens: int, model: str = MODEL) -> int:
    """A call's cost at the catalog's prices, 1e-12 USD."""
    from aihub.catalog import models_by_id

    found = models_by_id()[model]
    return prompt_tokens * found.input_price + completion_tokens * found.output_price


def records(studio_id: str) -> list[UsageRecord]:
    return list(UsageRecord.objects.filter(studio_id=studio_id).order_by("id"))


def wait_for_records(studio_id: str, count: int, timeout: float = RECORDS_WAIT_SECONDS) -> list[UsageRecord]:
    """The studio's usage records once there are `count` of them (the writer flushes every 0.2 s)."""
    wait_until(
        lambda: UsageRecord.objects.filter(studio_id=studio_id).count() >= count,
        timeout,
        message=f"{count} usage records of {studio_id} (have {UsageRecord.objects.filter(studio_id=studio_id).count()})",
    )
    return records(studio_id)


def recorded_cost(studio_id: str) -> int:
    return UsageRecord.objects.filter(studio_id=studio_id).aggregate(total=Sum("cost"))["total"] or 0


def error_of(response: httpx.Response) -> dict[str, Any]:
    return response.json()["error"]


def sse_data(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


async def _burst(urls: Sequence[str], token: str, body: dict[str, Any], count: int) -> list[httpx.Response]:
    """`count` requests at once, spread over the City processes in turn; each read to its end."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    clients = [
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=REQUEST_TIMEOUT_SECONDS, limits=limits)
        for url in urls
    ]
    try:
        return list(await asyncio.gather(*(clients[i % len(clients)].post("/v1/chat/completions", json=body) for i in range(count))))
    finally:
        for client in clients:
            await client.aclose()


def burst(urls: Sequence[str], token: str, body: dict[str, Any], count: int) -> list[httpx.Response]:
    return asyncio.run(_burst(urls, token, body, count))


@dataclass
class Processes:
    """The processes a test class runs against: City processes, the simulator, perhaps a redis-server."""

    cities: list[LiveCity]
    sim: OpenAISim
    redis: LiveRedis | None = None

    def stop(self) -> None:
        for city in self.cities:
            city.stop()
        self.sim.stop()
        if self.redis is not None:
            self.redis.stop()


# Two City processes shared by every class that does not stop or kill them (starting them costs
# seconds); a test module that uses them stops them in its tearDownModule (stop_shared_processes).
_shared: Processes | None = None


def stop_shared_processes() -> None:
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None


class _PlanLiveBase(LiveCityTestCase):
    """What both cases share: the simulator, the admin, a studio with a plan per test."""

    processes: Processes

    @property
    def cities(self) -> list[LiveCity]:
        return self.processes.cities

    @property
    def sim(self) -> OpenAISim:
        return self.processes.sim

    def setUp(self) -> None:
        super().setUp()
        self.sim.reset()
        self.admin = httpx.Client(base_url=self.cities[0].url, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=10)
        self.addCleanup(self.admin.close)

    @property
    def urls(self) -> list[str]:
        return [city.url for city in self.cities]

    def ok(self, response: httpx.Response) -> Any:
        self.assertEqual(response.status_code, 200, response.text[:500])
        return response.json()

    def planned_studio(self, *, on_token: bool = False, **limits: Any) -> PlannedStudio:
        """A new studio and a plan with `limits` (plan API fields; money in dollars), assigned to the
        studio (or, `on_token`, to its token, at issue) before the token is first used, so that no
        process has a cached view without it."""
        studio = self.ok(self.admin.post("/v1/studios/create", json={"name": "Planned"}))
        plan = self.ok(self.admin.post("/v1/studios/plans/create", json={"name": f"plan for {studio['id']}", **limits}))
        apply: dict[str, Any] = {"studio_id": studio["id"], "name": "game server"}
        if on_token:
            apply["plan_id"] = plan["id"]
        else:
            self.ok(self.admin.post("/v1/studios/plans/assign", json={"plan_id": plan["id"], "studio_id": studio["id"]}))
        issued = self.ok(self.admin.post("/v1/studios/tokens/apply", json=apply))
        clients = []
        for url in self.urls:
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {issued['token']}"}, timeout=REQUEST_TIMEOUT_SECONDS)
            self.addCleanup(client.close)
            clients.append(client)
        return PlannedStudio(studio["id"], issued["token"], issued["id"], plan, clients)

    def assert_rate_headers(self, response: httpx.Response, *, rpm: int | None = None, tpm: int | None = None) -> None:
        """OpenAI's x-ratelimit-* set, as OpenAI writes it: integers and duration strings."""
        if rpm is not None:
            for name in RATE_HEADERS:
                self.assertIn(name, response.headers, f"{response.status_code} answer without {name}")
            self.assertEqual(response.headers["x-ratelimit-limit-requests"], str(rpm))
            self.assertLessEqual(int(response.headers["x-ratelimit-remaining-requests"]), rpm)
            self.assertRegex(response.headers["x-ratelimit-reset-requests"], DURATION)
        if tpm is not None:
            for name in TOKEN_HEADERS:
                self.assertIn(name, response.headers, f"{response.status_code} answer without {name}")
            self.assertEqual(response.headers["x-ratelimit-limit-tokens"], str(tpm))
            self.assertLessEqual(int(response.headers["x-ratelimit-remaining-tokens"]), tpm)
            self.assertRegex(response.headers["x-ratelimit-reset-tokens"], DURATION)

    def kill_with_calls_in_flight(
        self, index: int, studio: PlannedStudio, stream_body: dict[str, Any], call_body: dict[str, Any], *, streams: int, answered: int
    ) -> None:
        """kill -9 of City process `index` while `streams` streams are stalled mid-way upstream and just
        after `answered` calls were answered (their records most likely still in the writer's queue),
        then a new process in its place (the same env, the same database)."""
        victim = self.cities[index]
        self.sim.script.stream_pieces = 8
        self.sim.stall_after_chunks, self.sim.stall_seconds = 3, 60.0

        def stream_until_cut() -> None:
            try:
                with httpx.Client(timeout=60) as client:
                    headers = {"Authorization": f"Bearer {studio.token}"}
                    with client.stream("POST", victim.url + "/v1/chat/completions", json=stream_body, headers=headers) as response:
                        for _ in response.iter_lines():
                            pass
            except httpx.HTTPError:
                pass  # the process died under it

        threads = [threading.Thread(target=stream_until_cut) for _ in range(streams)]
        for thread in threads:
            thread.start()
        self.assertTrue(self.sim.wait_for_in_flight(streams, 20), f"{streams} streams mid-way upstream")
        replies = burst([victim.url], studio.token, call_body, answered)
        os.kill(victim.process.pid, signal.SIGKILL)  # at once, before the writer's next flush (0.2 s)
        victim.process.wait(10)
        victim.stop()
        self.assertEqual([r.status_code for r in replies], [200] * answered)
        for thread in threads:
            thread.join(30)
        self.assertEqual(len(self.sim.requests), streams + answered)
        self.cities[index] = LiveCity(extra_env=self.env())
        if index == 0:
            self.admin.base_url = httpx.URL(self.cities[0].url)

    @classmethod
    def env(cls) -> dict[str, str]:
        raise NotImplementedError

    def assert_billed_after_crash(
        self, studio: PlannedStudio, stream_body: dict[str, Any], *, streams: int, answered: int, timeout: float
    ) -> list[UsageRecord]:
        """One record per call that reached the upstream: the answered ones as answered, the streams
        cut by the crash as interrupted, at the worst case (the model may have run to its cap)."""
        reached = streams + answered
        try:
            found = wait_for_records(studio.studio_id, reached, timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}: after the crash and a new process, with no AI call since, the calls of the dead process are not billed"
            ) from None
        self.assertEqual(len(found), reached, "one record per call that reached the upstream, no more")
        self.assertEqual(len({r.call_id for r in found}), reached)
        interrupted = [r for r in found if r.error_code == "interrupted"]
        self.assertEqual(
            (len([r for r in found if r.status == 200]), len(interrupted)), (answered, streams), [(r.status, r.error_code) for r in found]
        )
        worst = worst_case(stream_body)
        for record in interrupted:
            self.assertEqual((record.prompt_tokens, record.completion_tokens), (worst.input_tokens, worst.output_tokens))
            self.assertEqual(record.cost, price(worst.input_tokens, worst.output_tokens))
            self.assertTrue(record.usage_estimated)
        return found

    def assert_retry_after(self, response: httpx.Response) -> None:
        self.assertGreaterEqual(int(response.headers["retry-after"]), 1, "Retry-After is whole seconds, rounded up")
        self.assertGreaterEqual(int(response.headers["retry-after-ms"]), 0)
        self.assertLessEqual(int(response.headers["retry-after-ms"]), 1000 * int(response.headers["retry-after"]))


class PlanCitiesTestCase(_PlanLiveBase):
    """Two City processes sharing the test database and one Redis (see the module docstring): the
    module's shared pair, or, for a class that kills a process or stops Redis (`own = True`), its own,
    with a redis-server of its own."""

    own = False

    @classmethod
    def setUpClass(cls) -> None:
        global _shared
        super().setUpClass()
        if not cls.own and _shared is not None:
            cls.processes = _shared
            return
        redis = LiveRedis() if cls.own or not settings.REDIS_URL else None
        cls.processes = Processes([], OpenAISim().start(), redis)
        try:
            cls.processes.cities.extend(LiveCity.many({"extra_env": cls.env()}, {"extra_env": cls.env(), "server": "uvicorn"}))
        except BaseException:
            cls.processes.stop()
            super().tearDownClass()
            raise
        if not cls.own:
            _shared = cls.processes

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.own:
            cls.processes.stop()
        super().tearDownClass()

    @classmethod
    def env(cls) -> dict[str, str]:
        """What every City process gets: the simulator and the Redis."""
        return {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": cls.processes.sim.url + "/v1", "REDIS_URL": cls.redis_url()}

    @classmethod
    def redis_url(cls) -> str:
        return cls.processes.redis.url if cls.processes.redis is not None else settings.REDIS_URL

    @property
    def redis(self) -> LiveRedis | None:
        return self.processes.redis


class EmbeddedCityTestCase(_PlanLiveBase):
    """One City process with no Redis: limits and budgets counted in the process."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.processes = Processes([], OpenAISim().start())
        try:
            cls.processes.cities.append(LiveCity(extra_env=cls.env()))
        except BaseException:
            cls.processes.stop()
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.processes.stop()
        super().tearDownClass()

    @classmethod
    def env(cls) -> dict[str, str]:
        sim_url = cls.processes.sim.url
        return {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": sim_url + "/v1", "REDIS_URL": "", "CITY_CHANNEL_LAYER_URL": ""}

    def restart(self) -> str:
        """Stop the process (SIGTERM: it flushes its usage records) and start a new one on the same
        database; its URL."""
        self.cities[0].stop()
        self.cities[0] = LiveCity(extra_env=self.env())
        self.admin.base_url = httpx.URL(self.cities[0].url)
        return self.cities[0].url
