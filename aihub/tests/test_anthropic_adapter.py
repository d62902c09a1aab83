"""The Anthropic Messages adapter against the Anthropic simulator: the shared adapter contract, then
what the translation to and from Anthropic's wire format must get right."""

import json
import time
import unittest
from typing import Any

import httpx
import openai
import pydantic
from openai.types.chat import ChatCompletionFunctionToolParam

from aihub.adapters.anthropic import AnthropicAdapter
from aihub.adapters.base import Upstream
from aihub.catalog import models_by_id
from aihub.tests.adapter_contract import PIXEL_PNG, WEATHER_TOOL, AdapterContract
from aihub.tests.live import AiLiveTestCase, ThroughCityMixin
from aihub.tests.openai_schema import validate
from aihub.tests.upstream.anthropic_sim import AnthropicSim, signature_of
from aihub.tests.upstream.sim import Received

ANTHROPIC_KEY = "sk-ant-test-not-a-real-key"
TIME_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}}},
}


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
        return [
            block["text"] for m in received.json["messages"] if m["role"] == "user" for block in m["content"] if block["type"] == "text"
        ]

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
        messages = [
            {"role": "user", "content": "First."},
            {"role": "user", "content": "Second."},
            {"role": "assistant", "content": "Noted."},
            {"role": "assistant", "content": [{"type": "text", "text": "Anything else?"}]},
            {"role": "user", "content": "Yes."},
        ]
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
        body["messages"][1]["content"] = [
            {"type": "image_url", "image_url": {"url": PIXEL_PNG}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}},
            {"type": "text", "text": ""},
            {"type": "text", "text": "Same animal?"},
        ]
        await self.adapter.chat(self.upstream, body)
        blocks = self.sent()["messages"][0]["content"]
        self.assertEqual(
            blocks[0], {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL_PNG.split(",", 1)[1]}}
        )
        self.assertEqual(blocks[1], {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}})
        self.assertEqual(blocks[2:], [{"type": "text", "text": "Same animal?"}])  # empty text parts are dropped

    async def test_tools_and_tool_choice_are_translated(self) -> None:
        cases = [
            ("auto", {"type": "auto"}),
            ("required", {"type": "any"}),
            ("none", {"type": "none"}),
            ({"type": "function", "function": {"name": "get_time"}}, {"type": "tool", "name": "get_time"}),
        ]
        for openai_choice, anthropic_choice in cases:
            await self.adapter.chat(self.upstream, self.chat_body(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=openai_choice))
            self.assertEqual(self.sent()["tool_choice"], anthropic_choice)
        self.assertEqual(
            self.sent()["tools"],
            [
                {"name": "get_weather", "description": "Weather of a city.", "input_schema": WEATHER_TOOL["function"]["parameters"]},
                {"name": "get_time", "input_schema": TIME_TOOL["function"]["parameters"]},
            ],
        )
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
        self.assertEqual(
            [(b["name"], b["input"]["location"]) for b in tool_uses],
            [("get_weather", "San Francisco, CA"), ("get_weather", "Paris, France")],
        )
        self.assertEqual(sent[1]["content"][0], {"type": "text", "text": "I'll check the weather in both cities."})
        results = sent[2]["content"]
        self.assertEqual([b["type"] for b in results], ["tool_result", "tool_result", "text"])
        self.assertEqual([b["tool_use_id"] for b in results[:2]], [b["id"] for b in tool_uses])
        self.assertEqual(results[0]["content"], '{"temperature": 18}')

    async def test_what_anthropic_cannot_do_is_refused_before_going_upstream(self) -> None:
        audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
        cases: list[tuple[dict[str, Any], str]] = [
            ({"n": 2}, "n"),
            ({"temperature": "hot"}, "temperature"),
            ({"response_format": "json"}, "response_format"),
            ({"logprobs": True}, "logprobs"),
            (
                {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array"}}}},
                "response_format.json_schema.schema",
            ),
            ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format.json_schema.schema"),
            ({"response_format": {"type": "xml"}}, "response_format.type"),
            ({"messages": [{"role": "user", "content": [audio]}]}, "messages[0].content[0].type"),
            (
                {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]},
                "messages[0].content[0].image_url.url",
            ),
            ({"messages": [{"role": "system", "content": "Only a system prompt."}]}, "messages"),
            (
                {
                    "messages": [
                        {"role": "user", "content": "Hi"},
                        {
                            "role": "assistant",
                            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}],
                        },
                    ]
                },
                "messages[1].tool_calls[0].function.arguments",
            ),
            ({"logit_bias": {"50256": -100}}, "logit_bias"),
            ({"presence_penalty": 0.5}, "presence_penalty"),
            ({"frequency_penalty": 1}, "frequency_penalty"),
            ({"reasoning_effort": "extreme"}, "reasoning_effort"),
            ({"reasoning_effort": "low", "thinking": {"type": "enabled", "budget_tokens": 2048}}, "thinking"),
            ({"functions": [{"name": "f", "parameters": {"type": "object"}}]}, "functions"),
            ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
            ({"web_search_options": {}}, "web_search_options"),
            ({"verbosity": "low"}, "verbosity"),
            ({"system": "Be terse."}, "system"),  # an extension field that City sets itself from the messages
        ]
        await self.assert_refused_before_sending(cases)

    async def test_bookkeeping_fields_and_seed_are_left_out_and_neutral_values_pass(self) -> None:
        await self.adapter.chat(
            self.upstream,
            self.chat_body(
                store=True,
                metadata={"run": "7"},
                service_tier="auto",
                prompt_cache_key="k1",
                safety_identifier="u-hash",
                seed=3,
                stream_options={"include_usage": True},
                n=1,
                logprobs=False,
                presence_penalty=0,
                frequency_penalty=0.0,
                logit_bias={},
                parallel_tool_calls=True,
                verbosity=None,
                reasoning_effort=None,
            ),
        )
        self.assertEqual(set(self.sent()), {"model", "messages", "max_tokens", "system"})

    async def test_fields_that_are_not_openais_are_forwarded_to_anthropic(self) -> None:
        thinking = {"type": "enabled", "budget_tokens": 1024}
        await self.adapter.chat(self.upstream, self.chat_body(max_tokens=2048, thinking=thinking))
        self.assertEqual((self.sent()["thinking"], self.sent()["max_tokens"]), (thinking, 2048))
        await self.adapter.chat(self.upstream, self.chat_body(top_k=5))
        self.assertEqual(self.sent()["top_k"], 5)
        error = await self.expect_error(self.adapter.chat(self.upstream, self.chat_body(top_kk=5)))
        self.assertEqual((error.status, error.message), (400, "top_kk: Extra inputs are not permitted"))  # Anthropic's own word

    # --- reasoning_effort: extended thinking ----------------------------------------------------

    async def test_reasoning_effort_becomes_a_thinking_budget_with_room_for_the_answer(self) -> None:
        # claude-haiku-4-5 answers at most 64,000 tokens (the catalog's meta): the ceiling for max_tokens,
        # which reaches the adapter on the upstream (aihub.upstreams.resolve puts it there).
        haiku = Upstream(
            provider="anthropic",
            adapter="anthropic",
            model="claude-haiku-4-5-20251001",
            base_url=self.sim.url,
            api_key="k",
            max_output_tokens=models_by_id()["claude-haiku-4-5"].max_output_tokens,
        )
        cases = [  # (effort, caller's max_tokens) → (budget_tokens, max_tokens sent)
            (("minimal", 50), (1024, 1074)),
            (("low", 50), (2048, 2098)),  # the answer keeps its 50 tokens beside the budget
            (("medium", 20000), (8192, 20000)),  # room enough: OpenAI counts reasoning inside max_tokens
            (("high", None), (16384, 16384 + 4096)),
            (("xhigh", None), (32768, 32768 + 4096)),
            (("max", None), (64000 - 4096, 64000)),  # at the model's ceiling the budget gives way
            (("max", 64000), (32000, 64000)),  # … keeping at least half for the answer
        ]
        for (effort, max_tokens), expected in cases:
            body = self.chat_body(reasoning_effort=effort, max_tokens=max_tokens)
            answer = await self.adapter.chat(haiku, body)
            sent = self.sent()
            self.assertEqual(sent["thinking"], {"type": "enabled", "budget_tokens": expected[0]}, effort)
            self.assertEqual(sent["max_tokens"], expected[1], effort)
            validate(answer, "CreateChatCompletionResponse")
        await self.adapter.chat(haiku, self.chat_body(reasoning_effort="none"))
        self.assertEqual((self.sent()["thinking"], self.sent()["max_tokens"]), ({"type": "disabled"}, 50))
        # An upstream without a known ceiling: the budget and answer room stand.
        await self.adapter.chat(self.upstream, self.chat_body(reasoning_effort="max", max_tokens=None))
        self.assertEqual((self.sent()["thinking"]["budget_tokens"], self.sent()["max_tokens"]), (65536, 65536 + 4096))

    async def test_thinking_shows_as_reasoning_content_with_its_signed_blocks(self) -> None:
        answer = await self.adapter.chat(self.upstream, self.chat_body(reasoning_effort="low"))
        validate(answer, "CreateChatCompletionResponse")
        message = answer["choices"][0]["message"]
        self.assertEqual((message["content"], message["reasoning_content"]), (self.sim.script.text, self.sim.script.reasoning))
        self.assertEqual(
            message["thinking_blocks"],
            [{"type": "thinking", "thinking": self.sim.script.reasoning, "signature": signature_of(self.sim.script.reasoning)}],
        )
        # Without thinking there is neither.
        answer = await self.adapter.chat(self.upstream, self.chat_body())
        self.assertEqual(set(answer["choices"][0]["message"]), {"role", "content", "refusal"})

    async def test_a_streamed_thinking_answer_has_reasoning_deltas_then_the_signed_block(self) -> None:
        chunks = await self.collect(self.chat_body(stream=True, reasoning_effort="medium"))
        for chunk in chunks:
            validate(chunk, "CreateChatCompletionStreamResponse")
        deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
        self.assertEqual("".join(d.get("reasoning_content") or "" for d in deltas), self.sim.script.reasoning)
        self.assertEqual("".join(d.get("content") or "" for d in deltas), self.sim.script.text)
        blocks = [b for d in deltas for b in d.get("thinking_blocks") or []]
        self.assertEqual(
            blocks, [{"type": "thinking", "thinking": self.sim.script.reasoning, "signature": signature_of(self.sim.script.reasoning)}]
        )
        # The whole block comes after the last reasoning delta and before the answer's text.
        kinds = [next(iter(k for k in ("reasoning_content", "thinking_blocks", "content") if d.get(k)), None) for d in deltas]
        self.assertEqual([k for k in kinds if k], ["reasoning_content", "reasoning_content", "thinking_blocks", *["content"] * 4])
        self.assertEqual(chunks[-1]["usage"]["total_tokens"], 18)

    async def test_a_redacted_thinking_block_is_handed_on_and_taken_back_unchanged(self) -> None:
        redacted = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"}
        self.sim.play("stream_redacted_thinking")
        chunks = await self.collect(self.chat_body(stream=True, reasoning_effort="low"))
        self.assertEqual([b for c in chunks if c["choices"] for b in c["choices"][0]["delta"].get("thinking_blocks") or []], [redacted])
        self.sim.script.tool_call = ("get_weather", {"city": "Paris"})
        messages = [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "thinking_blocks": [redacted],
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
        ]
        await self.adapter.chat(self.upstream, {"model": "m", "messages": messages, "tools": [WEATHER_TOOL], "reasoning_effort": "low"})
        self.assertEqual(self.sent()["messages"][1]["content"][0], redacted)

    async def test_a_tool_loop_while_thinking_sends_the_signed_thinking_back(self) -> None:
        self.sim.script.tool_call = ("get_weather", {"city": "Paris"})
        body = self.chat_body(tools=[WEATHER_TOOL], reasoning_effort="low")
        first = await self.adapter.chat(self.upstream, body)
        assistant = first["choices"][0]["message"]
        self.assertEqual(first["choices"][0]["finish_reason"], "tool_calls")
        result = {"role": "tool", "tool_call_id": assistant["tool_calls"][0]["id"], "content": "18 C"}
        self.sim.script.tool_call = None
        answer = await self.adapter.chat(self.upstream, {**body, "messages": [*body["messages"], assistant, result]})
        self.assertEqual(answer["choices"][0]["message"]["content"], self.sim.script.text)
        sent_assistant = self.sent()["messages"][1]["content"]
        self.assertEqual([b["type"] for b in sent_assistant], ["thinking", "tool_use"])
        self.assertEqual(sent_assistant[0], assistant["thinking_blocks"][0])

        # Without the blocks, City says which field is missing instead of sending what Anthropic refuses.
        requests = len(self.sim.requests)
        bare = {k: v for k, v in assistant.items() if k not in ("thinking_blocks", "reasoning_content")}
        error = await self.expect_error(self.adapter.chat(self.upstream, {**body, "messages": [*body["messages"], bare, result]}))
        self.assertEqual((error.status, error.param), (400, "messages[2].thinking_blocks"))
        self.assertEqual(len(self.sim.requests), requests)
        # The same history is fine once thinking is off: Claude needs no thinking back then.
        await self.adapter.chat(self.upstream, {**body, "reasoning_effort": None, "messages": [*body["messages"], assistant, result]})
        self.assertEqual([b["type"] for b in self.sent()["messages"][1]["content"]], ["tool_use"])
        # An altered thinking block fails Anthropic's signature check; its 400 is passed on.
        altered = {**assistant, "thinking_blocks": [{**assistant["thinking_blocks"][0], "thinking": "Something else."}]}
        error = await self.expect_error(self.adapter.chat(self.upstream, {**body, "messages": [*body["messages"], altered, result]}))
        self.assertEqual(error.status, 400)
        self.assertIn("Invalid `signature` in `thinking` block", error.message)
        error = await self.expect_error(
            self.adapter.chat(
                self.upstream, {**body, "messages": [*body["messages"], {**assistant, "thinking_blocks": [{"type": "thinking"}]}, result]}
            )
        )
        self.assertEqual((error.status, error.param), (400, "messages[2].thinking_blocks[0]"))

    async def test_what_thinking_forbids_is_refused_by_name_before_going_upstream(self) -> None:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"temperature": 0.5}, "temperature"),
            ({"top_p": 0.5}, "top_p"),
            ({"top_k": 5}, "top_k"),
            ({"tools": [WEATHER_TOOL], "tool_choice": "required"}, "tool_choice"),
            ({"tools": [WEATHER_TOOL], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}, "tool_choice"),
            ({"response_format": {"type": "json_object"}}, "response_format"),
        ]
        for extra, param in cases:
            error = await self.expect_error(self.adapter.chat(self.upstream, self.chat_body(reasoning_effort="high", **extra)))
            self.assertEqual((error.status, error.param), (400, param), extra)
            self.assertIn("`reasoning_effort`", error.message)
        # The caller's own `thinking` is held to the same rules.
        thinking = {"type": "enabled", "budget_tokens": 1024}
        error = await self.expect_error(
            self.adapter.chat(self.upstream, self.chat_body(thinking=thinking, max_tokens=2048, temperature=0.2))
        )
        self.assertEqual((error.param, "`thinking`" in error.message), ("temperature", True))
        self.assertEqual(self.sim.requests, [])
        # What Anthropic allows while Claude thinks goes through: temperature 1 (OpenAI's 1 or more), top_p ≥ 0.95, auto tools.
        await self.adapter.chat(self.upstream, self.chat_body(reasoning_effort="low", temperature=1.5))
        self.assertEqual(self.sent()["temperature"], 1.0)
        await self.adapter.chat(self.upstream, self.chat_body(reasoning_effort="low", top_p=0.97, tools=[WEATHER_TOOL], tool_choice="auto"))
        self.assertEqual((self.sent()["top_p"], self.sent()["tool_choice"]), (0.97, {"type": "auto"}))
        # The caller's temperature stays when thinking is off.
        await self.adapter.chat(self.upstream, self.chat_body(reasoning_effort="none", temperature=0.2))
        self.assertEqual(self.sent()["temperature"], 0.2)

    # --- response_format: JSON through a forced tool call --------------------------------------

    async def test_a_json_schema_becomes_a_forced_tool_whose_input_is_the_answer(self) -> None:
        schema = {
            "type": "object",
            "properties": {"greeting": {"type": "string"}, "words": {"type": "integer"}},
            "required": ["greeting", "words"],
            "additionalProperties": False,
        }
        response_format = {"type": "json_schema", "json_schema": {"name": "greeting", "schema": schema, "strict": True}}
        answer = await self.adapter.chat(self.upstream, self.chat_body(response_format=response_format))
        validate(answer, "CreateChatCompletionResponse")
        sent = self.sent()
        self.assertEqual(
            sent["tools"], [{"name": "json_output", "description": "Answer with a JSON object: greeting.", "input_schema": schema}]
        )
        self.assertEqual(sent["tool_choice"], {"type": "tool", "name": "json_output"})
        choice = answer["choices"][0]
        self.assertEqual((json.loads(choice["message"]["content"]), choice["finish_reason"]), (self.sim.script.json, "stop"))
        self.assertNotIn("tool_calls", choice["message"])

        await self.adapter.chat(self.upstream, self.chat_body(response_format={"type": "json_object"}))
        self.assertEqual(self.sent()["tools"][0]["input_schema"], {"type": "object"})
        await self.adapter.chat(self.upstream, self.chat_body(response_format={"type": "text"}))
        self.assertNotIn("tools", self.sent())

    async def test_a_streamed_json_answer_comes_as_content_deltas(self) -> None:
        chunks = await self.collect(self.chat_body(stream=True, response_format={"type": "json_object"}))
        for chunk in chunks:
            validate(chunk, "CreateChatCompletionStreamResponse")
        deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
        self.assertEqual(json.loads("".join(d.get("content") or "" for d in deltas)), self.sim.script.json)
        self.assertFalse(any("tool_calls" in d for d in deltas))
        self.assertEqual([c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]], ["stop"])

    async def test_a_json_answer_keeps_the_callers_tools_but_not_a_forced_one(self) -> None:
        await self.adapter.chat(
            self.upstream, self.chat_body(response_format={"type": "json_object"}, tools=[WEATHER_TOOL], tool_choice="auto")
        )
        self.assertEqual([t["name"] for t in self.sent()["tools"]], ["get_weather", "json_output"])
        self.assertEqual(self.sent()["tool_choice"], {"type": "tool", "name": "json_output"})
        requests = len(self.sim.requests)
        named_json_output = {"type": "function", "function": {"name": "json_output", "parameters": {"type": "object"}}}
        for extra, param in (
            ({"tools": [WEATHER_TOOL], "tool_choice": "required"}, "tool_choice"),
            ({"tools": [named_json_output]}, "tools"),
        ):
            error = await self.expect_error(
                self.adapter.chat(self.upstream, self.chat_body(response_format={"type": "json_object"}, **extra))
            )
            self.assertEqual((error.status, error.param), (400, param))
        self.assertEqual(len(self.sim.requests), requests)

    # --- answer translation ---------------------------------------------------------------------

    async def test_a_recorded_tool_use_answer_becomes_openai_tool_calls(self) -> None:
        self.sim.play("message_tool_use")
        answer = await self.adapter.chat(self.upstream, self.chat_body(tools=[WEATHER_TOOL]))
        validate(answer, "CreateChatCompletionResponse")
        message = answer["choices"][0]["message"]
        self.assertEqual(message["content"], "I'll check the weather in both cities.")
        self.assertEqual(
            [json.loads(c["function"]["arguments"]) for c in message["tool_calls"]],
            [{"location": "San Francisco, CA", "unit": "celsius"}, {"location": "Paris, France", "unit": "celsius"}],
        )
        self.assertEqual(answer["choices"][0]["finish_reason"], "tool_calls")
        self.assertEqual(answer["usage"], {"prompt_tokens": 384, "completion_tokens": 112, "total_tokens": 496})

    async def test_recorded_text_answers_plain_and_streamed(self) -> None:
        self.sim.play("message")
        answer = await self.adapter.chat(self.upstream, self.chat_body())
        validate(answer, "CreateChatCompletionResponse")
        self.assertEqual(
            (answer["choices"][0]["message"]["content"], answer["choices"][0]["finish_reason"]),
            ("Hello! How can I help you today?", "stop"),
        )
        self.assertEqual(answer["usage"], {"prompt_tokens": 12, "completion_tokens": 10, "total_tokens": 22})
        self.sim.play("stream_text")
        chunks = await self.collect(self.chat_body(stream=True))
        self.assertEqual(
            [c["choices"][0]["delta"] for c in chunks[:4]],
            [{"role": "assistant", "content": ""}, {"content": "Hello"}, {"content": "!"}, {"content": " How can I help?"}],
        )
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
        # Cache writes and reads are prompt tokens too; reads are reported as cached, writes as
        # cache_creation_tokens (which the Meter bills at the cache-write price).
        self.assertEqual(
            answer["usage"],
            {
                "prompt_tokens": 21 + 188 + 1800,
                "completion_tokens": 16,
                "total_tokens": 2025,
                "prompt_tokens_details": {"cached_tokens": 1800, "cache_creation_tokens": 188},
            },
        )

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
        self.assertEqual(
            [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]], ["tool_calls"]
        )
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
            (
                headers,
                400,
                {"model": "m", "max_tokens": 5, "messages": [hi, {"role": "assistant", "content": [{"type": "text", "text": ""}]}]},
            ),
            (
                headers,
                200,
                {
                    "model": "m",
                    "max_tokens": 5,
                    "messages": [
                        hi,
                        tool_use,
                        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "42"}]},
                    ],
                },
            ),
        ]
        thinking = {"type": "enabled", "budget_tokens": 1024}
        signed = {"type": "thinking", "thinking": "Hmm.", "signature": signature_of("Hmm.")}
        tool_result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "42"}]}
        tools = [{"name": "f", "input_schema": {"type": "object"}}]
        for status, extra in [
            (400, {"thinking": {"type": "enabled", "budget_tokens": 1000}, "max_tokens": 5000}),
            (400, {"thinking": thinking, "max_tokens": 1024}),
            (400, {"thinking": thinking, "max_tokens": 2000, "temperature": 0.5}),
            (200, {"thinking": thinking, "max_tokens": 2000, "temperature": 1}),
            (400, {"thinking": thinking, "max_tokens": 2000, "top_k": 5}),
            (400, {"thinking": thinking, "max_tokens": 2000, "top_p": 0.9}),
            (400, {"thinking": thinking, "max_tokens": 2000, "tools": tools, "tool_choice": {"type": "any"}}),
            (400, {"thinking": thinking, "max_tokens": 2000, "tools": tools, "messages": [hi, tool_use, tool_result]}),
            (
                200,
                {
                    "thinking": thinking,
                    "max_tokens": 2000,
                    "tools": tools,
                    "messages": [hi, {"role": "assistant", "content": [signed, *tool_use["content"]]}, tool_result],
                },
            ),
            (
                400,
                {
                    "thinking": thinking,
                    "max_tokens": 2000,
                    "tools": tools,
                    "messages": [hi, {"role": "assistant", "content": [{**signed, "thinking": "Hmm!"}, *tool_use["content"]]}, tool_result],
                },
            ),
            (
                200,
                {
                    "thinking": {"type": "disabled"},
                    "max_tokens": 5,
                    "temperature": 0.5,
                    "tools": tools,
                    "messages": [hi, tool_use, tool_result],
                },
            ),
        ]:
            cases.append((headers, status, {"model": "m", "max_tokens": 5, "messages": [hi], **extra}))
        with AnthropicSim() as sim:
            for case_headers, status, body in cases:
                response = httpx.post(f"{sim.url}/v1/messages", json=body, headers=case_headers)
                self.assertEqual(response.status_code, status, body)
                if status != 200:
                    self.assertEqual(response.json()["type"], "error")
                    self.assertEqual(set(response.json()["error"]), {"type", "message"})


