"""The official OpenAI SDK's Responses API (`client.responses`) against City, onto an
OpenAI-compatible, a Claude and a Gemini model served by their simulators: every answer validated
as OpenAI's `Response`, every streamed event as a `ResponseStreamEvent`."""

import json
from typing import Any

import httpx
import openai
from openai.types.responses import FunctionToolParam, ResponseFunctionToolCall, ResponseReasoningItem
from pydantic import BaseModel

from aihub import responses_output as ro
from aihub.tests.live import AllProtocolsTestCase
from aihub.tests.live_plans import wait_for_records
from aihub.tests.openai_schema import validate
from aihub.tests.upstream.sim import Received, Reply, SimServer, sse

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
                with self.sdk().responses.stream(model=model, input="Greet me.", text_format=Greeting) as stream:
                    streamed = stream.get_final_response()
                self.assertEqual(streamed.output_parsed, Greeting(greeting="Bonjour", words=1))

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
        with client.responses.stream(model="claude-sonnet-4-6", input="Hi", reasoning={"effort": "low"}) as stream:
            kinds = [event.type for event in stream]  # the SDK's accumulator takes every event
            final = stream.get_final_response()
        self.assertIn("response.reasoning_summary_text.delta", kinds)
        self.assertEqual((final.output[0].type, final.output_text), ("reasoning", self.anthropic.script.text))
        # Gemini shows its thought summaries when reasoning.summary asks for them (Codex CLI does).
        summarized = client.responses.create(model="gemini-3-flash-preview", input="Hi", reasoning={"effort": "low", "summary": "auto"})
        thought = summarized.output[0]
        assert isinstance(thought, ResponseReasoningItem)
        self.assertEqual(thought.summary[0].text, self.gemini.script.reasoning)
        self.assertEqual(summarized.output_text, self.gemini.script.text)

    def test_a_codex_cli_request_works_on_every_provider(self) -> None:
        """What Codex CLI sends (see DESIGN.md): developer messages, items with ids, a function, a
        namespace of functions and web search side by side, encrypted reasoning asked for, store off."""
        shell = {
            "type": "function",
            "name": "shell",
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
            "strict": False,
        }
        read = {"type": "function", "name": "read", "description": "Read a file.", "parameters": {"type": "object", "properties": {}}}
        body = {
            "instructions": "You are a coding agent.",
            "input": [
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Sandbox: read-only."}]},
                {
                    "type": "message",
                    "role": "user",
                    "id": "msg_from_codex",
                    "content": [{"type": "input_text", "text": "Read the README."}],
                },
            ],
            "tools": [shell, {"type": "web_search"}, {"type": "namespace", "name": "files", "description": "Files.", "tools": [read]}],
            "tool_choice": "auto",
            "parallel_tool_calls": False,
            "reasoning": {"effort": "medium", "summary": "auto"},
            "store": False,
            "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": "codex-session-1",
        }
        for model, sim in self.upstreams():
            with self.subTest(model=model):
                sim.script.tool_call = ("files__read", {})
                events = self.stream_events({"model": model, **body})
                self.assertEqual(events[-1]["type"], "response.completed")
                usage = events[-1]["response"]["usage"]
                self.assertEqual(
                    (usage["input_tokens_details"]["cached_tokens"], usage["output_tokens_details"]["reasoning_tokens"]), (0, 0)
                )
                calls = [item for item in events[-1]["response"]["output"] if item["type"] == "function_call"]
                self.assertEqual([(c["namespace"], c["name"]) for c in calls], [("files", "read")])
                sent = json.dumps(sim.last_request.json)
                for offered in ("shell", "files__read", "Sandbox: read-only.", "You are a coding agent."):
                    self.assertIn(offered, sent)
                self.assertNotIn("web_search", sent)

    def test_what_cannot_be_translated_is_a_400_naming_the_field(self) -> None:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}, "tools[0].type"),
            ({"tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
            ({"background": True}, "background"),
            ({"conversation": "conv_1"}, "conversation"),
            ({"include": ["message.output_text.logprobs"]}, "include[0]"),
            ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].id"),
            ({"input": [{"type": "item_reference", "id": "msg_01kx0000000000000000000000_0"}]}, "input[0].id"),
            ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type"),
            (
                {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1", "detail": "auto"}]}]},
                "input[0].content[0].file_id",
            ),
            (
                {"input": [{"type": "function_call_output", "call_id": "c", "output": [{"type": "input_file", "file_data": "x"}]}]},
                "input[0].output[0].type",
            ),
            ({"input": 5}, "input"),
            ({"temperature": "hot"}, "temperature"),
            ({"model": None}, "model"),
            ({"model": "claude-sonnet-4-6", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
        ]
        for change, param in cases:
            with self.subTest(param=param):
                response = self.user.post("/v1/responses", json={"model": "deepseek-v4-flash", "input": "Hi", **change})
                self.assertEqual(response.status_code, 400, response.text)
                error = response.json()["error"]
                self.assertEqual((error["param"], error["type"]), (param, "invalid_request_error"))
        for sim in (self.sim, self.anthropic, self.gemini):
            self.assertEqual(sim.requests, [])
        with self.assertRaises(openai.BadRequestError) as caught:
            self.sdk().responses.create(model="deepseek-v4-flash", input="Hi", background=True)
        self.assertIn("background", str(caught.exception))

    def test_an_upstream_failure_is_an_error_before_the_stream_and_response_failed_within_it(self) -> None:
        self.sim.fail(503)
        with self.assertRaises(openai.InternalServerError):
            self.sdk().responses.create(model="deepseek-v4-flash", input="Hi")
        self.sim.reset()
        self.sim.fail_after_chunks = 3
        events = self.stream_events({"model": "deepseek-v4-flash", "input": "Hi"})
        self.assertEqual(events[-1]["type"], "response.failed")
        failed = events[-1]["response"]
        self.assertEqual((failed["status"], failed["error"]["code"]), ("failed", "server_error"))
        self.assertEqual(failed["output"][0]["type"], "message")
        records = wait_for_records(self.studio["id"], 2)
        self.assertEqual([(r.route, r.status) for r in records], [("responses", 503), ("responses", 502)])
        self.sim.reset()
        self.sim.script.finish = "length"  # the answer was cut by its output cap
        cut = self.sdk().responses.create(model="deepseek-v4-flash", input="Hi", max_output_tokens=7)
        assert cut.incomplete_details is not None
        self.assertEqual((cut.status, cut.incomplete_details.reason), ("incomplete", "max_output_tokens"))
        self.assertEqual(self.stream_events({"model": "deepseek-v4-flash", "input": "Hi"})[-1]["type"], "response.incomplete")

    def test_previous_response_id_continues_the_conversation_on_every_provider(self) -> None:
        client = self.sdk()
        for model, sim in self.upstreams():
            with self.subTest(model=model):
                first = client.responses.create(model=model, input="My name is Ada.", instructions="Answer in French.")
                streamed = self.stream_events({"model": model, "input": "Remember it.", "previous_response_id": first.id})
                middle = streamed[-1]["response"]["id"]  # stored before response.completed went out
                last = client.responses.create(model=model, input="What is my name?", previous_response_id=middle)
                self.assertEqual((last.previous_response_id, last.output_text), (middle, sim.script.text))
                sent = json.dumps(sim.last_request.json)
                for said in ("My name is Ada.", "Remember it.", "What is my name?", sim.script.text):
                    self.assertIn(said, sent)
                self.assertNotIn("Answer in French.", sent)  # instructions are not carried over, as on OpenAI
                self.assertEqual(client.responses.retrieve(last.id).output_text, sim.script.text)
                # The items that made it: three turns' inputs and the two answers before the last.
                self.assertEqual(len(list(client.responses.input_items.list(last.id))), 5)
                unstored = client.responses.create(model=model, input="Forget it.", store=False)
                with self.assertRaises(openai.BadRequestError) as caught:
                    client.responses.create(model=model, input="And now?", previous_response_id=unstored.id)
                self.assertEqual(getattr(caught.exception, "param", None), "previous_response_id")

    def test_item_references_name_the_items_of_stored_responses(self) -> None:
        """As the Vercel AI SDK sends a tool loop's earlier steps while `store` is on."""
        self.sim.script.tool_call = ("get_weather", {"city": "Paris"})
        client = self.sdk()
        first = client.responses.create(model="deepseek-v4-flash", input="Weather?", tools=[WEATHER])
        call = first.output[0]
        assert isinstance(call, ResponseFunctionToolCall)
        self.sim.script.tool_call = None
        turn: list[Any] = [
            {"role": "user", "content": "Weather?"},
            {"type": "item_reference", "id": call.id},
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ]
        second = client.responses.create(model="deepseek-v4-flash", input=turn, tools=[WEATHER])
        self.assertEqual(second.output_text, self.sim.script.text)
        messages = self.sim.last_request.json["messages"]
        self.assertEqual(messages[1]["tool_calls"][0]["id"], call.call_id)
        self.assertEqual((messages[2]["role"], messages[2]["tool_call_id"]), ("tool", call.call_id))
        client.responses.delete(first.id)
        with self.assertRaises(openai.BadRequestError) as caught:
            client.responses.create(model="deepseek-v4-flash", input=turn, tools=[WEATHER])
        self.assertEqual(getattr(caught.exception, "param", None), "input[1].id")

    def test_plans_usage_details_and_a_departing_client_are_as_on_chat(self) -> None:
        self.sim.script.cached_tokens, self.sim.script.reasoning_tokens = 4, 2
        usage = self.sdk().responses.create(model="deepseek-v4-flash", input="Hi").usage
        assert usage is not None
        self.assertEqual((usage.input_tokens_details.cached_tokens, usage.output_tokens_details.reasoning_tokens), (4, 2))
        streamed = self.stream_events({"model": "deepseek-v4-flash", "input": "Hi"})[-1]["response"]["usage"]
        self.assertEqual((streamed["input_tokens_details"]["cached_tokens"], streamed["output_tokens_details"]["reasoning_tokens"]), (4, 2))
        records = wait_for_records(self.studio["id"], 2)
        self.assertEqual({(r.cached_tokens, r.reasoning_tokens, r.streamed) for r in records}, {(4, 2, False), (4, 2, True)})

        self.sim.chunk_delay_seconds = 0.3
        with self.user.stream("POST", "/v1/responses", json={"model": "deepseek-v4-flash", "input": "Hi", "stream": True}) as response:
            for line in response.iter_lines():
                if line.startswith("event: response.output_text.delta"):
                    break  # the first words arrived; now leave
        self.assertTrue(self.sim.wait_for_cancellation(3.0), "the upstream did not see the request cancelled")
        record = wait_for_records(self.studio["id"], 3)[-1]
        self.assertEqual((record.status, record.error_code, record.route), (499, "client_closed", "responses"))

        plan = self.ok(
            self.admin.post("/v1/studios/plans/create", json={"name": "cheap", "models": ["deepseek-*"], "max_cost_per_request": 0.01})
        )
        self.ok(self.admin.post("/v1/studios/plans/assign", json={"plan_id": plan["id"], "studio_id": self.studio["id"]}))
        with self.assertRaises(openai.PermissionDeniedError) as denied:
            self.sdk().responses.create(model="claude-sonnet-4-6", input="Hi")
        self.assertEqual(getattr(denied.exception, "code", None), "model_not_allowed")
        response = self.user.post("/v1/responses", json={"model": "deepseek-v4-flash", "input": "Hi", "max_output_tokens": 10_000_000})
        self.assertEqual(response.status_code, 402, response.text)
        error = response.json()["error"]
        self.assertEqual((error["code"], error["param"]), ("per_request_budget_exceeded", "max_output_tokens"))
        self.assertIn("set max_output_tokens to", error["message"])
        self.assertEqual(len(self.anthropic.requests) + len(self.sim.requests), 3)

    def test_custom_tools_reach_openai_compatible_models_and_are_refused_by_name_elsewhere(self) -> None:
        """Codex CLI's free-form apply_patch tool on GPT-5 models: chat's custom tools, which only
        OpenAI's models take."""
        patch = {"type": "custom", "name": "apply_patch", "description": "Edit files.", "format": {"type": "text"}}
        call = {"id": "call_patch", "type": "custom", "custom": {"name": "apply_patch", "input": "*** Begin Patch\n*** End Patch"}}

        def answer(request: Received) -> Reply:
            if not request.json.get("stream"):
                message = {"role": "assistant", "content": None, "tool_calls": [call]}
                return Reply.json(
                    {
                        "id": "c",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "m",
                        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
                    }
                )
            pieces = [
                {"index": 0, **call, "custom": {"name": "apply_patch", "input": "*** Begin Patch\n"}},
                {"index": 0, "custom": {"input": "*** End Patch"}},
            ]
            chunks = [
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "m",
                    "choices": [{"index": 0, "delta": {"tool_calls": [p]}, "finish_reason": None}],
                }
                for p in pieces
            ]
            return Reply.sse([*(sse(c) for c in chunks), sse("[DONE]")])

        self.sim.handler = answer
        body = {"model": "deepseek-v4-flash", "input": "Fix it.", "tools": [{"type": "web_search"}, patch]}
        made = self.ok(self.user.post("/v1/responses", json=body))
        validate(made, "Response")
        self.assertEqual(
            [(i["type"], i["name"], i["input"]) for i in made["output"]],
            [("custom_tool_call", "apply_patch", "*** Begin Patch\n*** End Patch")],
        )
        self.assertEqual(
            self.sim.last_request.json["tools"],
            [{"type": "custom", "custom": {"name": "apply_patch", "description": "Edit files.", "format": {"type": "text"}}}],
        )
        events = self.stream_events(body)
        self.assertIn("response.custom_tool_call_input.delta", [e["type"] for e in events])
        self.assertEqual(events[-1]["response"]["output"][0]["input"], "*** Begin Patch\n*** End Patch")
        turn = [
            {"role": "user", "content": "Fix it."},
            made["output"][0],
            {"type": "custom_tool_call_output", "call_id": "call_patch", "output": "Done."},
        ]
        self.ok(self.user.post("/v1/responses", json={**body, "input": turn}))
        self.assertEqual(self.sim.last_request.json["messages"][1]["tool_calls"], [call])
        for model in ("claude-sonnet-4-6", "gemini-3-flash-preview"):
            with self.subTest(model=model):
                response = self.user.post("/v1/responses", json={**body, "model": model})
                self.assertEqual((response.status_code, response.json()["error"]["param"]), (400, "tools[1]"), response.text)

    def test_openai_models_get_openais_own_responses_api_with_citys_ids(self) -> None:
        """OpenAI's deployments speak Responses natively: the request goes as it came (hosted tools
        included), with the stored conversation as input and nothing stored upstream."""
        client = self.sdk()
        raw = client.responses.with_raw_response.create(
            model="gpt-4.1-mini", input="Hi", tools=[{"type": "web_search"}], include=["web_search_call.action.sources"]
        )
        validate(raw.http_response.json(), "Response")
        first = raw.parse()
        self.assertEqual((first.model, first.output_text), ("gpt-4.1-mini", self.sim.script.text))
        self.assertNotEqual(first.id, "resp_sim1")
        self.assertEqual(ro.response_of_item(first.output[0].id or ""), first.id)  # an item_reference to it resolves
        sent = self.sim.last_request
        self.assertEqual((sent.path, sent.json["model"], sent.json["store"]), ("/v1/responses", "gpt-4.1-mini", False))
        self.assertEqual(sent.json["tools"], [{"type": "web_search"}])
        self.assertEqual(sent.json["include"], ["web_search_call.action.sources"])  # gpt-4.1-mini does not reason
        self.ok(self.user.post("/v1/responses", json={"model": "gpt-5", "input": "Hi", "include": ["web_search_call.action.sources"]}))
        # A reasoning model's thought comes back encrypted, so that a stored conversation goes on statelessly.
        self.assertEqual(self.sim.last_request.json["include"], ["web_search_call.action.sources", "reasoning.encrypted_content"])
        for refused in ({"background": True}, {"conversation": "conv_1"}):
            response = self.user.post("/v1/responses", json={"model": "gpt-4.1-mini", "input": "Hi", **refused})
            self.assertEqual((response.status_code, response.json()["error"]["param"]), (400, next(iter(refused))))

        events = self.stream_events({"model": "gpt-4.1-mini", "input": "Again.", "previous_response_id": first.id})
        self.assertEqual((events[0]["type"], events[-1]["type"]), ("response.created", "response.completed"))
        added = next(e for e in events if e["type"] == "response.output_item.added")["item"]["id"]
        self.assertEqual({e["item_id"] for e in events if "item_id" in e}, {added})
        middle = events[-1]["response"]
        self.assertEqual((middle["previous_response_id"], middle["output"][0]["id"]), (first.id, added))
        self.assertEqual(
            self.sim.last_request.json["input"],
            [
                {"type": "message", "role": "user", "status": "completed", "content": [{"type": "input_text", "text": "Hi"}]},
                {k: v for k, v in first.output[0].model_dump(mode="json", exclude_none=True).items() if k != "id"},
                {"type": "message", "role": "user", "status": "completed", "content": [{"type": "input_text", "text": "Again."}]},
            ],
        )
        self.assertNotIn("previous_response_id", self.sim.last_request.json)
        self.assertEqual(client.responses.retrieve(middle["id"]).output_text, self.sim.script.text)
        records = wait_for_records(self.studio["id"], 2)
        self.assertEqual({(r.route, r.prompt_tokens, r.completion_tokens, r.status) for r in records}, {("responses", 11, 7, 200)})
        self.sim.fail_after_chunks = 4  # the upstream's stream is cut mid-answer
        failed = self.stream_events({"model": "gpt-4.1-mini", "input": "Hi"})[-1]
        self.assertEqual(
            (failed["type"], failed["response"]["status"], failed["response"]["error"]["code"]),
            ("response.failed", "failed", "server_error"),
        )
        cut = next(r for r in wait_for_records(self.studio["id"], 4) if r.status == 502)
        usage = failed["response"]["usage"]  # what the caller is billed for, as on the translated path
        self.assertEqual((usage["input_tokens"], usage["output_tokens"]), (cut.prompt_tokens, cut.completion_tokens))

    def test_reasoning_sent_back_to_openai_is_reserved_as_input(self) -> None:
        """Passed through, an encrypted reasoning item is input OpenAI bills: the reservation counts it,
        so a plan's per-request cap refuses what the translated conversation alone would have let by."""
        plan = self.ok(self.admin.post("/v1/studios/plans/create", json={"name": "capped", "max_cost_per_request": 0.05}))
        self.ok(self.admin.post("/v1/studios/plans/assign", json={"plan_id": plan["id"], "studio_id": self.studio["id"]}))
        turn = [{"type": "message", "role": "user", "content": "Go on."}]
        body = {"model": "gpt-4.1-mini", "store": False, "max_output_tokens": 100}
        self.ok(self.user.post("/v1/responses", json={**body, "input": turn}))
        thought = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAAB" + "x7Q" * 200_000}
        refused = self.user.post("/v1/responses", json={**body, "input": [thought, *turn]})
        self.assertEqual(refused.status_code, 402, refused.text[:300])  # 600,000 characters: well over $0.05 of input
        self.assertEqual(refused.json()["error"]["code"], "per_request_budget_exceeded")
        self.assertEqual(len(self.sim.requests), 1)  # nothing went upstream for it
