"""The Messages API's translation, without a server: Anthropic requests to OpenAI chat bodies (and the
400s naming the field for what cannot go), chat answers to Anthropic messages, and chat chunks to
Anthropic's stream events in their order — each message and event validated against the anthropic
SDK's types (aihub/tests/anthropic_schema.py)."""

import unittest
from typing import Any

from aihub.adapters.base import Upstream, UpstreamError
from aihub.catalog import models_by_id
from aihub.messages_events import ChunkTranslator
from aihub.messages_request import ANTHROPIC_FIELDS, MESSAGES
from aihub.messages_translate import (
    HINT_FIELDS,
    REFUSED_FIELDS,
    TRANSLATED_FIELDS,
    chat_request,
    for_upstream,
    message_from_completion,
    thinking_toggle,
)
from aihub.tests.anthropic_schema import assert_event_order, validate_event, validate_message
from city.errors import ApiError

HI = [{"role": "user", "content": "Hi"}]
DEEPSEEK = models_by_id()["deepseek-v4-flash"]
NO_REASONING = models_by_id()["gpt-4.1"]


def translated(**body: Any) -> dict[str, Any]:
    request = {"model": "deepseek-v4-flash", "max_tokens": 100, "messages": HI, **body}
    return chat_request(MESSAGES.validate(request), DEEPSEEK)


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def stream_of(chunks: list[dict[str, Any]], *, thinking: bool = False) -> list[dict[str, Any]]:
    """The events a translator makes of these chunks, a usage chunk last, each validated."""
    translator = ChunkTranslator("deepseek-v4-flash", 40, thinking=thinking)
    events = translator.start()
    for c in chunks:
        events += translator.feed(c)
    events += translator.finish({"prompt_tokens": 40, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 30}})
    for event in events:
        validate_event(event)
    assert_event_order(events)
    return events


