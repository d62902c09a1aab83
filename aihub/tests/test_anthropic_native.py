"""The Anthropic adapter's native Messages calls (messages, messages_stream, count_tokens) against the
Anthropic simulator: the client's body and headers go as they are (cache_control, betas), the answer
and every stream event come back unchanged, failures become UpstreamError."""

import unittest
from typing import Any

import httpx

from aihub.adapters.anthropic import AnthropicAdapter
from aihub.adapters.base import Upstream, UpstreamError
from aihub.tests.upstream.anthropic_sim import AnthropicSim
from aihub.tests.upstream.sim import Reply

KEY = "sk-ant-test-not-a-real-key"
EPHEMERAL = {"type": "ephemeral"}
BETAS = "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14"
HEADERS = {"anthropic-version": "2023-06-01", "anthropic-beta": BETAS, "x-api-key": "the client's City token"}


def cached_body(**extra: Any) -> dict[str, Any]:
    """A request with cache_control on a system block, a tool and a message block, as Claude Code sends one."""
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 64,
        "system": [{"type": "text", "text": "You are a coding agent. " * 50, "cache_control": EPHEMERAL}],
        "tools": [{"name": "read_file", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Read main.py.", "cache_control": EPHEMERAL}]}],
        "metadata": {"user_id": "user_42"},
        **extra,
    }


class NativeMessagesTests(unittest.IsolatedAsyncioTestCase):
    sim: AnthropicSim

    @classmethod
    def setUpClass(cls) -> None:
        cls.sim = AnthropicSim().start()
        cls.addClassCleanup(cls.sim.stop)

    async def asyncSetUp(self) -> None:
        self.sim.reset()
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(2.0))
        self.addAsyncCleanup(self.client.aclose)
        self.adapter = AnthropicAdapter(self.client)
        self.upstream = Upstream(
            provider="anthropic", adapter="anthropic", model="claude-sonnet-4-6-up", base_url=self.sim.url, api_key=KEY
        )

    async def test_a_body_goes_as_it_is_with_the_clients_version_and_betas(self) -> None:
        self.sim.script.usage, self.sim.script.cache_write_tokens, self.sim.script.cached_tokens = (1000, 9), 600, 300
        body = cached_body()
        message = await self.adapter.messages(self.upstream, body, HEADERS)
        sent = self.sim.last_request
        self.assertEqual(sent.path, "/v1/messages")
        self.assertEqual(sent.json, {**body, "model": "claude-sonnet-4-6-up"})  # cache_control and all, unchanged
        self.assertEqual(body["model"], "claude-sonnet-4-6")  # the caller's dict is left alone
        self.assertEqual(sent.headers["anthropic-beta"], BETAS)
        self.assertEqual(sent.headers["anthropic-version"], "2023-06-01")
        self.assertEqual(sent.headers["x-api-key"], KEY)  # the upstream's key, never the client's
        self.assertEqual(message["type"], "message")
        self.assertEqual(message["content"], [{"type": "text", "text": "Hello from the simulator."}])
        usage = message["usage"]
        self.assertEqual(
            (usage["input_tokens"], usage["cache_creation_input_tokens"], usage["cache_read_input_tokens"], usage["output_tokens"]),
            (100, 600, 300, 9),
        )

    async def test_without_client_headers_the_adapters_version_goes(self) -> None:
        await self.adapter.messages(self.upstream, {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}, {})
        self.assertEqual(self.sim.last_request.headers["anthropic-version"], "2023-06-01")
        self.assertNotIn("anthropic-beta", self.sim.last_request.headers)

    async def test_a_stream_yields_every_event_unchanged_ping_included(self) -> None:
        self.sim.script.cache_write_tokens = 4
        events = [e async for e in self.adapter.messages_stream(self.upstream, cached_body(), HEADERS)]
        self.assertEqual(
            [e["type"] for e in events],
            [
                "message_start",
                "content_block_start",
                "ping",
                *["content_block_delta"] * 4,
                "content_block_stop",
                "message_delta",
                "message_stop",
            ],
        )
        self.assertIs(self.sim.last_request.json["stream"], True)
        self.assertEqual(self.sim.last_request.headers["anthropic-beta"], BETAS)
        self.assertEqual(events[0]["message"]["usage"]["cache_creation_input_tokens"], 4)
        self.assertEqual("".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta"), "Hello from the simulator.")
        self.assertEqual(
            events[-2],
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"input_tokens": 7, "cache_creation_input_tokens": 4, "cache_read_input_tokens": 0, "output_tokens": 7},
            },
        )

    async def test_an_error_event_or_a_cut_stream_raises_after_what_arrived(self) -> None:
        for name, setup, status in [
            ("error event", lambda: self.sim.play("stream_error_overloaded"), 503),
            ("cut", lambda: setattr(self.sim, "fail_after_chunks", 3), 502),
        ]:
            with self.subTest(name):
                self.sim.reset()
                setup()
                received: list[dict[str, Any]] = []
                with self.assertRaises(UpstreamError) as caught:
                    async for event in self.adapter.messages_stream(self.upstream, cached_body(), HEADERS):
                        received.append(event)
                self.assertEqual((caught.exception.status, caught.exception.retryable), (status, True))
                self.assertEqual(received[0]["type"], "message_start")
                self.assertNotIn("message_stop", [e["type"] for e in received])

    async def test_http_errors_keep_anthropics_message_and_status(self) -> None:
        with self.assertRaises(UpstreamError) as caught:  # 5 breakpoints: one more than Anthropic takes
            body = cached_body(system=[{"type": "text", "text": f"Part {i}.", "cache_control": EPHEMERAL} for i in range(4)])
            await self.adapter.messages(self.upstream, body, HEADERS)
        self.assertEqual((caught.exception.status, caught.exception.retryable), (400, False))
        self.assertIn("A maximum of 4 blocks with cache_control", caught.exception.message)
        self.assertEqual(caught.exception.error_type, "invalid_request_error")
        self.sim.fail(529)
        with self.assertRaises(UpstreamError) as caught:
            await anext(self.adapter.messages_stream(self.upstream, cached_body(), HEADERS))
        self.assertEqual((caught.exception.status, caught.exception.retryable), (503, True))

    async def test_count_tokens_asks_the_upstream(self) -> None:
        self.sim.script.usage = (1234, 0)
        body = cached_body()
        del body["max_tokens"], body["metadata"]
        self.assertEqual(await self.adapter.count_tokens(self.upstream, body, HEADERS), {"input_tokens": 1234})
        sent = self.sim.last_request
        self.assertEqual(
            (sent.path, sent.json, sent.headers["anthropic-beta"]),
            ("/v1/messages/count_tokens", {**body, "model": "claude-sonnet-4-6-up"}, BETAS),
        )
        with self.assertRaises(UpstreamError) as caught:  # count_tokens takes no max_tokens: Anthropic's 400 comes back
            await self.adapter.count_tokens(self.upstream, cached_body(), HEADERS)
        self.assertEqual(caught.exception.status, 400)
        self.assertIn("max_tokens: Extra inputs are not permitted", caught.exception.message)
        self.sim.handler = lambda request: Reply.json({"tokens": 3})
        with self.assertRaises(UpstreamError) as caught:  # an answer without input_tokens is the upstream's fault
            await self.adapter.count_tokens(self.upstream, body, HEADERS)
        self.assertEqual((caught.exception.status, caught.exception.retryable), (502, True))


class SimulatorCacheControlTests(unittest.TestCase):
    """The simulator takes cache_control only where Anthropic does, so the tests above mean something."""

    def test_cache_control_where_anthropic_takes_it(self) -> None:
        signed = {"type": "thinking", "thinking": "Hmm.", "signature": "x", "cache_control": EPHEMERAL}
        cases = [
            (200, cached_body()),
            (400, cached_body(system=[{"type": "text", "text": "Hi", "cache_control": {"type": "persistent"}}])),
            (400, cached_body(system=[{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral", "ttl": "2h"}}])),
            (
                400,
                cached_body(
                    messages=[
                        {"role": "user", "content": "Hi"},
                        {"role": "assistant", "content": [signed, {"type": "text", "text": "Hello"}]},
                        {"role": "user", "content": "Go on"},
                    ]
                ),
            ),
        ]
        with AnthropicSim() as sim:
            for status, body in cases:
                response = httpx.post(f"{sim.url}/v1/messages", json=body, headers={"x-api-key": "k", "anthropic-version": "2023-06-01"})
                self.assertEqual(response.status_code, status, response.text)
                if status == 400:
                    self.assertIn("cache_control", response.json()["error"]["message"])
