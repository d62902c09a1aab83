"""The Responses ⇄ chat translation on its own (no City, no upstream): conversations of items become
the chat turns each provider's adapter expects, and chat chunks become Responses events in order."""

import json
from typing import Any

from django.test import SimpleTestCase

from aihub import responses_native as rn
from aihub import responses_output as ro
from aihub import responses_translate as rt
from aihub.responses_events import ResponseEvents
from aihub.responses_request import check_request
from aihub.tests.openai_schema import validate
from city.errors import ApiError

FUNCTION = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}


def translated(request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    request = {"model": "m", **request}
    ids = ro.ItemIds("resp_01test")
    translation = rt.chat_body(request, [], rt.normalized_input(request, ids, {}))
    return translation.body, translation.namespaced


def frames_as_events(frames: list[bytes]) -> list[dict[str, Any]]:
    events = []
    for frame in frames:
        name, data = frame.decode().strip().split("\n")
        event = json.loads(data.removeprefix("data: "))
        assert event["type"] == name.removeprefix("event: ")
        events.append(event)
    return events


class RequestTranslationTests(SimpleTestCase):
    def test_parallel_calls_and_their_reasoning_make_one_assistant_turn(self) -> None:
        body, _ = translated(
            {
                "instructions": "Be brief.",
                "input": [
                    {"role": "developer", "content": "Use metric units."},
                    {"role": "user", "content": [{"type": "input_text", "text": "Paris and Rome?"}]},
                    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Two cities."}]},
                    {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
                    {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": '{"city": "Rome"}'},
                    {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                    {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "rain"}]},
                    {"role": "assistant", "content": [{"type": "output_text", "text": "Sunny, then rain."}]},
                    {"role": "user", "content": "Thanks"},
                ],
                "tools": [FUNCTION],
                "parallel_tool_calls": True,
                "max_output_tokens": 100,
            }
        )
        self.assertEqual(
            body["messages"],
            [
                {"role": "system", "content": "Be brief."},
                {"role": "system", "content": "Use metric units."},
                {"role": "user", "content": "Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": None,
                    "reasoning_content": "Two cities.",
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                        {"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                {"role": "tool", "tool_call_id": "c2", "content": "rain"},
                {"role": "assistant", "content": "Sunny, then rain."},
                {"role": "user", "content": "Thanks"},
            ],
        )
        self.assertEqual((body["parallel_tool_calls"], body["max_completion_tokens"]), (True, 100))
        self.assertEqual(body["tools"], [{"type": "function", "function": {"name": "get_weather", "parameters": FUNCTION["parameters"]}}])
        self.assertEqual(rt.for_upstream(body, "deepseek", "openai", summaries=False)["max_tokens"], 100)
        self.assertNotIn("max_tokens", rt.for_upstream(body, "openai", "openai", summaries=False))
        self.assertNotIn("generationConfig", rt.for_upstream(body, "google", "gemini", summaries=False))
        shown = rt.for_upstream({**body, "generationConfig": {"topP": 0.5}}, "google", "gemini", summaries=True)
        self.assertEqual(shown["generationConfig"], {"topP": 0.5, "thinkingConfig": {"includeThoughts": True}})

    def test_options_become_their_chat_namesakes_and_extensions_pass(self) -> None:
        body, namespaced = translated(
            {
                "input": "Hi",
                "tools": [
                    FUNCTION,
                    {"type": "namespace", "name": "files", "description": "Files.", "tools": [{"type": "function", "name": "read"}]},
                ],
                "tool_choice": {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "read"}]},
                "text": {
                    "format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True},
                    "verbosity": "low",
                },
                "reasoning": {"effort": "high", "summary": "auto"},
                "temperature": 0.2,
                "top_p": 0.9,
                "metadata": {"k": "v"},
                "store": False,
                "top_k": 5,
            }
        )
        self.assertEqual([t["function"]["name"] for t in body["tools"]], ["files__read"])
        self.assertEqual(namespaced, {"files__read": ("files", "read")})
        self.assertEqual(body["tool_choice"], "required")
        self.assertEqual(
            body["response_format"], {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True}}
        )
        self.assertEqual(
            (body["verbosity"], body["reasoning_effort"], body["temperature"], body["top_p"], body["top_k"]), ("low", "high", 0.2, 0.9, 5)
        )
        for absent in ("metadata", "store", "text", "reasoning", "input"):
            self.assertNotIn(absent, body)
        body, _ = translated({"input": "Hi", "tools": [FUNCTION], "tool_choice": {"type": "function", "name": "get_weather"}})
        self.assertEqual(body["tool_choice"], {"type": "function", "function": {"name": "get_weather"}})

    def test_custom_tools_become_chat_custom_tools_and_their_calls_come_back(self) -> None:
        patch = {
            "type": "custom",
            "name": "apply_patch",
            "description": "Edit files.",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"},
        }
        request = {
            "input": [
                {"role": "user", "content": "Fix it."},
                {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin Patch"},
                {"type": "custom_tool_call_output", "call_id": "c1", "output": "Done."},
            ],
            "tools": [{"type": "web_search"}, patch],
            "tool_choice": {"type": "custom", "name": "apply_patch"},
        }
        translation = rt.chat_body(
            {"model": "m", **request}, [], rt.normalized_input({"model": "m", **request}, ro.ItemIds("resp_01c"), {})
        )
        body = translation.body
        self.assertEqual(
            body["tools"],
            [
                {
                    "type": "custom",
                    "custom": {
                        "name": "apply_patch",
                        "description": "Edit files.",
                        "format": {"type": "grammar", "grammar": {"definition": "start: x", "syntax": "lark"}},
                    },
                }
            ],
        )
        self.assertEqual(translation.tool_paths, ["tools[1]"])
        self.assertEqual(body["tool_choice"], {"type": "custom", "custom": {"name": "apply_patch"}})
        self.assertEqual(
            body["messages"][1]["tool_calls"],
            [{"id": "c1", "type": "custom", "custom": {"name": "apply_patch", "input": "*** Begin Patch"}}],
        )
        self.assertEqual(body["messages"][2], {"role": "tool", "tool_call_id": "c1", "content": "Done."})
        answer = {
            "choices": [
                {
                    "message": {"role": "assistant", "content": None, "tool_calls": body["messages"][1]["tool_calls"]},
                    "finish_reason": "tool_calls",
                }
            ]
        }
        output, _ = ro.output_of(answer, {}, ro.ItemIds("resp_01d"))
        self.assertEqual(
            output,
            [
                {
                    "id": "ctc_01d_0",
                    "type": "custom_tool_call",
                    "status": "completed",
                    "call_id": "c1",
                    "name": "apply_patch",
                    "input": "*** Begin Patch",
                }
            ],
        )
        validate(output[0], "CustomToolCall")

    def test_images_and_files_become_chat_parts(self) -> None:
        body, _ = translated(
            {
                "input": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
                            {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
                        ],
                    }
                ]
            }
        )
        self.assertEqual(
            body["messages"][0]["content"],
            [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}},
            ],
        )

    def test_signed_thinking_goes_out_and_comes_back_through_encrypted_content(self) -> None:
        blocks = [{"type": "thinking", "thinking": "Hmm.", "signature": "sig"}]
        item = ro.reasoning_item("rs_1", "Hmm.", blocks)
        body, _ = translated({"input": [{"role": "user", "content": "Hi"}, item, {"role": "assistant", "content": "Hello"}]})
        self.assertEqual(
            body["messages"][1], {"role": "assistant", "content": "Hello", "reasoning_content": "Hmm.", "thinking_blocks": blocks}
        )
        foreign = {**item, "encrypted_content": "gAAAAB-openai-s-own"}
        body, _ = translated({"input": [{"role": "user", "content": "Hi"}, foreign, {"role": "assistant", "content": "Hello"}]})
        self.assertNotIn("thinking_blocks", body["messages"][1])

    def test_the_response_shows_the_request_as_openai_does(self) -> None:
        request = {
            "model": "m",
            "input": "Hi",
            "tools": [{"type": "function", "name": "f"}, {"type": "web_search"}, {"type": "custom", "name": "apply_patch"}],
            "tool_choice": "auto",
            "reasoning": {"effort": "low"},
            "text": {"format": {"type": "json_object"}},
        }
        response = ro.response_object("resp_01e", 1, "m", request, status="in_progress", output=[])
        validate(response, "Response")
        self.assertEqual(response["tools"][0], {"type": "function", "name": "f", "parameters": None, "strict": False})
        self.assertEqual(
            (response["reasoning"], response["text"]["format"], response["store"]), ({"effort": "low"}, {"type": "json_object"}, True)
        )

    def test_item_ids_name_their_response(self) -> None:
        ids = ro.ItemIds("resp_01abc")
        self.assertEqual([ids("msg"), ids("fc")], ["msg_01abc_0", "fc_01abc_1"])
        self.assertEqual(ro.response_of_item("fc_01abc_1"), "resp_01abc")
        self.assertIsNone(ro.response_of_item("msg_68af0c0d"))
        self.assertEqual(rt.item_references({"input": [{"type": "item_reference", "id": "fc_01abc_1"}]}), {"resp_01abc": ["fc_01abc_1"]})

    def test_refusals_name_the_field(self) -> None:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"input": "Hi", "tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}, "tools[0].type"),
            (
                {"input": "Hi", "tools": [{"type": "namespace", "name": "n", "tools": [{"type": "mcp", "name": "x"}]}]},
                "tools[0].tools[0].type",
            ),
            ({"input": "Hi", "tools": [{"type": "custom", "name": "x", "format": {"type": "regexp"}}]}, "tools[0].format"),
            ({"input": "Hi", "tools": [{"type": "function"}]}, "tools[0].name"),
            ({"input": "Hi", "prompt": {"id": "pmpt_1"}}, "prompt"),
            ({"input": "Hi", "context_management": [{"type": "compaction"}]}, "context_management"),
            (
                {"input": [{"role": "system", "content": [{"type": "input_image", "image_url": "https://x/y.png"}]}]},
                "input[0].content[0].type",
            ),
            (
                {"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://x/y.pdf"}]}]},
                "input[0].content[0].file_url",
            ),
            ({"input": []}, "input"),
            (
                {"input": "Hi", "tools": [FUNCTION], "tool_choice": {"type": "function", "name": "get_weather", "namespace": 5}},
                "tool_choice.namespace",
            ),
            ({"input": "Hi", "n": 2}, "n"),  # chat's extra answers, billed, would be dropped: Responses has one
        ]
        for request, param in cases:
            with self.subTest(param=param):
                with self.assertRaises(ApiError) as caught:
                    translated(request)
                self.assertEqual((caught.exception.status, caught.exception.param), (400, param))


