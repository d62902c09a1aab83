"""The official OpenAI SDK's Responses API (`client.responses`) against City, onto an
OpenAI-compatible, a Claude and a Gemini model served by their simulators: every answer validated
as OpenAI's `Response`, every streamed event as a `ResponseStreamEvent`."""

import json
from typing import Any

import httpx
import openai
from openai.types.responses import FunctionToolParam, ResponseFunctionToolCall, ResponseReasoningItem
from pydantic import BaseModel

from aihub.tests.live import AllProtocolsTestCase
from aihub.tests.live_plans import wait_for_records
from aihub.tests.openai_schema import validate
from aihub.tests.upstream.sim import SimServer

WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False},
    "strict": True,
}


class Greeting(BaseModel):
    greeting: str
    words: int


def events_of(response: httpx.Response) -> list[dict[str, Any]]:
    """The SSE events of a raw Responses stream, each checked: its `event:` name is its type."""
    events, name = [], None
    for line in response.text.splitlines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            event = json.loads(line[len("data: ") :])
            assert event["type"] == name, (event["type"], name)
            events.append(event)
    return events


class ResponsesThroughSimulatorsTests(AllProtocolsTestCase):
    def upstreams(self) -> list[tuple[str, SimServer]]:
        return [("deepseek-v4-flash", self.sim), ("claude-sonnet-4-6", self.anthropic), ("gemini-3-flash-preview", self.gemini)]

    def sdk(self, base: str = "/v1") -> openai.OpenAI:
        client = openai.OpenAI(base_url=self.city.url + base, api_key=self.token, max_retries=0, timeout=10)
        self.addCleanup(client.close)
        return client

    def stream_events(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        response = self.user.post("/v1/responses", json={**body, "stream": True})
        self.assertEqual(response.status_code, 200, response.text[:500])
        self.assertTrue(response.headers["content-type"].startswith("text/event-stream"))
        events = events_of(response)
        for event in events:
            validate(event, "ResponseStreamEvent")
        self.assertEqual([e["sequence_number"] for e in events], list(range(len(events))))
        return events

    def test_create_answers_a_response_on_every_provider(self) -> None:
        for (model, sim), base in zip(self.upstreams(), ("/v1", "/v1/ai", "/v1"), strict=True):
            with self.subTest(model=model, base=base):
                raw = self.sdk(base).responses.with_raw_response.create(
                    model=model, input="Hi", instructions="Be brief.", max_output_tokens=50, temperature=0.5, metadata={"k": "v"}
                )
                validate(raw.http_response.json(), "Response")
                response = raw.parse()
                self.assertEqual((response.status, response.model, response.output_text), ("completed", model, sim.script.text))
                self.assertTrue(response.id.startswith("resp_"))
                self.assertEqual((response.instructions, response.metadata, response.max_output_tokens), ("Be brief.", {"k": "v"}, 50))
                assert response.usage is not None
                self.assertEqual((response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens), (11, 7, 18))
                self.assertEqual(response.usage.input_tokens_details.cached_tokens, 0)
                self.assertEqual(len(sim.requests), 1)
                self.assertIn("Be brief.", json.dumps(sim.last_request.json))
        records = wait_for_records(self.studio["id"], 3)
        self.assertEqual({r.route for r in records}, {"responses"})
        self.assertEqual({(r.prompt_tokens, r.completion_tokens, r.status) for r in records}, {(11, 7, 200)})

    def test_stream_sends_every_event_in_order_on_every_provider(self) -> None:
        for model, sim in self.upstreams():
            with self.subTest(model=model):
                events = self.stream_events({"model": model, "input": [{"role": "user", "content": "Hi"}]})
                kinds = [e["type"] for e in events]
                deltas = kinds.count("response.output_text.delta")
                self.assertEqual(
                    kinds,
                    ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
                    + ["response.output_text.delta"] * deltas
                    + ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"],
                )
                self.assertGreater(deltas, 1)
                item_id = events[2]["item"]["id"]
                self.assertTrue(all(e["item_id"] == item_id for e in events[3:-2]))
                self.assertEqual("".join(e["delta"] for e in events if e["type"] == "response.output_text.delta"), sim.script.text)
                done = events[-1]["response"]
                self.assertEqual(done["status"], "completed")
                self.assertEqual(done["output"], [events[-2]["item"]])
                self.assertEqual(done["output"][0]["content"][0]["text"], sim.script.text)
                self.assertEqual(done["usage"]["input_tokens"], 11)
                self.assertEqual(done["usage"]["output_tokens_details"], {"reasoning_tokens": 0})
        with self.sdk().responses.stream(model="deepseek-v4-flash", input="Hi") as stream:
            for _ in stream:
                pass
            final = stream.get_final_response()
        self.assertEqual(final.output_text, self.sim.script.text)

    def test_function_tool_round_trip_on_every_provider(self) -> None:
        for model, sim in self.upstreams():
            with self.subTest(model=model):
                sim.script.tool_call = ("get_weather", {"city": "Paris"})
                client = self.sdk()
                first = client.responses.create(model=model, input="Weather in Paris?", tools=[WEATHER], store=False)
                calls = [item for item in first.output if isinstance(item, ResponseFunctionToolCall)]
                self.assertEqual(len(calls), 1)
                call = calls[0]
                self.assertEqual((call.name, json.loads(call.arguments), call.status), ("get_weather", {"city": "Paris"}, "completed"))
                sim.script.tool_call = None
                turn: list[Any] = [
                    {"role": "user", "content": "Weather in Paris?"},
                    *[item.model_dump(exclude_none=True) for item in first.output],  # the model's items, sent back as they came
                    {"type": "function_call_output", "call_id": call.call_id, "output": '{"sky": "clear"}'},
                ]
                second = client.responses.create(model=model, input=turn, tools=[WEATHER], store=False)
                self.assertEqual(second.output_text, sim.script.text)
                sent = json.dumps(sim.last_request.json)
                self.assertIn("clear", sent)
                self.assertIn(call.call_id if sim is not self.gemini else "functionResponse", sent)  # Gemini matches calls by name

    def test_streamed_function_call_sends_its_arguments_in_pieces(self) -> None:
        for model, sim in self.upstreams():
            with self.subTest(model=model):
                sim.script.tool_call = ("get_weather", {"city": "Paris"})
                events = self.stream_events({"model": model, "input": "Weather?", "tools": [WEATHER]})
                kinds = [e["type"] for e in events]
                self.assertIn("response.function_call_arguments.delta", kinds)
                added = next(e for e in events if e["type"] == "response.output_item.added" and e["item"]["type"] == "function_call")
                done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
                deltas = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
                self.assertEqual(json.loads(deltas), {"city": "Paris"})
                self.assertEqual((done["item_id"], done["name"], done["arguments"]), (added["item"]["id"], "get_weather", deltas))
                self.assertEqual(kinds[-1], "response.completed")
                output = events[-1]["response"]["output"]
                self.assertEqual([i["type"] for i in output], ["function_call"])
                self.assertEqual((output[0]["arguments"], output[0]["call_id"]), (deltas, added["item"]["call_id"]))

    def test_parse_gives_the_json_schema_answer(self) -> None:
        for model, sim in self.upstreams():
            with self.subTest(model=model):
                sim.script.json = {"greeting": "Bonjour", "words": 1}
                sim.script.text = json.dumps(sim.script.json)  # what the simulators without a forced tool answer
                parsed = self.sdk().responses.parse(model=model, input="Greet me.", text_format=Greeting)
                self.assertEqual(parsed.output_parsed, Greeting(greeting="Bonjour", words=1))
                sent = json.dumps(sim.last_request.json)
                self.assertIn("words", sent)  # the schema reached the provider in its own form

    def test_reasoning_comes_as_a_reasoning_item_and_goes_back_signed(self) -> None:
        self.anthropic.script.tool_call = ("get_weather", {"city": "Paris"})
        client = self.sdk()
        raw = client.responses.with_raw_response.create(
            model="claude-sonnet-4-6",
            input="Weather?",
            tools=[WEATHER],
            reasoning={"effort": "low"},
            include=["reasoning.encrypted_content"],
        )
        validate(raw.http_response.json(), "Response")
        first = raw.parse()
        reasoning = first.output[0]
        assert isinstance(reasoning, ResponseReasoningItem)
        self.assertEqual(reasoning.summary[0].text, self.anthropic.script.reasoning)
        self.assertTrue(reasoning.encrypted_content)
        self.anthropic.script.tool_call = None
        call = first.output[1]
        assert isinstance(call, ResponseFunctionToolCall)
        turn: list[Any] = [
            {"role": "user", "content": "Weather?"},
            *[item.model_dump(exclude_none=True) for item in first.output],
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ]
        client.responses.create(model="claude-sonnet-4-6", input=turn, tools=[WEATHER], reasoning={"effort": "low"})
        assistant = self.anthropic.last_request.json["messages"][1]
        self.assertEqual(assistant["role"], "assistant")
        self.assertEqual(assistant["content"][0]["type"], "thinking")
        self.assertEqual(assistant["content"][0]["thinking"], self.anthropic.script.reasoning)
        events = self.stream_events({"model": "claude-sonnet-4-6", "input": "Hi", "reasoning": {"effort": "low"}})
        kinds = [e["type"] for e in events]
        self.assertEqual(kinds[2:4], ["response.output_item.added", "response.reasoning_summary_part.added"])
        self.assertEqual(events[-1]["response"]["output"][0]["type"], "reasoning")
        self.assertEqual(events[-1]["response"]["output"][1]["type"], "message")