class RequestTranslationTests(unittest.TestCase):
    def test_a_conversation_with_tools_becomes_chat_messages_in_order(self) -> None:
        messages = [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18°C"}]},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "Timeout", "is_error": True},
                    {"type": "text", "text": "And tomorrow?"},
                ],
            },
            {"role": "system", "content": "Answer in Celsius."},
        ]
        chat = translated(
            messages=messages,
            tools=[{"name": "get_weather", "input_schema": {"type": "object"}, "strict": True}],
            tool_choice={"type": "any", "disable_parallel_tool_use": True},
        )
        self.assertEqual(
            chat["messages"],
            [
                {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
                {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [
                        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                        {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
                    ],
                },
                {"role": "tool", "tool_call_id": "toolu_1", "content": "18°C"},
                {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: Timeout"},
                {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]},
                {"role": "system", "content": "Answer in Celsius."},
            ],
        )
        self.assertEqual(
            chat["tools"], [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}, "strict": True}}]
        )
        self.assertEqual((chat["tool_choice"], chat["parallel_tool_calls"]), ("required", False))

    def test_a_tool_results_images_follow_in_a_user_message(self) -> None:
        image = {"type": "image", "source": {"type": "url", "url": "https://example.com/shot.png"}}
        messages = [
            {"role": "user", "content": "Screenshot?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "screenshot", "input": {}}]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "Done"}, image]}],
            },
        ]
        chat = translated(messages=messages)
        self.assertEqual(
            chat["messages"][2:],
            [
                {"role": "tool", "tool_call_id": "t1", "content": "Done"},
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/shot.png"}}]},
            ],
        )

    def test_thinking_becomes_a_reasoning_effort_on_models_that_reason(self) -> None:
        for budget, effort in ((1024, "low"), (4000, "low"), (10000, "medium"), (31999, "high")):
            with self.subTest(budget=budget):
                chat = translated(max_tokens=64000, thinking={"type": "enabled", "budget_tokens": budget})
                self.assertEqual(chat["reasoning_effort"], effort)
        self.assertEqual(translated(thinking={"type": "adaptive"}, output_config={"effort": "max"})["reasoning_effort"], "max")
        self.assertNotIn("reasoning_effort", translated(thinking={"type": "between_tools"}))  # the model's own default
        self.assertNotIn("reasoning_effort", translated(thinking={"type": "disabled"}, output_config={"effort": "low"}))
        request = MESSAGES.validate(
            {"model": "gpt-4.1", "max_tokens": 100, "messages": HI, "thinking": {"type": "enabled", "budget_tokens": 50}}
        )
        self.assertNotIn("reasoning_effort", chat_request(request, NO_REASONING))  # a model that does not reason answers without

    def test_every_anthropic_field_is_translated_left_out_or_refused(self) -> None:
        self.assertEqual(ANTHROPIC_FIELDS, TRANSLATED_FIELDS | HINT_FIELDS | set(REFUSED_FIELDS))

    def test_hints_are_left_out_and_extensions_forwarded(self) -> None:
        chat = translated(
            metadata={"user_id": "u"},
            service_tier="auto",
            cache_control={"type": "ephemeral"},
            context_management={"edits": []},
            top_k=5,
            repetition_penalty=1.1,
            studio_id="studio_1",
        )
        self.assertEqual(set(chat), {"model", "messages", "max_tokens", "top_k", "repetition_penalty"})

    def test_each_upstream_gets_the_body_it_takes(self) -> None:
        chat = translated(
            messages=[
                *HI,
                {
                    "role": "assistant",
                    "content": [{"type": "thinking", "thinking": "Hm.", "signature": ""}, {"type": "text", "text": "Yo"}],
                },
                *HI,
            ]
        )

        def upstream(provider: str, adapter: str) -> Upstream:
            return Upstream(provider=provider, adapter=adapter, model="m", base_url="http://127.0.0.1:9", api_key=None)

        deepseek = for_upstream(chat, upstream("deepseek", "openai"), thinking=False)
        self.assertEqual(deepseek["messages"][1]["reasoning_content"], "Hm.")
        self.assertNotIn("thinking", deepseek)  # asked nothing: DeepSeek's default
        for kind, toggle in (("enabled", "enabled"), ("adaptive", "enabled"), ("disabled", "disabled")):
            thinking = {"type": kind, "budget_tokens": 2000} if kind == "enabled" else {"type": kind}
            self.assertEqual(thinking_toggle({"thinking": thinking}, DEEPSEEK), toggle)
            sent = for_upstream(chat, upstream("deepseek", "openai"), thinking=False, toggle=toggle)
            self.assertEqual(sent["thinking"], {"type": toggle})
            self.assertNotIn("thinking", for_upstream(chat, upstream("moonshot", "openai"), thinking=False, toggle=toggle))
        self.assertIsNone(thinking_toggle({"thinking": {"type": "enabled", "budget_tokens": 2000}}, NO_REASONING))
        stopped = for_upstream(chat, upstream("google", "gemini"), thinking=False, toggle="disabled")
        self.assertEqual(stopped["reasoning_effort"], "none")
        openai = for_upstream(chat, upstream("openai", "openai"), thinking=False)
        self.assertEqual((openai["max_completion_tokens"], "max_tokens" in openai), (100, False))
        self.assertNotIn("reasoning_content", openai["messages"][1])
        gemini = for_upstream(chat, upstream("google", "gemini"), thinking=True)
        self.assertEqual(gemini["generationConfig"], {"thinkingConfig": {"includeThoughts": True}})
        self.assertNotIn("reasoning_content", gemini["messages"][1])
        self.assertIn("reasoning_content", chat["messages"][1])  # the shared body is left alone

    def test_what_cannot_be_translated_is_a_400_naming_the_field(self) -> None:
        doc = {"type": "document", "source": {"type": "text", "data": "x"}, "citations": {"enabled": True}}
        cases: list[tuple[dict[str, Any], str]] = [
            ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, "tools[0].type"),
            ({"tools": [{"name": "t"}]}, "tools[0].input_schema"),
            ({"mcp_servers": [{"type": "url", "url": "https://mcp.test", "name": "m"}]}, "mcp_servers"),
            ({"messages": [{"role": "user", "content": [doc]}]}, "messages[0].content[0].citations"),
            (
                {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]},
                "messages[0].content[0].source.type",
            ),
            ({"messages": [{"role": "user", "content": [{"type": "container_upload", "file_id": "f"}]}]}, "messages[0].content[0].type"),
            (
                {"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}]}]},
                "messages[0].content[0].type",
            ),
            ({"output_config": {"format": {"type": "text"}}}, "output_config.format"),
            ({"output_config": {"effort": "extreme"}}, "output_config.effort"),
            ({"tools": [{"name": "t", "input_schema": {}}], "tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
            ({"logprobs": True}, "logprobs"),
        ]
        for body, param in cases:
            with self.subTest(param=param):
                with self.assertRaises(ApiError) as caught:
                    translated(**body)
                self.assertEqual((caught.exception.status, caught.exception.param), (400, param))
                self.assertIn(param, caught.exception.message)

    def test_the_request_shape_names_the_first_wrong_field(self) -> None:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
            ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
            ({"system": [{"type": "image"}]}, "system[0].type"),
            ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
            ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
            ({"max_tokens": "many"}, "max_tokens"),
        ]
        for body, param in cases:
            with self.subTest(param=param):
                with self.assertRaises(ApiError) as caught:
                    MESSAGES.validate({"model": "m", "max_tokens": 1, "messages": HI, **body})
                self.assertEqual(caught.exception.param, param)
        # Block and source types newer than City pass to an Anthropic upstream as they are.
        MESSAGES.validate({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "compaction", "x": 1}]}]})