class AnthropicThroughCityTests(ThroughCityMixin[AnthropicSim], AiLiveTestCase):
    """The official OpenAI SDK against City, with Claude served by the Anthropic simulator: the
    caller sees OpenAI's shapes only."""

    simulator = AnthropicSim
    api_key_env, api_key, base_url_env = "ANTHROPIC_API_KEY", ANTHROPIC_KEY, "ANTHROPIC_BASE_URL"

    @property
    def anthropic(self) -> AnthropicSim:
        return self.provider

    def test_the_openai_sdk_cannot_tell_the_upstream_is_anthropic(self) -> None:
        raw = self.sdk.chat.completions.with_raw_response.create(
            model="claude-sonnet-4-6",
            max_tokens=50,
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        )
        validate(raw.http_response.json(), "CreateChatCompletionResponse")
        for trace in ("anthropic", "msg_", "end_turn", "input_tokens"):
            self.assertNotIn(trace, raw.http_response.text.lower())
        completion = raw.parse()
        self.assertEqual((completion.model, completion.choices[0].message.content), ("claude-sonnet-4-6", self.anthropic.script.text))
        assert completion.usage is not None
        self.assertEqual((completion.usage.prompt_tokens, completion.usage.completion_tokens), (11, 7))
        sent = self.anthropic.last_request
        self.assertEqual((sent.path, sent.headers["x-api-key"]), ("/v1/messages", ANTHROPIC_KEY))
        self.assertEqual((sent.json["system"], sent.json["max_tokens"]), ([{"type": "text", "text": "Be brief."}], 50))

        self.anthropic.script.tool_call = ("get_weather", {"city": "Paris"})
        chunks = list(
            self.sdk.chat.completions.create(
                model="claude-sonnet-4-6",
                messages=[{"role": "user", "content": "Weather in Paris?"}],
                tools=[WEATHER_TOOL],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        calls = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
        self.assertTrue(all(call.function is not None for call in calls))
        arguments = "".join(call.function.arguments or "" for call in calls if call.function is not None)
        self.assertEqual(json.loads(arguments), {"city": "Paris"})
        self.assertEqual([c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason], ["tool_calls"])
        usage = chunks[-1].usage
        assert usage is not None
        self.assertEqual((chunks[-1].choices, usage.total_tokens), ([], 18))

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
            model="claude-sonnet-4-6", messages=[{"role": "user", "content": "Weather and time in Paris?"}], tools=tools, stream=True
        ):
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
        done = json.loads([line for line in response.text.splitlines() if line.startswith("data: ")][-1][len("data: ") :])
        self.assertEqual(
            [(p["type"], p["name"]) for p in done["parts"] if p["type"] == "tool_call"],
            [("tool_call", "get_weather"), ("tool_call", "get_time")],
        )
        self.assertEqual(done["finish_reason"], "tool_calls")

    def test_an_openai_field_claude_cannot_honour_is_refused_by_name_before_going_upstream(self) -> None:
        for extra, param in (
            ({"logit_bias": {"1734": -100}}, "logit_bias"),
            ({"reasoning_effort": "low", "temperature": 0.3}, "temperature"),
            ({"n": 2}, "n"),
            ({"response_format": {"type": "json_object"}, "tool_choice": "required", "tools": [WEATHER_TOOL]}, "tool_choice"),
        ):
            with self.subTest(extra=extra):
                with self.assertRaises(openai.BadRequestError) as caught:
                    self.sdk.chat.completions.create(model="claude-sonnet-4-6", messages=[{"role": "user", "content": "Hi"}], **extra)
                validate(caught.exception.response.json(), "ErrorResponse")
                self.assertEqual(caught.exception.param, param)
                self.assertIn(param, caught.exception.message)
        self.assertEqual(self.anthropic.requests, [])
        self.sdk.chat.completions.create(
            model="claude-sonnet-4-6", messages=[{"role": "user", "content": "Hi"}], seed=7, store=True, extra_body={"top_k": 5}
        )
        self.assertEqual(self.anthropic.last_request.json["top_k"], 5)
        self.assertNotIn("seed", self.anthropic.last_request.json)

    def test_thinking_and_json_answers_through_the_openai_sdk(self) -> None:
        # A tool loop while Claude thinks: the SDK's own message object, appended as it is, carries the
        # signed thinking back (its `thinking_blocks` ride along as an extra field).
        self.anthropic.script.tool_call = ("get_weather", {"city": "Paris"})
        messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
        raw = self.sdk.chat.completions.with_raw_response.create(
            model="claude-sonnet-4-6", messages=messages, tools=[WEATHER_TOOL], reasoning_effort="low"
        )
        validate(raw.http_response.json(), "CreateChatCompletionResponse")
        message = raw.parse().choices[0].message
        assert message.model_extra is not None and message.tool_calls is not None
        self.assertEqual(message.model_extra["reasoning_content"], self.anthropic.script.reasoning)
        self.assertEqual(self.anthropic.last_request.json["thinking"], {"type": "enabled", "budget_tokens": 2048})
        messages += [message, {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "18 C"}]
        self.anthropic.script.tool_call = None
        follow_up = self.sdk.chat.completions.create(
            model="claude-sonnet-4-6", messages=messages, tools=[WEATHER_TOOL], reasoning_effort="low"
        )
        self.assertEqual(follow_up.choices[0].message.content, self.anthropic.script.text)
        self.assertEqual(
            self.anthropic.last_request.json["messages"][1]["content"][0]["signature"], signature_of(self.anthropic.script.reasoning)
        )

        # Streamed: reasoning deltas, then the answer; usage counts the thinking as completion tokens.
        reasoning, text = "", ""
        for chunk in self.sdk.chat.completions.create(
            model="claude-sonnet-4-6",
            messages=[{"role": "user", "content": "Hi"}],
            reasoning_effort="medium",
            stream=True,
            stream_options={"include_usage": True},
        ):
            if chunk.choices:
                reasoning += (chunk.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
                text += chunk.choices[0].delta.content or ""
        self.assertEqual((reasoning, text), (self.anthropic.script.reasoning, self.anthropic.script.text))

        # A JSON answer, parsed by the SDK into the caller's own type, plain and streamed.
        class Greeting(pydantic.BaseModel):
            greeting: str
            words: int

        parsed = self.sdk.chat.completions.parse(
            model="claude-sonnet-4-6", messages=[{"role": "user", "content": "Greet me."}], response_format=Greeting
        )
        self.assertEqual(parsed.choices[0].message.parsed, Greeting(**self.anthropic.script.json))
        self.assertEqual(parsed.choices[0].finish_reason, "stop")
        self.assertEqual(
            self.anthropic.last_request.json["tools"][0]["input_schema"], Greeting.model_json_schema() | {"additionalProperties": False}
        )
        content = "".join(
            c.choices[0].delta.content or ""
            for c in self.sdk.chat.completions.create(
                model="claude-sonnet-4-6",
                messages=[{"role": "user", "content": "Greet me."}],
                response_format={"type": "json_object"},
                stream=True,
            )
            if c.choices
        )
        self.assertEqual(json.loads(content), self.anthropic.script.json)

        # City's own text API takes reasoning_effort too: the thinking is a reasoning part.
        user = httpx.Client(base_url=self.city.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        self.addCleanup(user.close)
        answer = user.post("/v1/ai/text", json={"model": "claude-sonnet-4-6", "prompt": "Hi", "reasoning_effort": "low"}).json()
        self.assertEqual(
            answer["parts"],
            [{"type": "reasoning", "text": self.anthropic.script.reasoning}, {"type": "text", "text": self.anthropic.script.text}],
        )
