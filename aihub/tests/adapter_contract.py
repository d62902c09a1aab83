"""The contract every provider adapter keeps, as a test mixin run against that provider's simulator.

A provider's test class inherits `AdapterContract` and `unittest.IsolatedAsyncioTestCase` and names
its simulator, adapter and provider; the hooks at the top say how to read its wire format back
(what model, key, system prompt and user text the upstream received). Every test drives the
simulator through the shared `sim.script` and switches, and checks only OpenAI shapes coming out.
"""

import json
import unittest
from typing import TYPE_CHECKING, Any

import httpx
from openai.types.chat import ChatCompletionFunctionToolParam

from aihub.adapters.base import Adapter, Upstream, UpstreamError
from aihub.tests.openai_schema import validate
from aihub.tests.upstream.sim import Received, SimServer

API_KEY = "sk-test-not-a-real-key"
WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
# A 1x1 PNG, as a data URL (the form every provider can take inline).
PIXEL_PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

if TYPE_CHECKING:
    # The mixin is only ever mixed into an IsolatedAsyncioTestCase: type-check it as one.
    _MixinBase = unittest.IsolatedAsyncioTestCase
else:
    _MixinBase = object


class AdapterContract(_MixinBase):
    simulator_class: type[SimServer]
    adapter_class: type[Adapter]
    provider = "sim"
    adapter_name = "openai"
    upstream_model = "sim-model-1"
    base_path = ""  # appended to sim.url to make the deployment's base URL
    read_timeout_seconds = 0.5  # the test client's read timeout (the stall tests exceed it)
    transport_class: type[httpx.AsyncBaseTransport] | None = None  # None: httpx's own

    # Set by asyncSetUp, for every test.
    sim: SimServer
    client: httpx.AsyncClient
    adapter: Adapter
    upstream: Upstream

    # --- hooks: read the provider's wire format back ----------------------------------------------

    def sent_model(self, received: Received) -> str:
        return received.json["model"]

    def sent_key(self, received: Received) -> str | None:
        auth = received.headers.get("authorization", "")
        return auth.removeprefix("Bearer ") or None

    def sent_system(self, received: Received) -> str | None:
        """The system prompt as the upstream received it."""
        systems = [m["content"] for m in received.json["messages"] if m["role"] == "system"]
        return systems[0] if systems else None

    def sent_user_texts(self, received: Received) -> list[str]:
        texts = []
        for message in received.json["messages"]:
            if message["role"] == "user":
                content = message["content"]
                texts.extend([content] if isinstance(content, str) else [p["text"] for p in content if p.get("type") == "text"])
        return texts

    def sent_image_count(self, received: Received) -> int:
        return sum(
            1 for m in received.json["messages"] if isinstance(m["content"], list) for p in m["content"] if p.get("type") == "image_url"
        )

    def sent_max_tokens(self, received: Received) -> int | None:
        return received.json.get("max_tokens")

    # --- fixtures -----------------------------------------------------------------------------------

    async def asyncSetUp(self) -> None:
        self.sim = self.simulator_class().start()
        self.addCleanup(self.sim.stop)
        self.client = self.make_client(self.sim.url + self.base_path, httpx.Timeout(2.0, read=self.read_timeout_seconds))
        self.adapter = self.adapter_class(self.client)
        self.upstream = Upstream(
            provider=self.provider,
            adapter=self.adapter_name,
            model=self.upstream_model,
            base_url=self.sim.url + self.base_path,
            api_key=API_KEY,
        )

    def make_client(self, base_url: str, timeout: httpx.Timeout) -> httpx.AsyncClient:
        transport = self.transport_class() if self.transport_class else None
        return httpx.AsyncClient(timeout=timeout, transport=transport)

    async def asyncTearDown(self) -> None:
        await self.client.aclose()

    def chat_body(self, **extra: Any) -> dict[str, Any]:
        return {
            "model": "city-model-id",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}],
            "max_tokens": 50,
            **extra,
        }

    async def collect(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return [chunk async for chunk in self.adapter.chat_stream(self.upstream, body)]

    async def expect_error(self, coroutine: Any) -> UpstreamError:
        try:
            await coroutine
        except UpstreamError as exc:
            return exc
        raise AssertionError("expected an UpstreamError")

    async def assert_refused_before_sending(self, cases: list[tuple[dict[str, Any], str]]) -> None:
        """Each chat body extra is a 400 naming its param, and nothing reaches the upstream."""
        for extra, param in cases:
            error = await self.expect_error(self.adapter.chat(self.upstream, self.chat_body(**extra)))
            self.assertEqual((error.status, error.param, error.retryable), (400, param, False), extra)
        self.assertEqual(self.sim.requests, [])

    # --- chat -------------------------------------------------------------------------------------

    async def test_chat_answers_in_the_openai_shape(self) -> None:
        answer = await self.adapter.chat(self.upstream, self.chat_body())
        validate(answer, "CreateChatCompletionResponse")
        choice = answer["choices"][0]
        self.assertEqual(choice["message"]["role"], "assistant")
        self.assertEqual(choice["message"]["content"], self.sim.script.text)
        self.assertEqual(choice["finish_reason"], "stop")
        self.assertEqual(answer["usage"]["prompt_tokens"], 11)
        self.assertEqual(answer["usage"]["completion_tokens"], 7)
        self.assertEqual(answer["usage"]["total_tokens"], 18)

    async def test_chat_sends_model_key_system_prompt_and_limits_upstream(self) -> None:
        await self.adapter.chat(self.upstream, self.chat_body())
        received = self.sim.last_request
        self.assertEqual(self.sent_model(received), self.upstream_model)
        self.assertEqual(self.sent_key(received), API_KEY)
        self.assertEqual(self.sent_system(received), "Be brief.")
        self.assertEqual(self.sent_user_texts(received), ["Hi there"])
        self.assertEqual(self.sent_max_tokens(received), 50)

    async def test_chat_sends_images(self) -> None:
        body = self.chat_body()
        body["messages"][1]["content"] = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": PIXEL_PNG}}]
        await self.adapter.chat(self.upstream, body)
        self.assertEqual(self.sent_user_texts(self.sim.last_request), ["What is this?"])
        self.assertEqual(self.sent_image_count(self.sim.last_request), 1)

    async def test_a_length_stop_is_reported_as_length(self) -> None:
        self.sim.script.finish = "length"
        answer = await self.adapter.chat(self.upstream, self.chat_body())
        self.assertEqual(answer["choices"][0]["finish_reason"], "length")

    async def test_chat_returns_tool_calls(self) -> None:
        self.sim.script.tool_call = ("get_weather", {"city": "Paris"})
        answer = await self.adapter.chat(self.upstream, self.chat_body(tools=[WEATHER_TOOL]))
        validate(answer, "CreateChatCompletionResponse")
        choice = answer["choices"][0]
        self.assertEqual(choice["finish_reason"], "tool_calls")
        call = choice["message"]["tool_calls"][0]
        self.assertEqual(call["type"], "function")
        self.assertTrue(call["id"])
        self.assertEqual(call["function"]["name"], "get_weather")
        self.assertEqual(json.loads(call["function"]["arguments"]), {"city": "Paris"})

    # --- streams ----------------------------------------------------------------------------------

    async def test_stream_yields_text_deltas_then_usage_alone(self) -> None:
        chunks = await self.collect(self.chat_body(stream=True))
        for chunk in chunks:
            validate(chunk, "CreateChatCompletionStreamResponse")
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        self.assertEqual(text, self.sim.script.text)
        self.assertGreaterEqual(sum(1 for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")), 2)
        finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0].get("finish_reason")]
        self.assertEqual(finishes, ["stop"])
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual((chunks[-1]["usage"]["prompt_tokens"], chunks[-1]["usage"]["completion_tokens"]), (11, 7))
        self.assertTrue(all("usage" not in c or c["usage"] is None for c in chunks[:-1]))

    async def test_stream_without_upstream_usage_ends_without_a_usage_chunk(self) -> None:
        self.sim.script.usage = None
        chunks = await self.collect(self.chat_body(stream=True))
        self.assertTrue(all(c["choices"] for c in chunks))
        self.assertFalse(any(c.get("usage") for c in chunks))

    async def test_stream_assembles_tool_calls(self) -> None:
        self.sim.script.tool_call = ("get_weather", {"city": "Paris"})
        chunks = await self.collect(self.chat_body(stream=True, tools=[WEATHER_TOOL]))
        name, arguments, ids = "", "", set()
        for chunk in chunks:
            validate(chunk, "CreateChatCompletionStreamResponse")
            for choice in chunk["choices"]:
                for call in choice["delta"].get("tool_calls") or []:
                    self.assertEqual(call["index"], 0)
                    ids.add(call.get("id"))
                    name += call.get("function", {}).get("name") or ""
                    arguments += call.get("function", {}).get("arguments") or ""
        self.assertEqual(name, "get_weather")
        self.assertEqual(json.loads(arguments), {"city": "Paris"})
        self.assertEqual(len(ids - {None}), 1)
        finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0].get("finish_reason")]
        self.assertEqual(finishes, ["tool_calls"])

    async def test_closing_a_stream_early_cancels_the_upstream_request(self) -> None:
        self.sim.chunk_delay_seconds = 0.3
        stream = self.adapter.chat_stream(self.upstream, self.chat_body(stream=True))
        await stream.__anext__()
        await stream.aclose()
        self.assertTrue(self.sim.wait_for_cancellation(2.0), "the simulator did not see the client leave")

    async def test_a_stream_broken_midway_raises_a_retryable_502(self) -> None:
        self.sim.fail_after_chunks = 2
        received: list[dict[str, Any]] = []
        with self.assertRaises(UpstreamError) as caught:
            async for chunk in self.adapter.chat_stream(self.upstream, self.chat_body(stream=True)):
                received.append(chunk)
        self.assertEqual(caught.exception.status, 502)
        self.assertLess(len(received), 4)

    async def test_a_stream_that_stalls_raises_504(self) -> None:
        self.sim.stall_seconds = self.read_timeout_seconds * 4
        self.sim.stall_after_chunks = 2
        with self.assertRaises(UpstreamError) as caught:
            await self.collect(self.chat_body(stream=True))
        self.assertEqual(caught.exception.status, 504)

    async def test_a_stream_refused_up_front_raises_the_upstream_error(self) -> None:
        self.sim.fail(400, message="max_tokens is too large for this model")
        error = await self.expect_error(self.collect(self.chat_body(stream=True)))
        self.assertEqual(error.status, 400)
        self.assertIn("max_tokens is too large", error.message)
        self.assertFalse(error.retryable)

    # --- errors -----------------------------------------------------------------------------------

    async def test_an_upstream_4xx_keeps_its_status_and_message(self) -> None:
        self.sim.fail(400, message="messages: roles must alternate")
        error = await self.expect_error(self.adapter.chat(self.upstream, self.chat_body()))
        self.assertEqual(error.status, 400)
        self.assertIn("roles must alternate", error.message)
        self.assertFalse(error.retryable)

    async def test_an_upstream_401_is_passed_on(self) -> None:
        self.sim.fail(401, message="invalid x-api-key")
        error = await self.expect_error(self.adapter.chat(self.upstream, self.chat_body()))
        self.assertEqual(error.status, 401)
        self.assertIn("invalid x-api-key", error.message)

    async def test_an_upstream_429_is_passed_on_and_retryable(self) -> None:
        self.sim.fail(429, message="rate limit reached")
        error = await self.expect_error(self.adapter.chat(self.upstream, self.chat_body()))
        self.assertEqual((error.status, error.retryable), (429, True))

    async def test_an_upstream_500_becomes_a_retryable_502(self) -> None:
        self.sim.fail(500, message="internal failure")
        error = await self.expect_error(self.adapter.chat(self.upstream, self.chat_body()))
        self.assertEqual((error.status, error.retryable), (502, True))

    async def test_an_upstream_503_becomes_a_retryable_503(self) -> None:
        self.sim.fail(503, message="overloaded")
        error = await self.expect_error(self.adapter.chat(self.upstream, self.chat_body()))
        self.assertEqual((error.status, error.retryable), (503, True))

    async def test_an_upstream_that_does_not_answer_in_time_raises_504(self) -> None:
        self.sim.stall_seconds = self.read_timeout_seconds * 4
        error = await self.expect_error(self.adapter.chat(self.upstream, self.chat_body()))
        self.assertEqual((error.status, error.retryable), (504, True))

    async def test_an_unreachable_upstream_raises_a_retryable_502(self) -> None:
        from city.livecity import free_port

        upstream = Upstream(
            provider=self.provider,
            adapter=self.adapter_name,
            model=self.upstream_model,
            base_url=f"http://127.0.0.1:{free_port()}{self.base_path}",
            api_key=API_KEY,
        )
        error = await self.expect_error(self.adapter.chat(upstream, self.chat_body()))
        self.assertEqual((error.status, error.retryable), (502, True))