class StreamEventsTests(SimpleTestCase):
    def test_reasoning_text_and_calls_come_as_items_in_order(self) -> None:
        request = {"model": "m", "input": "Hi"}
        response = ro.response_object("resp_01x", 0, "m", request, status="in_progress", output=[])
        events = ResponseEvents(response, {"files__read": ("files", "read")}, ro.ItemIds("resp_01x"))
        frames = events.start()
        for delta in (
            {"reasoning_content": "Think"},
            {"reasoning_content": "ing."},
            {"thinking_blocks": [{"type": "thinking", "thinking": "Thinking.", "signature": "s"}]},
            {"content": "Let me "},
            {"content": "look."},
            {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "files__read", "arguments": '{"p'}}]},
            {"tool_calls": [{"index": 1, "id": "call_2", "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"tool_calls": [{"index": 0, "function": {"arguments": '": 1}'}}]},
            {"tool_calls": [{"index": 2, "id": "call_3", "type": "custom", "custom": {"name": "apply_patch", "input": "*** Begin"}}]},
            {"tool_calls": [{"index": 2, "custom": {"input": " Patch"}}]},
        ):
            frames += events.chunk({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        frames += events.chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
        frames += events.close_items()
        frames += events.finish(ro.usage_of(10, 5, 2, 0, 3))
        sent = frames_as_events(frames)
        for event in sent:
            validate(event, "ResponseStreamEvent")
        self.assertEqual([e["sequence_number"] for e in sent], list(range(len(sent))))
        self.assertEqual(
            [e["type"].removeprefix("response.") for e in sent],
            [
                *("created", "in_progress"),
                *("output_item.added", "reasoning_summary_part.added", "reasoning_summary_text.delta", "reasoning_summary_text.delta"),
                *("reasoning_summary_text.done", "reasoning_summary_part.done", "output_item.done"),
                *("output_item.added", "content_part.added", "output_text.delta", "output_text.delta"),
                *("output_text.done", "content_part.done", "output_item.done"),
                *("output_item.added", "function_call_arguments.delta", "output_item.added", "function_call_arguments.delta"),
                *("function_call_arguments.delta", "output_item.added", "custom_tool_call_input.delta", "custom_tool_call_input.delta"),
                *("function_call_arguments.done", "output_item.done", "function_call_arguments.done", "output_item.done"),
                *("custom_tool_call_input.done", "output_item.done", "completed"),
            ],
        )
        output = sent[-1]["response"]["output"]
        self.assertEqual([item["type"] for item in output], ["reasoning", "message", "function_call", "function_call", "custom_tool_call"])
        self.assertEqual((output[4]["name"], output[4]["input"]), ("apply_patch", "*** Begin Patch"))
        self.assertEqual(output[0]["summary"], [{"type": "summary_text", "text": "Thinking."}])
        self.assertEqual(
            ro.thinking_blocks_of(output[0]["encrypted_content"]), [{"type": "thinking", "thinking": "Thinking.", "signature": "s"}]
        )
        self.assertEqual(output[1]["content"][0]["text"], "Let me look.")
        self.assertEqual((output[2]["namespace"], output[2]["name"], output[2]["arguments"]), ("files", "read", '{"p": 1}'))
        self.assertEqual(len({item["id"] for item in output}), 5)
        self.assertEqual(sent[-1]["response"]["usage"]["input_tokens_details"], {"cached_tokens": 2, "cache_write_tokens": 0})

    def test_a_refusal_is_a_content_part_of_its_own(self) -> None:
        response = ro.response_object("resp_01r", 0, "m", {"input": "Hi"}, status="in_progress", output=[])
        events = ResponseEvents(response, {}, ro.ItemIds("resp_01r"))
        frames = events.start()
        for delta in ({"content": "Well, "}, {"refusal": "I can't "}, {"refusal": "help."}):
            frames += events.chunk({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        sent = frames_as_events(frames + events.close_items() + events.finish(ro.usage_of(1, 1, 0, 0, 0)))
        for event in sent:
            validate(event, "ResponseStreamEvent")
        kinds = [e["type"].removeprefix("response.") for e in sent]
        self.assertEqual(
            kinds[kinds.index("output_text.done") :],
            [
                *("output_text.done", "content_part.done", "content_part.added", "refusal.delta", "refusal.delta"),
                *("refusal.done", "content_part.done", "output_item.done", "completed"),
            ],
        )
        self.assertEqual(
            sent[-1]["response"]["output"][0]["content"],
            [ro.text_part("Well, "), {"type": "refusal", "refusal": "I can't help."}],
        )
        self.assertEqual(events.generated_text(), "Well, I can't help.")

    def test_a_cut_answer_is_incomplete_and_a_failure_failed(self) -> None:
        for finish, kind in (("length", "response.incomplete"), ("content_filter", "response.incomplete")):
            response = ro.response_object("resp_01y", 0, "m", {"input": "Hi"}, status="in_progress", output=[])
            events = ResponseEvents(response, {}, ro.ItemIds("resp_01y"))
            frames = events.start() + events.chunk({"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": finish}]})
            sent = frames_as_events(frames + events.close_items() + events.finish(ro.usage_of(1, 1, 0, 0, 0)))
            validate(sent[-1], "ResponseStreamEvent")
            self.assertEqual((sent[-1]["type"], sent[-1]["response"]["status"]), (kind, "incomplete"))
        failed = frames_as_events(events.fail("server_error", "The upstream broke.", ro.usage_of(1, 1, 0, 0, 0)))[0]
        validate(failed, "ResponseStreamEvent")
        self.assertEqual(failed["response"]["error"], {"code": "server_error", "message": "The upstream broke."})

    def test_a_failure_mid_way_shows_and_keeps_what_was_sent(self) -> None:
        """The text and arguments already streamed are in the failed response (the one stored), in
        items left incomplete: not an empty message or call that the client's deltas contradict."""
        text = [{"reasoning_content": "Hmm."}, {"content": "Hel"}, {"content": "lo"}]
        call = [
            {"content": "Hello"},
            {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "get_weather", "arguments": '{"ci'}}]},
        ]
        for deltas, last in ((text, {"content": [ro.text_part("Hello")]}), (call, {"arguments": '{"ci'})):
            with self.subTest(last=last):
                response = ro.response_object("resp_01z", 0, "m", {"input": "Hi"}, status="in_progress", output=[])
                events = ResponseEvents(response, {}, ro.ItemIds("resp_01z"))
                events.start()
                for delta in deltas:
                    events.chunk({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                failed = frames_as_events(events.fail("server_error", "The upstream broke.", ro.usage_of(1, 1, 0, 0, 0)))[0]
                validate(failed, "ResponseStreamEvent")
                output = failed["response"]["output"]
                self.assertEqual([item["status"] for item in output], ["completed", "incomplete"])
                self.assertEqual({key: output[1][key] for key in last}, last)
                self.assertEqual(events.response["output"], output)  # what is stored


class PassThroughTests(SimpleTestCase):
    def test_the_upstream_gets_the_whole_conversation_and_keeps_nothing(self) -> None:
        history: list[dict[str, Any]] = [
            {"id": "msg_01a_0", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
            {"id": "rs_01a_1", "type": "reasoning", "summary": [], "encrypted_content": "gAAAA"},
            {"id": "ws_01a_2", "type": "web_search_call", "status": "completed", "action": {"type": "search", "query": "x"}},
        ]
        request = {
            "model": "gpt-5",
            "input": "More",
            "previous_response_id": "resp_01a",
            "include": ["reasoning.encrypted_content"],
            "studio_id": "s",
        }
        check_request(
            {k: v for k, v in request.items() if k != "studio_id"} | {"input": [history[2]]}
        )  # hosted tools' items pass the shape check
        body = rn.upstream_request(request, history, [{"id": "msg_01b_0", "type": "message", "role": "user", "content": "More"}])
        self.assertEqual([item.get("id") for item in body["input"]], [None, "rs_01a_1", "ws_01a_2", None])
        theirs = [
            ro.reasoning_item("rs_01c_0", "Hmm.", [{"type": "thinking", "thinking": "Hmm.", "signature": "s"}]),
            ro.reasoning_item("rs_01c_1", "Hmm.", []),
        ]
        self.assertEqual(rn.upstream_request(request, theirs, [])["input"], [])  # Claude's or DeepSeek's thinking stays out
        self.assertEqual((body["store"], body["include"]), (False, ["reasoning.encrypted_content"]))
        for absent in ("previous_response_id", "studio_id"):
            self.assertNotIn(absent, body)
        plain = rn.upstream_request({**request, "model": "gpt-4.1", "include": []}, history, [], reasons=False)
        self.assertEqual(plain["include"], [])  # OpenAI refuses encrypted reasoning of a model that does not reason
        self.assertEqual(
            rn.chat_usage(
                {
                    "input_tokens": 9,
                    "input_tokens_details": {"cached_tokens": 4},
                    "output_tokens": 3,
                    "output_tokens_details": {"reasoning_tokens": 2},
                }
            ),
            {
                "prompt_tokens": 9,
                "completion_tokens": 3,
                "prompt_tokens_details": {"cached_tokens": 4},
                "completion_tokens_details": {"reasoning_tokens": 2},
            },
        )
