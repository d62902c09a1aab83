"""The Anthropic Messages adapter against the Anthropic simulator: the shared adapter contract, then
what the translation to and from Anthropic's wire format must get right."""

import json
import time
import unittest
from typing import Any

import httpx
import openai

from aihub.adapters.anthropic import AnthropicAdapter
from aihub.tests.adapter_contract import PIXEL_PNG, WEATHER_TOOL, AdapterContract
from aihub.tests.live import AiLiveTestCase
from aihub.tests.openai_schema import validate
from aihub.tests.upstream.anthropic_sim import AnthropicSim
from aihub.tests.upstream.sim import Received

ANTHROPIC_KEY = "sk-ant-test-not-a-real-key"
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}}}}


class AnthropicAdapterTests(AdapterContract, unittest.IsolatedAsyncioTestCase):
    simulator_class = AnthropicSim
    adapter_class = AnthropicAdapter
    provider = "anthropic"
    adapter_name = "anthropic"
    upstream_model = "claude-sonnet-4-5"

    # --- contract hooks: Anthropic's wire format read back --------------------------------------

    def sent_key(self, received: Received) -> str | None:
        return received.headers.get("x-api-key")

    def sent_system(self, received: Received) -> str | None:
        system = received.json.get("system")
        return "\n".join(block["text"] for block in system) if system else None

    def sent_user_texts(self, received: Received) -> list[str]:
        return [block["text"] for m in received.json["messages"] if m["role"] == "user"
                for block in m["content"] if block["type"] == "text"]

    def sent_image_count(self, received: Received) -> int:
        return sum(1 for m in received.json["messages"] for block in m["content"] if block["type"] == "image")

    def sent(self) -> dict[str, Any]:
        return self.sim.last_request.json

    # --- request translation --------------------------------------------------------------------

    async def test_system_and_developer_messages_become_the_system_prompt(self) -> None:
        body = self.chat_body()
        body["messages"].insert(1, {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]})
        await self.adapter.chat(self.upstream, body)
        self.assertEqual(self.sent()["system"], [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Answer in French."}])
        self.assertEqual([m["role"] for m in self.sent()["messages"]], ["user"])
        self.assertEqual(self.sim.last_request.headers["anthropic-version"], "2023-06-01")
        self.assertEqual(self.sim.last_request.path, "/v1/messages")

    async def test_consecutive_turns_of_one_role_are_merged_so_roles_alternate(self) -> None:
        messages = [{"role": "user", "content": "First."}, {"role": "user", "content": "Second."},
                    {"role": "assistant", "content": "Noted."}, {"role": "assistant", "content": [{"type": "text", "text": "Anything else?"}]},
                    {"role": "user", "content": "Yes."}]
        await self.adapter.chat(self.upstream, {"model": "m", "messages": messages})
        sent = self.sent()["messages"]
        self.assertEqual([m["role"] for m in sent], ["user", "assistant", "user"])
        self.assertEqual([b["text"] for b in sent[0]["content"]], ["First.", "Second."])
        self.assertEqual([b["text"] for b in sent[1]["content"]], ["Noted.", "Anything else?"])

    async def test_max_tokens_defaults_to_4096_and_max_completion_tokens_wins(self) -> None:
        await self.adapter.chat(self.upstream, {"model": "m", "messages": [{"role": "user", "content": "Hi"}]})
        self.assertEqual(self.sent()["max_tokens"], 4096)
        await self.adapter.chat(self.upstream, self.chat_body(max_completion_tokens=300))
        self.assertEqual(self.sent()["max_tokens"], 300)

    async def test_sampling_fields_are_translated_and_temperature_is_clamped_to_anthropics_range(self) -> None:
        await self.adapter.chat(self.upstream, self.chat_body(temperature=1.7, stop="END", user="u-42"))
        sent = self.sent()
        self.assertEqual((sent["temperature"], sent["stop_sequences"]), (1.0, ["END"]))
        self.assertEqual(sent["metadata"], {"user_id": "u-42"})
        await self.adapter.chat(self.upstream, self.chat_body(top_p=0.9, stop=["END", "STOP"]))
        self.assertEqual((self.sent()["top_p"], self.sent()["stop_sequences"]), (0.9, ["END", "STOP"]))
        # Current Claude models refuse both at once: temperature wins.
        await self.adapter.chat(self.upstream, self.chat_body(temperature=0.2, top_p=0.9))
        self.assertEqual((self.sent()["temperature"], "top_p" in self.sent()), (0.2, False))

    async def test_images_go_inline_as_base64_or_by_url(self) -> None:
        body = self.chat_body()
        body["messages"][1]["content"] = [{"type": "image_url", "image_url": {"url": PIXEL_PNG}},
                                          {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}},
                                          {"type": "text", "text": ""},
                                          {"type": "text", "text": "Same animal?"}]
        await self.adapter.chat(self.upstream, body)
        blocks = self.sent()["messages"][0]["content"]
        self.assertEqual(blocks[0], {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL_PNG.split(",", 1)[1]}})
        self.assertEqual(blocks[1], {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}})
        self.assertEqual(blocks[2:], [{"type": "text", "text": "Same animal?"}])  # empty text parts are dropped

    async def test_tools_and_tool_choice_are_translated(self) -> None:
        cases = [("auto", {"type": "auto"}), ("required", {"type": "any"}), ("none", {"type": "none"}),
                 ({"type": "function", "function": {"name": "get_time"}}, {"type": "tool", "name": "get_time"})]
        for openai_choice, anthropic_choice in cases:
            await self.adapter.chat(self.upstream, self.chat_body(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=openai_choice))
            self.assertEqual(self.sent()["tool_choice"], anthropic_choice)
        self.assertEqual(self.sent()["tools"], [
            {"name": "get_weather", "description": "Weather of a city.", "input_schema": WEATHER_TOOL["function"]["parameters"]},
            {"name": "get_time", "input_schema": TIME_TOOL["function"]["parameters"]},
        ])
        await self.adapter.chat(self.upstream, self.chat_body(tools=[WEATHER_TOOL], parallel_tool_calls=False))
        self.assertEqual(self.sent()["tool_choice"], {"type": "auto", "disable_parallel_tool_use": True})

    async def test_a_tool_round_trip_becomes_tool_use_and_tool_result_blocks(self) -> None:
        # The ids the adapter handed out earlier come back from the caller and must pair up upstream.
        self.sim.play("message_tool_use")
        first = await self.adapter.chat(self.upstream, self.chat_body(tools=[WEATHER_TOOL]))
        assistant = first["choices"][0]["message"]
        messages = [*self.chat_body()["messages"], {k: v for k, v in assistant.items() if v is not None}]
        for call in assistant["tool_calls"]:
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": '{"temperature": 18}'})
        messages.append({"role": "user", "content": "And tomorrow?"})
        answer = await self.adapter.chat(self.upstream, {"model": "m", "messages": messages, "tools": [WEATHER_TOOL]})
        self.assertEqual(answer["choices"][0]["message"]["content"], self.sim.script.text)
        sent = self.sent()["messages"]
        self.assertEqual([m["role"] for m in sent], ["user", "assistant", "user"])
        tool_uses = [b for b in sent[1]["content"] if b["type"] == "tool_use"]
        self.assertEqual([(b["name"], b["input"]["location"]) for b in tool_uses],
                         [("get_weather", "San Francisco, CA"), ("get_weather", "Paris, France")])
        self.assertEqual(sent[1]["content"][0], {"type": "text", "text": "I'll check the weather in both cities."})
        results = sent[2]["content"]
        self.assertEqual([b["type"] for b in results], ["tool_result", "tool_result", "text"])
        self.assertEqual([b["tool_use_id"] for b in results[:2]], [b["id"] for b in tool_uses])
        self.assertEqual(results[0]["content"], '{"temperature": 18}')

    async def test_what_anthropic_cannot_do_is_refused_before_going_upstream(self) -> None:
        audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
        cases = [
            ({"n": 2}, "n"),
            ({"temperature": "hot"}, "temperature"),
            ({"response_format": "json"}, "response_format"),
            ({"logprobs": True}, "logprobs"),
            ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}}, "response_format"),
            ({"messages": [{"role": "user", "content": [audio]}]}, "messages[0].content[0].type"),
            ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]},
             "messages[0].content[0].image_url.url"),
            ({"messages": [{"role": "system", "content": "Only a system prompt."}]}, "messages"),
            ({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]},
             "messages[1].tool_calls[0].function.arguments"),
            ({"logit_bias": {"50256": -100}}, "logit_bias"),
            ({"presence_penalty": 0.5}, "presence_penalty"),
            ({"frequency_penalty": 1}, "frequency_penalty"),
            ({"reasoning_effort": "low"}, "reasoning_effort"),
            ({"functions": [{"name": "f", "parameters": {"type": "object"}}]}, "functions"),
            ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
            ({"web_search_options": {}}, "web_search_options"),
            ({"verbosity": "low"}, "verbosity"),
            ({"system": "Be terse."}, "system"),  # an extension field that City sets itself from the messages
        ]
        for extra, param in cases:
            error = await self.expect_error(self.adapter.chat(self.upstream, self.chat_body(**extra)))
            self.assertEqual((error.status, error.param, error.retryable), (400, param, False), extra)
        self.assertEqual(self.sim.requests, [])

    async def test_bookkeeping_fields_and_seed_are_left_out_and_neutral_values_pass(self) -> None:
        await self.adapter.chat(self.upstream, self.chat_body(
            store=True, metadata={"run": "7"}, service_tier="auto", prompt_cache_key="k1", safety_identifier="u-hash", seed=3,
            stream_options={"include_usage": True}, n=1, logprobs=False, presence_penalty=0, frequency_penalty=0.0, logit_bias={},
            parallel_tool_calls=True, verbosity=None, reasoning_effort=None))
        self.assertEqual(set(self.sent()), {"model", "messages", "max_tokens", "system"})

    async def test_fields_that_are_not_openais_are_forwarded_to_anthropic(self) -> None:
        thinking = {"type": "enabled", "budget_tokens": 1024}
        await self.adapter.chat(self.upstream, self.chat_body(top_k=5, thinking=thinking))
        self.assertEqual((self.sent()["top_k"], self.sent()["thinking"]), (5, thinking))
        error = await self.expect_error(self.adapter.chat(self.upstream, self.chat_body(top_kk=5)))
        self.assertEqual((error.status, error.message), (400, "top_kk: Extra inputs are not permitted"))  # Anthropic's own word

    # --- answer translation ---------------------------------------------------------------------

    async def test_a_recorded_tool_use_answer_becomes_openai_tool_calls(self) -> None:
        self.sim.play("message_tool_use")
        answer = await self.adapter.chat(self.upstream, self.chat_body(tools=[WEATHER_TOOL]))
        validate(answer, "CreateChatCompletionResponse")
        message = answer["choices"][0]["message"]
        self.assertEqual(message["content"], "I'll check the weather in both cities.")
        self.assertEqual([json.loads(c["function"]["arguments"]) for c in message["tool_calls"]],
                         [{"location": "San Francisco, CA", "unit": "celsius"}, {"location": "Paris, France", "unit": "celsius"}])
        self.assertEqual(answer["choices"][0]["finish_reason"], "tool_calls")
        self.assertEqual(answer["usage"], {"prompt_tokens": 384, "completion_tokens": 112, "total_tokens": 496})

    async def test_recorded_text_answers_plain_and_streamed(self) -> None:
        self.sim.play("message")
        answer = await self.adapter.chat(self.upstream, self.chat_body())
        validate(answer, "CreateChatCompletionResponse")
        self.assertEqual((answer["choices"][0]["message"]["content"], answer["choices"][0]["finish_reason"]),
                         ("Hello! How can I help you today?", "stop"))
        self.assertEqual(answer["usage"], {"prompt_tokens": 12, "completion_tokens": 10, "total_tokens": 22})
        self.sim.play("stream_text")
        chunks = await self.collect(self.chat_body(stream=True))
        self.assertEqual([c["choices"][0]["delta"] for c in chunks[:4]],
                         [{"role": "assistant", "content": ""}, {"content": "Hello"}, {"content": "!"}, {"content": " How can I help?"}])
        self.assertEqual(chunks[4]["choices"][0], {"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None})
        # output_tokens in message_delta is the final count, not an increment.
        self.assertEqual(chunks[5]["usage"], {"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40})
        self.assertEqual(len(chunks), 6)

    async def test_the_answer_does_not_tell_that_the_upstream_is_anthropic(self) -> None:
        self.sim.play("message_tool_use")
        answer = await self.adapter.chat(self.upstream, self.chat_body(tools=[WEATHER_TOOL]))
        self.assertEqual(answer["model"], "city-model-id")
        self.assertTrue(answer["id"].startswith("chatcmpl-"))
        self.assertTrue(all(c["id"].startswith("call_") for c in answer["choices"][0]["message"]["tool_calls"]))
        self.assertNotIn("toolu_", json.dumps(answer))
        self.assertNotIn("msg_", json.dumps(answer))

    async def test_max_tokens_stop_cache_usage_and_thinking_blocks(self) -> None:
        self.sim.play("message_max_tokens_cached")
        answer = await self.adapter.chat(self.upstream, self.chat_body())
        validate(answer, "CreateChatCompletionResponse")
        self.assertEqual(answer["choices"][0]["message"]["content"], "The history of the printing press begins in")
        self.assertEqual(answer["choices"][0]["finish_reason"], "length")
        # Cache writes and reads are prompt tokens too; reads are reported as cached.
        self.assertEqual(answer["usage"], {"prompt_tokens": 21 + 188 + 1800, "completion_tokens": 16, "total_tokens": 2025,
                                           "prompt_tokens_details": {"cached_tokens": 1800}})

    async def test_recorded_errors_keep_anthropics_message(self) -> None:
        self.sim.play("error_invalid_request", status=400)
        error = await self.expect_error(self.adapter.chat(self.upstream, self.chat_body()))
        self.assertEqual((error.status, error.retryable), (400, False))
        self.assertIn("media_type: Input should be 'image/jpeg'", error.message)
        self.sim.play("error_overloaded", status=529)
        error = await self.expect_error(self.adapter.chat(self.upstream, self.chat_body()))
        self.assertEqual((error.status, error.retryable), (503, True))
        self.assertIn("Overloaded", error.message)

    # --- streams --------------------------------------------------------------------------------

    async def test_a_recorded_tool_use_stream_becomes_indexed_tool_call_deltas(self) -> None:
        self.sim.play("stream_tool_use")
        chunks = await self.collect(self.chat_body(stream=True, tools=[WEATHER_TOOL, TIME_TOOL]))
        calls: dict[int, dict[str, str]] = {}
        text = ""
        for chunk in chunks:
            validate(chunk, "CreateChatCompletionStreamResponse")
            for choice in chunk["choices"]:
                text += choice["delta"].get("content") or ""
                for call in choice["delta"].get("tool_calls") or []:
                    entry = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                    entry["id"] += call.get("id") or ""
                    entry["name"] += call.get("function", {}).get("name") or ""
                    entry["arguments"] += call.get("function", {}).get("arguments") or ""
        self.assertEqual(text, "Okay, let's check the weather for San Francisco, CA:")
        self.assertEqual(sorted(calls), [0, 1])
        self.assertEqual(calls[0]["name"], "get_weather")
        self.assertEqual(json.loads(calls[0]["arguments"]), {"location": "San Francisco, CA", "unit": "fahrenheit"})
        self.assertEqual((calls[1]["name"], json.loads(calls[1]["arguments"])), ("get_time", {"timezone": "America/Los_Angeles"}))
        self.assertEqual(calls[0]["id"], "call_01T1x1fJ34qAmk2tNTrN7Up6")
        self.assertEqual([c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]], ["tool_calls"])
        self.assertEqual(chunks[-1]["usage"], {"prompt_tokens": 472, "completion_tokens": 89, "total_tokens": 561})
        self.assertEqual(len({c["id"] for c in chunks}), 1)

    async def test_an_error_event_midway_raises_from_the_stream(self) -> None:
        self.sim.play("stream_error_overloaded")
        received: list[dict[str, Any]] = []
        error = await self.expect_error(self._drain(received))
        self.assertEqual((error.status, error.retryable), (503, True))
        self.assertIn("Overloaded", error.message)
        self.assertEqual("".join(c["choices"][0]["delta"].get("content") or "" for c in received), "Once upon")

    async def _drain(self, into: list[dict[str, Any]]) -> None:
        async for chunk in self.adapter.chat_stream(self.upstream, self.chat_body(stream=True)):
            into.append(chunk)

    async def test_each_text_delta_is_yielded_as_soon_as_it_arrives(self) -> None:
        self.sim.chunk_delay_seconds = 0.08
        started = time.monotonic()
        arrivals = []
        async for chunk in self.adapter.chat_stream(self.upstream, self.chat_body(stream=True)):
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                arrivals.append(time.monotonic() - started)
        self.assertEqual(len(arrivals), 4)
        # The upstream spaces its events 0.08 s apart (three between the first and last text delta); the
        # chunks keep that spacing instead of arriving together at the end.
        self.assertLess(arrivals[0], arrivals[-1] - 0.15)


class AnthropicSimulatorTests(unittest.TestCase):
    """The simulator refuses what Anthropic's API refuses, so the adapter tests above mean something."""

    def test_it_refuses_what_the_real_api_refuses(self) -> None:
        headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
        hi = {"role": "user", "content": "Hi"}
        tool_use = {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]}
        cases = [
            ({"anthropic-version": "2023-06-01"}, 401, {"model": "m", "max_tokens": 5, "messages": [hi]}),
            ({"x-api-key": "k"}, 400, {"model": "m", "max_tokens": 5, "messages": [hi]}),
            (headers, 400, {"model": "m", "messages": [hi]}),
            (headers, 400, {"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "Hi"}, hi]}),
            (headers, 400, {"model": "m", "max_tokens": 5, "messages": [hi, hi]}),
            (headers, 400, {"model": "m", "max_tokens": 5, "messages": [hi], "temperature": 1.5}),
            (headers, 400, {"model": "m", "max_tokens": 5, "messages": [hi], "seed": 3}),
            (headers, 400, {"model": "m", "max_tokens": 5, "messages": [hi, tool_use, hi]}),
            (headers, 400, {"model": "m", "max_tokens": 5, "messages": [hi, {"role": "assistant", "content": [{"type": "text", "text": ""}]}]}),
            (headers, 200, {"model": "m", "max_tokens": 5, "messages": [hi, tool_use, {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "42"}]}]}),
        ]
        with AnthropicSim() as sim:
            for case_headers, status, body in cases:
                response = httpx.post(f"{sim.url}/v1/messages", json=body, headers=case_headers)
                self.assertEqual(response.status_code, status, body)
                if status != 200:
                    self.assertEqual(response.json()["type"], "error")
                    self.assertEqual(set(response.json()["error"]), {"type", "message"})


class AnthropicThroughCityTests(AiLiveTestCase):
    """The official OpenAI SDK against City, with Claude served by the Anthropic simulator: the
    caller sees OpenAI's shapes only."""

    def setUp(self) -> None:
        super().setUp()
        self.anthropic = AnthropicSim().start()
        self.addCleanup(self.anthropic.stop)
        self.set_env(ANTHROPIC_API_KEY=ANTHROPIC_KEY, ANTHROPIC_BASE_URL=self.anthropic.url)
        self.sdk = openai.OpenAI(base_url=self.city.url + "/v1", api_key=self.token, max_retries=0, timeout=10)
        self.addCleanup(self.sdk.close)

    def test_the_openai_sdk_cannot_tell_the_upstream_is_anthropic(self) -> None:
        raw = self.sdk.chat.completions.with_raw_response.create(
            model="claude-sonnet-4-6", max_tokens=50,
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
        validate(raw.http_response.json(), "CreateChatCompletionResponse")
        for trace in ("anthropic", "msg_", "end_turn", "input_tokens"):
            self.assertNotIn(trace, raw.http_response.text.lower())
        completion = raw.parse()
        self.assertEqual((completion.model, completion.choices[0].message.content), ("claude-sonnet-4-6", self.anthropic.script.text))
        self.assertEqual((completion.usage.prompt_tokens, completion.usage.completion_tokens), (11, 7))
        sent = self.anthropic.last_request
        self.assertEqual((sent.path, sent.headers["x-api-key"]), ("/v1/messages", ANTHROPIC_KEY))
        self.assertEqual((sent.json["system"], sent.json["max_tokens"]), ([{"type": "text", "text": "Be brief."}], 50))

        self.anthropic.script.tool_call = ("get_weather", {"city": "Paris"})
        chunks = list(self.sdk.chat.completions.create(
            model="claude-sonnet-4-6", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER_TOOL],
            stream=True, stream_options={"include_usage": True}))
        arguments = "".join(call.function.arguments or "" for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or [])
        self.assertEqual(json.loads(arguments), {"city": "Paris"})
        self.assertEqual([c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason], ["tool_calls"])
        self.assertEqual((chunks[-1].choices, chunks[-1].usage.total_tokens), ([], 18))

        self.anthropic.fail(400, message="messages.0.content.0.text: field required")
        with self.assertRaises(openai.BadRequestError) as caught:
            self.sdk.chat.completions.create(model="claude-sonnet-4-6", messages=[{"role": "user", "content": "Hi"}])
        validate(caught.exception.response.json(), "ErrorResponse")
        self.assertIn("field required", caught.exception.message)

    def test_parallel_tool_calls_stream_through_city_as_indexed_calls(self) -> None:
        tools = [WEATHER_TOOL, TIME_TOOL]
        self.anthropic.play("stream_tool_use")
        calls: dict[int, dict[str, str]] = {}
        for chunk in self.sdk.chat.completions.create(
                model="claude-sonnet-4-6", messages=[{"role": "user", "content": "Weather and time in Paris?"}], tools=tools, stream=True):
            for piece in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                call = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += piece.id or ""
                call["name"] += (piece.function.name or "") if piece.function else ""
                call["arguments"] += (piece.function.arguments or "") if piece.function else ""
        self.assertEqual(sorted(calls), [0, 1])
        self.assertEqual([calls[i]["name"] for i in (0, 1)], ["get_weather", "get_time"])
        self.assertTrue(all(calls[i]["id"].startswith("call_") for i in (0, 1)))
        for i in (0, 1):
            json.loads(calls[i]["arguments"])  # each call's fragments make one JSON object

        self.anthropic.play("stream_tool_use")
        user = httpx.Client(base_url=self.city.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        self.addCleanup(user.close)
        response = user.post("/v1/ai/stream", json={"model": "claude-sonnet-4-6", "prompt": "Weather and time?", "tools": tools})
        done = json.loads([line for line in response.text.splitlines() if line.startswith("data: ")][-1][len("data: "):])
        self.assertEqual([(p["type"], p["name"]) for p in done["parts"] if p["type"] == "tool_call"],
                         [("tool_call", "get_weather"), ("tool_call", "get_time")])
        self.assertEqual(done["finish_reason"], "tool_calls")

    def test_an_openai_field_claude_cannot_honour_is_refused_by_name_before_going_upstream(self) -> None:
        for extra, param in (({"logit_bias": {"1734": -100}}, "logit_bias"), ({"reasoning_effort": "low"}, "reasoning_effort"),
                             ({"n": 2}, "n"), ({"response_format": {"type": "json_object"}}, "response_format")):
            with self.subTest(extra=extra):
                with self.assertRaises(openai.BadRequestError) as caught:
                    self.sdk.chat.completions.create(model="claude-sonnet-4-6", messages=[{"role": "user", "content": "Hi"}], **extra)
                validate(caught.exception.response.json(), "ErrorResponse")
                self.assertEqual(caught.exception.param, param)
                self.assertIn(param, caught.exception.message)
        self.assertEqual(self.anthropic.requests, [])
        self.sdk.chat.completions.create(model="claude-sonnet-4-6", messages=[{"role": "user", "content": "Hi"}],
                                         seed=7, store=True, extra_body={"top_k": 5})
        self.assertEqual(self.anthropic.last_request.json["top_k"], 5)
        self.assertNotIn("seed", self.anthropic.last_request.json)
