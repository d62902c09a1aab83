"""Through a live City: `POST /v1/messages/count_tokens` with the official anthropic SDK (the City token
in x-api-key) on each kind of upstream, and prompt-cache tokens metered at the catalog's cache prices."""

from typing import Any

import anthropic
import openai

from aihub import estimate
from aihub.catalog import models_by_id
from aihub.models import UsageRecord
from aihub.tests.live import AllProtocolsTestCase
from aihub.tests.live_plans import wait_for_records

EPHEMERAL = {"type": "ephemeral"}
BETAS = "prompt-caching-2024-07-31,token-counting-2024-11-01"
SYSTEM: Any = [{"type": "text", "text": "You are a careful coding agent. " * 20, "cache_control": EPHEMERAL}]
TOOLS: Any = [
    {"name": "read_file", "description": "Read a file.", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}
]
MESSAGES: Any = [{"role": "user", "content": [{"type": "text", "text": "Read main.py and explain it.", "cache_control": EPHEMERAL}]}]


class CountTokensAndCacheTests(AllProtocolsTestCase):
    def anthropic_sdk(self) -> anthropic.Anthropic:
        client = anthropic.Anthropic(base_url=self.city.url, api_key=self.token, max_retries=0, timeout=10)
        self.addCleanup(client.close)
        return client

    def records(self, count: int) -> list[UsageRecord]:
        return wait_for_records(self.studio["id"], count)

    def test_count_tokens_on_every_kind_of_upstream_through_the_plan_and_free(self) -> None:
        plan = self.ok(
            self.admin.post("/v1/studios/plans/create", json={"name": "no gpt", "models": ["claude-*", "deepseek-*", "gemini-*"]})
        )
        self.ok(self.admin.post("/v1/studios/plans/assign", json={"plan_id": plan["id"], "studio_id": self.studio["id"]}))
        client = self.anthropic_sdk()
        self.anthropic.script.usage = (321, 0)
        counted = client.messages.count_tokens(
            model="claude-sonnet-4-6", system=SYSTEM, tools=TOOLS, messages=MESSAGES, extra_headers={"anthropic-beta": BETAS}
        )
        self.assertEqual(counted.input_tokens, 321)  # Anthropic's own count
        sent = self.anthropic.last_request
        self.assertEqual(sent.path, "/v1/messages/count_tokens")
        # The request as the client sent it (cache_control unchanged), the client's beta, the upstream's key.
        self.assertEqual(sent.json, {"model": "claude-sonnet-4-6", "system": SYSTEM, "tools": TOOLS, "messages": MESSAGES})
        self.assertEqual(
            (sent.headers["anthropic-version"], sent.headers["anthropic-beta"], sent.headers["x-api-key"]),
            (anthropic._constants.ANTHROPIC_API_VERSION, BETAS, "test-anthropic-key-not-real"),
        )
        # Claude Code's way: the beta client, `?beta=true` and the betas as a header.
        beta = client.beta.messages.count_tokens(model="claude-sonnet-4-6", messages=MESSAGES, betas=["context-management-2025-06-27"])
        self.assertEqual(beta.input_tokens, 321)
        self.assertEqual((self.anthropic.last_request.path, self.anthropic.last_request.query), ("/v1/messages/count_tokens", {}))
        self.assertIn("context-management-2025-06-27", self.anthropic.last_request.headers["anthropic-beta"].split(","))
        body = {"system": SYSTEM, "tools": TOOLS, "messages": MESSAGES}
        for model in ("deepseek-v4-flash", "gemini-2.5-flash"):
            with self.subTest(model):  # City's own count: the input the reservation counts
                counted = client.messages.count_tokens(model=model, **body)
                self.assertEqual(counted.input_tokens, estimate.worst_messages(models_by_id()[model], body).input_tokens)
        self.assertEqual((self.sim.requests, self.gemini.requests), ([], []))
        # Anthropic unreachable: City's count rather than an error.
        self.anthropic.fail(529)
        counted = client.messages.count_tokens(model="claude-sonnet-4-6", **body)
        self.assertEqual(counted.input_tokens, estimate.worst_messages(models_by_id()["claude-sonnet-4-6"], body).input_tokens)
        self.anthropic.reset()
        # Anthropic's refusal reaches the client in Anthropic's words; the plan's checks apply.
        too_many: Any = [{"type": "text", "text": f"Rule {i}.", "cache_control": EPHEMERAL} for i in range(5)]
        with self.assertRaises(anthropic.BadRequestError) as refused:
            client.messages.count_tokens(model="claude-sonnet-4-6", system=too_many, messages=MESSAGES)
        self.assertIn("A maximum of 4 blocks with cache_control", refused.exception.message)
        with self.assertRaises(anthropic.NotFoundError):
            client.messages.count_tokens(model="no-such-model", messages=MESSAGES)
        with self.assertRaises(anthropic.PermissionDeniedError) as denied:
            client.messages.count_tokens(model="gpt-4.1", messages=MESSAGES)
        self.assertIn("not in your plan", denied.exception.message)
        # Counting leaves no usage record: the one call below is the studio's only record.
        self.ok(
            self.user.post("/v1/chat/completions", json={"model": "deepseek-v4-flash", "messages": [{"role": "user", "content": "Hi"}]})
        )
        self.assertEqual([r.route for r in self.records(1)], ["chat/completions"])

    def test_cache_reads_and_writes_are_metered_at_the_cache_prices(self) -> None:
        script = self.anthropic.script
        script.usage, script.cached_tokens, script.cache_write_tokens, script.cache_write_1h_tokens = (10_000, 100), 6_000, 3_000, 1_000
        haiku = models_by_id()["claude-haiku-4-5"]
        assert haiku.cache_read_price is not None and haiku.cache_write_price is not None and haiku.cache_write_1h_price is not None
        expected = (
            1_000 * haiku.input_price
            + 6_000 * haiku.cache_read_price
            + 2_000 * haiku.cache_write_price
            + 1_000 * haiku.cache_write_1h_price
            + 100 * haiku.output_price
        )
        sdk = openai.OpenAI(base_url=self.city.url + "/v1", api_key=self.token, max_retries=0, timeout=10)
        self.addCleanup(sdk.close)
        messages: Any = [{"role": "user", "content": "Hi"}]
        answer = sdk.chat.completions.create(model="claude-haiku-4-5", messages=messages, max_tokens=200)
        assert answer.usage is not None and answer.usage.prompt_tokens_details is not None
        self.assertEqual((answer.usage.prompt_tokens, answer.usage.prompt_tokens_details.cached_tokens), (10_000, 6_000))
        with sdk.chat.completions.create(model="claude-haiku-4-5", messages=messages, max_tokens=200, stream=True) as stream:
            self.assertIn("Hello", "".join(c.choices[0].delta.content or "" for c in stream if c.choices))
        for record in self.records(2):
            with self.subTest(streamed=record.streamed):
                self.assertEqual(
                    (record.prompt_tokens, record.cached_tokens, record.cache_write_tokens, record.completion_tokens),
                    (10_000, 6_000, 3_000, 100),
                )
                self.assertEqual(record.cost, expected)  # exact, in 1e-12 USD
        logged = self.ok(self.user.get("/v1/ai/logs"))["items"]
        self.assertEqual([(r["cached_tokens"], r["cache_write_tokens"]) for r in logged], [(6_000, 3_000)] * 2)

    def test_native_messages_meter_hour_long_writes_and_reserve_at_the_write_price(self) -> None:
        body: Any = {"model": "claude-sonnet-4-6", "max_tokens": 300, "system": SYSTEM, "messages": MESSAGES}
        sonnet = models_by_id()["claude-sonnet-4-6"]
        assert sonnet.cache_read_price and sonnet.cache_write_price and sonnet.cache_write_1h_price
        client = self.anthropic_sdk()
        # Writes kept an hour are billed at their own price, exactly.
        script = self.anthropic.script
        script.usage, script.cached_tokens, script.cache_write_tokens, script.cache_write_1h_tokens = (5_000, 20), 1_000, 4_000, 3_000
        hour = {**body, "system": [{"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}
        client.messages.create(**hour)
        with client.messages.stream(**hour) as stream:
            stream.until_done()
        self.assertEqual(self.anthropic.last_request.json["system"], hour["system"])
        expected = (
            1_000 * sonnet.cache_read_price
            + 1_000 * sonnet.cache_write_price
            + 3_000 * sonnet.cache_write_1h_price
            + 20 * sonnet.output_price
        )
        records = self.records(2)
        self.assertEqual([(r.streamed, r.cache_write_tokens, r.cost) for r in records], [(False, 4_000, expected), (True, 4_000, expected)])
        # A per-request cap between two worst cases: the request asking for caching is refused, as its
        # whole input may be written to the cache at 1.25x input; the same request without it passes.
        uncached = {
            **body,
            "system": [{"type": "text", "text": SYSTEM[0]["text"]}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": MESSAGES[0]["content"][0]["text"]}]}],
        }
        cached_cost, uncached_cost = estimate.worst_messages(sonnet, body).cost, estimate.worst_messages(sonnet, uncached).cost
        self.assertLess(uncached_cost + 100, cached_cost)
        plan = self.ok(
            self.admin.post(
                "/v1/studios/plans/create", json={"name": "capped", "max_cost_per_request": (uncached_cost + cached_cost) / 2_000_000}
            )
        )
        self.ok(self.admin.post("/v1/studios/plans/assign", json={"plan_id": plan["id"], "studio_id": self.studio["id"]}))
        self.anthropic.reset()
        with self.assertRaises(anthropic.APIStatusError) as refused:
            client.messages.create(**body)
        self.assertEqual(refused.exception.status_code, 402)
        self.assertEqual(self.anthropic.requests, [])
        client.messages.create(**uncached)
