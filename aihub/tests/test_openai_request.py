"""OpenAI request shapes are checked once, before any adapter: a wrong type is a 400 naming the field."""

import unittest
from typing import Any

import jsonschema

from aihub.openai_request import CHAT_COMPLETIONS, COMPLETIONS, EMBEDDINGS, RequestSpec
from aihub.sdk_api import TEXT_REQUEST
from aihub.tests.adapter_contract import WEATHER_TOOL
from aihub.tests.live import AllProtocolsTestCase
from aihub.tests.openai_schema import validate as openai_validate
from city.errors import ApiError

HI = [{"role": "user", "content": "Hi"}]
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
# The three bodies that answered 500 with a traceback for Claude and Gemini models.
SEEN_AS_500: list[tuple[dict[str, Any], str]] = [
    ({"messages": [*HI, {"role": "assistant", "tool_calls": 1}]}, "messages[1].tool_calls"),
    (
        {"messages": [*HI, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": 1}]}]},
        "messages[1].tool_calls[0].function",
    ),
    ({"messages": HI, "modalities": 1}, "modalities"),
]

TOOL_LOOP = [
    {"role": "system", "content": "Be brief."},
    {
        "role": "user",
        "content": [{"type": "text", "text": "Weather in Paris?"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
    },
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
]


def realistic_chat_body() -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-6",
        "messages": TOOL_LOOP,
        "tools": [WEATHER_TOOL],
        "tool_choice": "auto",
        "temperature": 0.2,
        "max_completion_tokens": 200,
        "stop": ["\n\n"],
        "response_format": {"type": "text"},
        "stream": False,
    }


class ChatShapeTests(unittest.TestCase):
    def refused(self, spec: RequestSpec, body: dict[str, Any]) -> ApiError:
        with self.assertRaises(ApiError) as caught:
            spec.validate(body)
        error = caught.exception
        self.assertEqual(error.status, 400)
        self.assertIn(error.code, ("invalid_type", "missing_field", "invalid_value"))
        assert error.param is not None
        self.assertIn(error.param, error.message)
        return error

    def test_wrong_types_are_named_at_any_depth(self) -> None:
        model = {"model": "m"}
        cases: list[tuple[dict[str, Any], str]] = [
            *SEEN_AS_500,
            ({}, "messages"),
            ({"model": 5, "messages": HI}, "model"),
            ({"messages": None}, "messages"),
            ({"messages": []}, "messages"),
            ({"messages": "Hi"}, "messages"),
            ({"messages": [1]}, "messages[0]"),
            ({"messages": [{"content": "x"}]}, "messages[0].role"),
            ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
            ({"messages": [{"role": 7, "content": "x"}]}, "messages[0].role"),
            ({"messages": [{"role": "user"}]}, "messages[0].content"),
            ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
            ({"messages": [{"role": "user", "content": [5]}]}, "messages[0].content[0]"),
            ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
            ({"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]}, "messages[0].content[0].text"),
            ({"messages": [{"role": "user", "content": [{"type": "video"}]}]}, "messages[0].content[0].type"),
            ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": 1}]}]}, "messages[0].content[0].image_url"),
            (
                {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 1}}]}]},
                "messages[0].content[0].image_url.url",
            ),
            (
                {"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]},
                "messages[0].content[0].type",
            ),
            ({"messages": [*HI, {"role": "assistant", "tool_calls": [1]}]}, "messages[1].tool_calls[0]"),
            ({"messages": [*HI, {"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}]}, "messages[1].tool_calls[0].id"),
            ({"messages": [*HI, {"role": "assistant", "tool_calls": [{**CALL, "type": "x"}]}]}, "messages[1].tool_calls[0].type"),
            (
                {"messages": [*HI, {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": 3}}]}]},
                "messages[1].tool_calls[0].function.name",
            ),
            (
                {"messages": [*HI, {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "f", "arguments": {}}}]}]},
                "messages[1].tool_calls[0].function.arguments",
            ),
            ({"messages": [*HI, {"role": "tool", "content": "x"}]}, "messages[1].tool_call_id"),
            ({"messages": [*HI, {"role": "assistant", "content": "x", "refusal": 1}]}, "messages[1].refusal"),
            ({"messages": HI, "tools": {"name": "f"}}, "tools"),
            ({"messages": HI, "tools": [1]}, "tools[0]"),
            ({"messages": HI, "tools": [{"type": "function"}]}, "tools[0].function"),
            (
                {"messages": HI, "tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]},
                "tools[0].function.parameters",
            ),
            ({"messages": HI, "tool_choice": 1}, "tool_choice"),
            ({"messages": HI, "tool_choice": {"type": "function", "function": 1}}, "tool_choice.function"),
            ({"messages": HI, "response_format": "json"}, "response_format"),
            ({"messages": HI, "response_format": {"type": "xml"}}, "response_format.type"),
            (
                {"messages": HI, "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": 1}}},
                "response_format.json_schema.schema",
            ),
            ({"messages": HI, "stop": 5}, "stop"),
            ({"messages": HI, "stop": ["a", 5]}, "stop[1]"),
            ({"messages": HI, "logit_bias": {"50256": "x"}}, "logit_bias.50256"),
            ({"messages": HI, "logit_bias": []}, "logit_bias"),
            ({"messages": HI, "temperature": "hot"}, "temperature"),
            ({"messages": HI, "temperature": True}, "temperature"),
            ({"messages": HI, "n": 1.5}, "n"),
            ({"messages": HI, "seed": "7"}, "seed"),
            ({"messages": HI, "stream": "yes"}, "stream"),
            ({"messages": HI, "stream_options": []}, "stream_options"),
            ({"messages": HI, "stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
            ({"messages": HI, "metadata": {"k": 1}}, "metadata.k"),
            ({"messages": HI, "audio": {"voice": "alloy"}}, "audio.format"),
            ({"messages": HI, "functions": [{"description": "no name"}]}, "functions[0].name"),
            ({"messages": HI, "prediction": {"type": "content", "content": 1}}, "prediction.content"),
            ({"messages": HI, "user": 1}, "user"),
        ]
        for body, param in cases:
            with self.subTest(body=body):
                self.assertEqual(self.refused(CHAT_COMPLETIONS, {**model, **body}).param, param)
        self.assertEqual(self.refused(CHAT_COMPLETIONS, {"messages": HI}).param, "model")

    def test_valid_bodies_pass_as_they_are_with_extensions_and_nulls(self) -> None:
        bodies = [
            realistic_chat_body(),
            {"model": "m", "messages": HI, "top_k": 5, "thinking": {"type": "enabled"}, "studio_id": "s", "temperature": None},
            {"model": "m", "messages": [{"role": "developer", "content": [{"type": "text", "text": "x"}]}, *HI]},
            {"model": "m", "messages": [*HI, {"role": "assistant", "content": "ok", "reasoning_content": "r", "thinking_blocks": [{}]}]},
            {
                "model": "m",
                "messages": HI,
                "tool_choice": {"type": "function", "function": {"name": "f"}},
                "tools": [{"function": {"name": "f"}}],
            },
            {"model": "m", "messages": HI, "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}},
            {"model": "m", "messages": HI, "modalities": ["text"], "stop": "x", "logit_bias": {"1": -100}, "n": 1},
        ]
        for body in bodies:
            with self.subTest(body=body):
                self.assertIs(CHAT_COMPLETIONS.validate(body), body)

    def test_completions_and_embeddings(self) -> None:
        completions: list[tuple[dict[str, Any], str]] = [
            ({"model": "m"}, "prompt"),
            ({"model": "m", "prompt": 5}, "prompt"),
            ({"model": "m", "prompt": [1, "a"]}, "prompt"),
            ({"model": "m", "prompt": "x", "echo": "yes"}, "echo"),
            ({"model": "m", "prompt": "x", "suffix": 1}, "suffix"),
            ({"model": "m", "prompt": "x", "best_of": "2"}, "best_of"),
        ]
        for body, param in completions:
            with self.subTest(body=body):
                self.assertEqual(self.refused(COMPLETIONS, body).param, param)
        for good in ("x", ["a", "b"], [1, 2], [[1], [2, 3]]):
            COMPLETIONS.validate({"model": "m", "prompt": good})
        embeddings: list[tuple[dict[str, Any], str]] = [
            ({"model": "m"}, "input"),
            ({"model": "m", "input": {}}, "input"),
            ({"model": "m", "input": [[]]}, "input"),
            ({"model": "m", "input": "x", "dimensions": "8"}, "dimensions"),
            ({"model": "m", "input": "x", "encoding_format": 1}, "encoding_format"),
        ]
        for body, param in embeddings:
            with self.subTest(body=body):
                self.assertEqual(self.refused(EMBEDDINGS, body).param, param)

    def test_the_json_schema_is_valid_and_agrees_with_the_validator(self) -> None:
        for spec in (CHAT_COMPLETIONS, COMPLETIONS, EMBEDDINGS):
            jsonschema.Draft202012Validator.check_schema(spec.json_schema())
        schema = jsonschema.Draft202012Validator(CHAT_COMPLETIONS.json_schema())
        self.assertTrue(schema.is_valid(realistic_chat_body()))
        for body, _ in SEEN_AS_500:
            self.assertFalse(schema.is_valid({"model": "m", **body}))
        # What the validator accepts, OpenAI's own schema of the request accepts too.
        openai_validate(realistic_chat_body(), "CreateChatCompletionRequest")

    def test_city_text_requests_are_checked_as_deeply(self) -> None:
        TEXT_REQUEST.validate({"model": "m", "prompt": "hi", "tools": [WEATHER_TOOL]})
        for body, param in [
            ({"model": "m", "messages": SEEN_AS_500[1][0]["messages"]}, "messages[1].tool_calls[0].function"),
            ({"model": "m", "prompt": "hi", "tools": [{"type": "function", "function": {"name": 1}}]}, "tools[0].function.name"),
            ({"prompt": "hi"}, "model"),
        ]:
            with self.subTest(body=body):
                self.assertEqual(self.refused(TEXT_REQUEST, body).param, param)  # type: ignore[arg-type]
        schema = TEXT_REQUEST.json_schema()
        jsonschema.Draft202012Validator.check_schema(schema)
        self.assertTrue(jsonschema.Draft202012Validator(schema).is_valid({"model": "m", "prompt": "hi", "temperature": 0.5}))
        self.assertFalse(jsonschema.Draft202012Validator(schema).is_valid({"model": "m", "prompt": "hi", "bogus": 1}))


class ShapesThroughCityTests(AllProtocolsTestCase):
    """Claude and Gemini models, served by their simulators: the bodies that answered 500 now answer
    400 naming the field, before anything is sent upstream; a valid body still works."""

    def test_bad_shapes_are_400s_naming_the_field_and_a_good_body_works(self) -> None:
        for model, sim in (("claude-sonnet-4-6", self.anthropic), ("gemini-3-flash-preview", self.gemini)):
            for body, param in SEEN_AS_500:
                for route in ("/v1/chat/completions", "/v1/ai/chat/completions"):
                    with self.subTest(model=model, param=param, route=route):
                        response = self.user.post(route, json={"model": model, **body})
                        self.assertEqual(response.status_code, 400, response.text)
                        error = response.json()["error"]
                        self.assertEqual((error["param"], error["type"]), (param, "invalid_request_error"))
                        self.assertIn(param, error["message"])
            with self.subTest(model=model, body="ai/text"):
                response = self.user.post("/v1/ai/text", json={"model": model, "messages": SEEN_AS_500[1][0]["messages"]})
                self.assertEqual((response.status_code, response.json()["error"]["param"]), (400, "messages[1].tool_calls[0].function"))
            self.assertEqual(sim.requests, [])
            answer = self.ok(self.user.post("/v1/chat/completions", json={**realistic_chat_body(), "model": model}))
            self.assertEqual(answer["model"], model)
            self.assertEqual(len(sim.requests), 1)