class AnswerTranslationTests(unittest.TestCase):
    def test_a_chat_answer_becomes_a_message(self) -> None:
        answer = {
            "choices": [
                {
                    "message": {
                        "role": "assistant",
                        "content": "Let me look.",
                        "reasoning_content": "The user wants weather.",
                        "tool_calls": [
                            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {"prompt_tokens": 50, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 40}},
        }
        message = message_from_completion(answer, "deepseek-v4-flash", thinking=True)
        validate_message(message)
        self.assertEqual(
            message["content"],
            [
                {"type": "thinking", "thinking": "The user wants weather.", "signature": ""},
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}},
            ],
        )
        self.assertEqual(message["stop_reason"], "tool_use")
        self.assertEqual(
            message["usage"], {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 40, "output_tokens": 20}
        )
        # Without thinking asked for, the reasoning stays out, as Anthropic answers.
        self.assertEqual(message_from_completion(answer, "m", thinking=False)["content"][0]["type"], "text")

    def test_stop_reasons_and_a_refusal(self) -> None:
        for finish, reason in (("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal"), (None, "end_turn")):
            with self.subTest(finish=finish):
                answer = {"choices": [{"message": {"content": None, "refusal": "I can't."}, "finish_reason": finish}], "usage": {}}
                message = validate_message(message_from_completion(answer, "m", thinking=False))
                self.assertEqual((message.stop_reason, message.content[0].text), (reason, "I can't."))  # type: ignore[union-attr]

    def test_tool_arguments_that_are_no_json_object_are_a_502(self) -> None:
        call = {"id": "c", "function": {"name": "f", "arguments": "[1, 2"}}
        with self.assertRaises(ApiError) as caught:
            message_from_completion({"choices": [{"message": {"tool_calls": [call]}}]}, "m", thinking=False)
        self.assertEqual(caught.exception.status, 502)


class StreamTranslationTests(unittest.TestCase):
    def test_thinking_then_text_then_two_tool_calls(self) -> None:
        events = stream_of(
            [
                chunk({"role": "assistant", "content": ""}),
                chunk({"reasoning_content": "Two cities"}),
                chunk({"reasoning_content": ", two calls."}),
                chunk({"content": "Checking both."}),
                chunk(
                    {"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}
                ),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
                chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]}),
                chunk({}, "tool_calls"),
            ],
            thinking=True,
        )
        starts = [(e["index"], e["content_block"]["type"]) for e in events if e["type"] == "content_block_start"]
        self.assertEqual(starts, [(0, "thinking"), (1, "text"), (2, "tool_use"), (3, "tool_use")])
        self.assertEqual([e["type"] for e in events[:4]], ["message_start", "content_block_start", "ping", "content_block_delta"])
        arguments = "".join(e["delta"]["partial_json"] for e in events if e.get("index") == 2 and e["type"] == "content_block_delta")
        self.assertEqual(arguments, '{"city": "Paris"}')
        self.assertEqual(events[-2]["delta"], {"stop_reason": "tool_use", "stop_sequence": None})
        self.assertEqual(
            events[-2]["usage"], {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 30, "output_tokens": 9}
        )
        self.assertEqual(events[0]["message"]["usage"]["input_tokens"], 40)  # City's count until the upstream's

    def test_reasoning_is_left_out_unless_thinking_was_asked_for(self) -> None:
        events = stream_of([chunk({"reasoning_content": "Hm."}), chunk({"content": "Hi"}), chunk({}, "stop")])
        self.assertEqual([e["content_block"]["type"] for e in events if e["type"] == "content_block_start"], ["text"])

    def test_an_empty_answer_still_pings_once(self) -> None:
        events = stream_of([chunk({"role": "assistant", "content": ""}), chunk({}, "length")])
        self.assertEqual([e["type"] for e in events], ["message_start", "ping", "message_delta", "message_stop"])
        self.assertEqual(events[-2]["delta"]["stop_reason"], "max_tokens")

    def test_calls_that_all_come_as_index_0_are_told_apart_by_their_ids(self) -> None:
        events = stream_of(
            [
                chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x": 1}'}}]}),
                chunk({"tool_calls": [{"index": 0, "id": "b", "function": {"name": "g", "arguments": "{"}}]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
                chunk({}, "tool_calls"),
            ]
        )
        blocks = [(e["content_block"]["id"], e["content_block"]["name"]) for e in events if e["type"] == "content_block_start"]
        self.assertEqual(blocks, [("a", "f"), ("b", "g")])
        second = "".join(e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta" and e["index"] == 1)
        self.assertEqual(second, "{}")

    def test_interleaved_tool_call_arguments_are_an_upstream_error(self) -> None:
        translator = ChunkTranslator("m", 1, thinking=False)
        translator.feed(chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}]}))
        translator.feed(chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{"}}]}))
        with self.assertRaises(UpstreamError):
            translator.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}))
