"""OpenAI's Responses API passed through by the OpenAI-compatible adapter, against the OpenAI
simulator's /responses: the body as the client sent it, events in order to the terminal one, and
failures as UpstreamError (the stream's `error` event, a stream cut before its end)."""

import unittest
from typing import Any

import httpx

from aihub.adapters.base import Upstream, UpstreamError
from aihub.adapters.openai_compat import OpenAICompatAdapter
from aihub.tests.upstream.openai_sim import OpenAISim
from aihub.tests.upstream.sim import Reply, sse

WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


class OpenAIResponsesPassThroughTests(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.sim = OpenAISim().start()
        self.addCleanup(self.sim.stop)
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(2.0))
        self.adapter = OpenAICompatAdapter(self.client)
        self.upstream = Upstream("openai", "openai", "gpt-sim", self.sim.url + "/v1", "sk-sim", native_responses=True)

    async def asyncTearDown(self) -> None:
        await self.client.aclose()

    async def events(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return [event async for event in self.adapter.responses_stream(self.upstream, body)]

    async def test_a_response_comes_back_as_the_upstream_made_it_with_the_body_passed_on(self) -> None:
        body = {"model": "gpt-5", "input": "Hi", "instructions": "Be brief.", "store": False, "some_future_field": {"x": 1}}
        answer = await self.adapter.responses(self.upstream, body)
        self.assertEqual((answer["object"], answer["status"]), ("response", "completed"))
        self.assertEqual(answer["output"][0]["content"][0]["text"], self.sim.script.text)
        self.assertEqual(answer["usage"]["input_tokens"], 11)
        sent = self.sim.last_request
        self.assertEqual(sent.path, "/v1/responses")
        self.assertEqual(sent.headers["authorization"], "Bearer sk-sim")
        self.assertEqual({**sent.json}, {**body, "model": "gpt-sim"})

    async def test_a_stream_yields_every_event_in_order_and_ends_with_the_terminal_one(self) -> None:
        events = await self.events({"model": "gpt-5", "input": "Hi"})
        kinds = [e["type"] for e in events]
        self.assertEqual(kinds[:2], ["response.created", "response.in_progress"])
        self.assertEqual(kinds[-1], "response.completed")
        self.assertEqual([e["sequence_number"] for e in events], list(range(len(events))))
        text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        self.assertEqual(text, self.sim.script.text)
        self.assertIs(self.sim.last_request.json["stream"], True)

    async def test_a_tool_call_streams_its_arguments(self) -> None:
        self.sim.script.tool_call = ("get_weather", {"city": "Paris"})
        events = await self.events({"model": "gpt-5", "input": "Weather?", "tools": [WEATHER]})
        done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
        self.assertEqual(done[0]["arguments"], '{"city": "Paris"}')
        self.assertEqual(events[-1]["response"]["output"][0]["name"], "get_weather")

    async def test_an_upstream_refusal_keeps_its_status_and_message(self) -> None:
        with self.assertRaises(UpstreamError) as caught:
            await self.adapter.responses(self.upstream, {"model": "gpt-5", "input": [{"type": "nonsense"}]})
        self.assertEqual(caught.exception.status, 400)
        self.assertIn("input[0].type", caught.exception.message)

    async def test_an_error_event_and_a_cut_stream_are_upstream_errors(self) -> None:
        created = {"type": "response.created", "sequence_number": 0, "response": {"id": "resp_1", "object": "response", "output": []}}
        failure = {"type": "error", "code": "server_error", "message": "The server had an error", "param": None, "sequence_number": 1}
        for name, chunks in (
            ("error event", [sse(created, event="response.created"), sse(failure, event="error")]),
            ("cut short", [sse(created, event="response.created")]),
        ):
            with self.subTest(name):
                self.sim.handler = lambda request, chunks=chunks: Reply.sse(chunks)
                stream = self.adapter.responses_stream(self.upstream, {"model": "gpt-5", "input": "Hi"})
                self.assertEqual((await anext(stream))["type"], "response.created")
                with self.assertRaises(UpstreamError) as caught:
                    await anext(stream)
                self.assertEqual((caught.exception.status, caught.exception.retryable), (502, True))
