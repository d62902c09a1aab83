"""The official OpenAI Python SDK against City on loopback, through both base URLs (`…/v1` and
`…/v1/ai`), every answer also validated against OpenAI's published schemas."""

import base64
import json
import struct
from typing import Any

import httpx
import openai
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageFunctionToolCall

from aihub.tests.live import DEEPSEEK_KEY, AiLiveTestCase
from aihub.tests.openai_schema import validate
from aihub.tests.upstream.openai_sim import vector_for

BASE_PATHS = ("/v1", "/v1/ai")
WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def sse_payloads(response: httpx.Response) -> list[str]:
    return [line[len("data: ") :] for line in response.text.splitlines() if line.startswith("data: ")]


class OpenAISDKTests(AiLiveTestCase):
    def sdk(self, base_path: str) -> openai.OpenAI:
        client = openai.OpenAI(base_url=self.city.url + base_path, api_key=self.token, max_retries=0, timeout=10)
        self.addCleanup(client.close)
        return client

    def test_models_list_shows_the_callable_models(self) -> None:
        for base in BASE_PATHS:
            with self.subTest(base=base):
                ids = {m.id for m in self.sdk(base).models.list()}
                self.assertIn("deepseek-v4-flash", ids)
                self.assertIn("text-embedding-3-small", ids)
                self.assertNotIn("claude-sonnet-4-6", ids)  # no Anthropic key is set
                raw = self.ok(self.user.get(base + "/models"))
                validate({"object": raw["object"], "data": raw["data"]}, "ListModelsResponse")
                self.assertEqual([m["id"] for m in raw["data"]], [m["id"] for m in raw["items"]])

    def test_models_retrieve_shows_one_callable_model(self) -> None:
        for base in BASE_PATHS:
            with self.subTest(base=base):
                model = self.sdk(base).models.retrieve("deepseek-v4-flash")
                self.assertEqual((model.id, model.object), ("deepseek-v4-flash", "model"))
                validate(self.ok(self.user.get(base + "/models/deepseek-v4-flash")), "Model")
                with self.assertRaises(openai.NotFoundError) as caught:
                    self.sdk(base).models.retrieve("claude-sonnet-4-6")  # known, but no Anthropic key is set
                body = caught.exception.body  # the SDK's `object`: here the JSON error object
                assert isinstance(body, dict)
                self.assertEqual(body["code"], "model_not_found")
                with self.assertRaises(openai.NotFoundError):
                    self.sdk(base).models.retrieve("no-such-model")

    def test_chat(self) -> None:
        for base in BASE_PATHS:
            with self.subTest(base=base):
                raw = self.sdk(base).chat.completions.with_raw_response.create(
                    model="deepseek-v4-flash",
                    messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                    max_tokens=20,
                    extra_body={"thinking": {"type": "disabled"}},
                )
                validate(raw.http_response.json(), "CreateChatCompletionResponse")
                completion = raw.parse()
                self.assertEqual(completion.model, "deepseek-v4-flash")
                self.assertEqual(completion.choices[0].message.content, self.sim.script.text)
                assert completion.usage is not None
                self.assertEqual((completion.usage.prompt_tokens, completion.usage.completion_tokens), (11, 7))
                sent = self.sim.last_request
                self.assertEqual(sent.path, "/chat/completions")
                self.assertEqual(sent.headers["authorization"], f"Bearer {DEEPSEEK_KEY}")
                self.assertEqual(sent.json["thinking"], {"type": "disabled"})  # an unknown field, forwarded
                self.assertEqual(sent.json["max_tokens"], 20)
                self.assertNotIn("stream", sent.json)

    def test_chat_stream_with_usage(self) -> None:
        for base in BASE_PATHS:
            with self.subTest(base=base):
                chunks = list(
                    self.sdk(base).chat.completions.create(
                        model="deepseek-v4-flash",
                        messages=[{"role": "user", "content": "Hi"}],
                        stream=True,
                        stream_options={"include_usage": True},
                    )
                )
                self.assertEqual("".join(c.choices[0].delta.content or "" for c in chunks if c.choices), self.sim.script.text)
                self.assertEqual(chunks[-1].choices, [])
                usage = chunks[-1].usage
                assert usage is not None
                self.assertEqual((usage.prompt_tokens, usage.completion_tokens), (11, 7))
                self.assertTrue(all(c.model == "deepseek-v4-flash" for c in chunks))

    def test_chat_stream_without_usage_asks_the_upstream_for_it_but_does_not_show_it(self) -> None:
        response = self.user.post(
            "/v1/chat/completions", json={"model": "deepseek-v4-flash", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
        )
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response.headers["content-type"].startswith("text/event-stream"))
        payloads = sse_payloads(response)
        self.assertEqual(payloads[-1], "[DONE]")
        for payload in payloads[:-1]:
            chunk = json.loads(payload)
            validate(chunk, "CreateChatCompletionStreamResponse")
            self.assertNotIn("usage", chunk)
        self.assertEqual(self.sim.last_request.json["stream_options"], {"include_usage": True})

    def test_raw_stream_chunks_validate_and_usage_comes_last(self) -> None:
        response = self.user.post(
            "/v1/ai/chat/completions",
            json={
                "model": "deepseek-v4-flash",
                "stream": True,
                "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": "Hi"}],
            },
        )
        payloads = sse_payloads(response)
        self.assertEqual(payloads[-1], "[DONE]")
        chunks = [json.loads(p) for p in payloads[:-1]]
        for chunk in chunks:
            validate(chunk, "CreateChatCompletionStreamResponse")
        self.assertTrue(all(c["usage"] is None for c in chunks[:-1]))
        self.assertEqual(chunks[-1]["usage"], {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18})

    def test_chat_with_tools(self) -> None:
        self.sim.script.tool_call = ("get_weather", {"city": "Paris"})
        for base in BASE_PATHS:
            with self.subTest(base=base):
                client = self.sdk(base)
                completion = client.chat.completions.create(
                    model="deepseek-v4-flash", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER_TOOL]
                )
                tool_calls = completion.choices[0].message.tool_calls
                assert tool_calls is not None
                call = tool_calls[0]
                assert isinstance(call, ChatCompletionMessageFunctionToolCall)
                self.assertEqual((call.function.name, json.loads(call.function.arguments)), ("get_weather", {"city": "Paris"}))
                self.assertEqual(completion.choices[0].finish_reason, "tool_calls")
                self.assertEqual(self.sim.last_request.json["tools"], [WEATHER_TOOL])
                streamed = ""
                for chunk in client.chat.completions.create(
                    model="deepseek-v4-flash", messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER_TOOL], stream=True
                ):
                    for choice in chunk.choices:
                        for piece in choice.delta.tool_calls or ():
                            assert piece.function is not None
                            streamed += piece.function.arguments or ""
                self.assertEqual(json.loads(streamed), {"city": "Paris"})

    def test_completions_through_chat(self) -> None:
        for base in BASE_PATHS:
            with self.subTest(base=base):
                client = self.sdk(base)
                raw = client.completions.with_raw_response.create(model="deepseek-v4-flash", prompt="Once upon a time", max_tokens=16)
                validate(raw.http_response.json(), "CreateCompletionResponse")
                completion = raw.parse()
                self.assertEqual(completion.object, "text_completion")
                self.assertEqual(completion.choices[0].text, self.sim.script.text)
                self.assertEqual(completion.model, "deepseek-v4-flash")
                self.assertEqual(self.sim.last_request.path, "/chat/completions")
                self.assertEqual(self.sim.last_request.json["messages"], [{"role": "user", "content": "Once upon a time"}])
                chunks = list(
                    client.completions.create(model="deepseek-v4-flash", prompt="Once", stream=True, stream_options={"include_usage": True})
                )
                self.assertEqual("".join(c.choices[0].text for c in chunks if c.choices), self.sim.script.text)
                usage = chunks[-1].usage
                assert usage is not None
                self.assertEqual(usage.total_tokens, 18)

    def test_completions_stream_chunks_validate(self) -> None:
        response = self.user.post("/v1/completions", json={"model": "deepseek-v4-flash", "prompt": "Once", "stream": True})
        payloads = sse_payloads(response)
        self.assertEqual(payloads[-1], "[DONE]")
        for payload in payloads[:-1]:
            chunk = json.loads(payload)
            # Legacy stream chunks carry finish_reason null until the last one, which the schema does
            # not describe (its CreateCompletionResponse wants one of the stop reasons): validate the rest.
            for choice in chunk["choices"]:
                choice["finish_reason"] = choice["finish_reason"] or "stop"
            validate(chunk, "CreateCompletionResponse")

    def test_completions_native_upstream(self) -> None:
        completion = self.sdk("/v1").completions.create(model="gpt-3.5-turbo-instruct", prompt=["Say hi"], max_tokens=5)
        self.assertEqual(completion.choices[0].text, self.sim.script.text)
        self.assertEqual(self.sim.last_request.path, "/v1/completions")
        self.assertEqual(self.sim.last_request.json["prompt"], ["Say hi"])

    def test_embeddings_float_and_base64(self) -> None:
        for base in BASE_PATHS:
            with self.subTest(base=base):
                client = self.sdk(base)
                default = client.embeddings.create(model="text-embedding-3-small", input=["hello world", "bye"])  # the SDK asks for base64
                self.assertEqual(self.sim.last_request.path, "/v1/embeddings")
                self.assertEqual([d.embedding for d in default.data], [vector_for("hello world", 8), vector_for("bye", 8)])
                floats = client.embeddings.create(model="text-embedding-3-small", input="hello world", encoding_format="float")
                self.assertEqual(floats.data[0].embedding, vector_for("hello world", 8))
                self.assertEqual(floats.model, "text-embedding-3-small")
        raw = self.ok(
            self.user.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "hi", "encoding_format": "base64"})
        )
        vector = struct.unpack("<8f", base64.b64decode(raw["data"][0]["embedding"]))
        self.assertEqual(list(vector), vector_for("hi", 8))
        raw = self.ok(self.user.post("/v1/ai/embeddings", json={"model": "text-embedding-3-small", "input": ["hi"], "dimensions": 4}))
        validate(raw, "CreateEmbeddingResponse")
        self.assertEqual(len(raw["data"][0]["embedding"]), 4)

    def test_errors_are_openai_errors(self) -> None:
        client = self.sdk("/v1")
        with self.assertRaises(openai.NotFoundError) as caught:
            client.chat.completions.create(model="claude-sonnet-4-6", messages=[{"role": "user", "content": "Hi"}])
        self.assertEqual(caught.exception.code, "model_not_found")
        validate(caught.exception.response.json(), "ErrorResponse")
        self.sim.fail(400, message="Invalid 'max_tokens': integer below minimum value.")
        with self.assertRaises(openai.BadRequestError) as refused:
            client.chat.completions.create(model="deepseek-v4-flash", messages=[{"role": "user", "content": "Hi"}], max_tokens=0)
        self.assertIn("max_tokens", refused.exception.message)
        validate(refused.exception.response.json(), "ErrorResponse")

    def test_upstream_errors_raise_the_sdk_exception_for_their_status_with_the_upstreams_message(self) -> None:
        client = self.sdk("/v1")
        cases = [
            (400, openai.BadRequestError, "invalid_request_error"),
            # City's key for the provider refused: a 502 (`upstream_auth_failed`), not the client's own 401/403.
            (401, openai.InternalServerError, "api_error"),
            (403, openai.InternalServerError, "api_error"),
            (404, openai.NotFoundError, "not_found_error"),
            (422, openai.UnprocessableEntityError, "invalid_request_error"),
            (429, openai.RateLimitError, "rate_limit_error"),
            (500, openai.InternalServerError, "api_error"),
            (503, openai.InternalServerError, "api_error"),
        ]
        for status, exception, error_type in cases:
            with self.subTest(status=status):
                self.sim.fail(status, message=f"The upstream refused with {status}.")
                with self.assertRaises(exception) as caught:
                    client.chat.completions.create(model="deepseek-v4-flash", messages=[{"role": "user", "content": "Hi"}])
                self.sim.reset()
                validate(caught.exception.response.json(), "ErrorResponse")
                self.assertIn(f"The upstream refused with {status}.", caught.exception.message)
                self.assertEqual(caught.exception.type, error_type)

    def test_a_stream_that_fails_midway_raises_an_api_error_in_the_sdk(self) -> None:
        self.sim.fail_after_chunks = 2
        client = self.sdk("/v1")
        received = []
        with self.assertRaises(openai.APIError) as caught:
            for chunk in client.chat.completions.create(
                model="deepseek-v4-flash", messages=[{"role": "user", "content": "Hi"}], stream=True
            ):
                received.append(chunk)
        self.assertTrue(received, "the chunks before the failure arrived")
        self.assertIn("upstream", caught.exception.message)
        for path, body in (
            ("/v1/chat/completions", {"model": "deepseek-v4-flash", "messages": [{"role": "user", "content": "Hi"}]}),
            ("/v1/completions", {"model": "deepseek-v4-flash", "prompt": "Once"}),  # served through chat
            ("/v1/completions", {"model": "gpt-3.5-turbo-instruct", "prompt": "Once"}),  # native
        ):
            with self.subTest(path=path, model=body["model"]):
                payloads = sse_payloads(self.user.post(path, json={"stream": True, **body}))
                self.assertGreater(len(payloads), 1)
                self.assertNotEqual(payloads[-1], "[DONE]")
                validate(json.loads(payloads[-1]), "ErrorResponse")

    def test_chat_parameters_reach_an_openai_compatible_upstream_unchanged(self) -> None:
        client = self.sdk("/v1")
        schema = {"type": "object", "properties": {"colour": {"type": "string"}}, "required": ["colour"], "additionalProperties": False}
        parameters: dict = {
            "max_completion_tokens": 30,
            "stop": ["\n\n", "END"],
            "seed": 42,
            "user": "player-7",
            "logprobs": True,
            "top_logprobs": 2,
            "response_format": {"type": "json_schema", "json_schema": {"name": "colour", "schema": schema, "strict": True}},
            "parallel_tool_calls": False,
            "tools": [WEATHER_TOOL],
            "tool_choice": "auto",
        }
        raw = client.chat.completions.with_raw_response.create(
            model="deepseek-v4-flash", messages=[{"role": "user", "content": "A colour?"}], n=2, **parameters
        )
        validate(raw.http_response.json(), "CreateChatCompletionResponse")
        self.assertEqual([c.index for c in raw.parse().choices], [0, 1])
        sent = self.sim.last_request.json
        self.assertEqual({name: sent.get(name) for name in parameters}, parameters)
        self.assertEqual(sent["n"], 2)

        texts: dict[int, str] = {}
        for chunk in client.chat.completions.create(
            model="deepseek-v4-flash", messages=[{"role": "user", "content": "A colour?"}], n=2, stream=True
        ):
            for choice in chunk.choices:
                texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
        self.assertEqual(texts, {0: self.sim.script.text, 1: self.sim.script.text})

    def test_completions_through_chat_echo_each_choice_and_refuse_what_chat_cannot_do(self) -> None:
        client = self.sdk("/v1")
        whole = client.completions.create(model="deepseek-v4-flash", prompt="Once", echo=True, n=2)
        self.assertEqual([c.text for c in whole.choices], ["Once" + self.sim.script.text] * 2)
        texts: dict[int, str] = {}
        for chunk in client.completions.create(model="deepseek-v4-flash", prompt="Once", echo=True, n=2, stream=True):
            for choice in chunk.choices:
                texts[choice.index] = texts.get(choice.index, "") + choice.text
        self.assertEqual(texts, {0: "Once" + self.sim.script.text, 1: "Once" + self.sim.script.text})
        sent = len(self.sim.requests)
        for extra, param in (
            ({"prompt": ["Once", "Twice"]}, "prompt"),
            ({"prompt": [1734, 2402]}, "prompt"),
            ({"prompt": ""}, "prompt"),
            ({"prompt": "Once", "suffix": "the end."}, "suffix"),
            ({"prompt": "Once", "best_of": 3}, "best_of"),
            ({"prompt": "Once", "logprobs": 2}, "logprobs"),
        ):
            with self.subTest(extra=extra):
                with self.assertRaises(openai.BadRequestError) as caught:
                    client.completions.create(model="deepseek-v4-flash", **extra)
                validate(caught.exception.response.json(), "ErrorResponse")
                self.assertEqual(caught.exception.param, param)
                self.assertIn(param, caught.exception.message)
        self.assertEqual(len(self.sim.requests), sent, "nothing reached the upstream")

    def test_embeddings_refuse_empty_input_and_take_token_ids(self) -> None:
        client = self.sdk("/v1")
        bad_inputs: list[Any] = ["", [], ["hello", ""], [[]], [1, "a"]]  # the last is not even what the SDK's types allow
        for bad in bad_inputs:
            with self.subTest(input=bad):
                with self.assertRaises(openai.BadRequestError) as caught:
                    client.embeddings.create(model="text-embedding-3-small", input=bad)
                self.assertEqual(caught.exception.param, "input")
        self.assertEqual(self.sim.requests, [])
        vectors = client.embeddings.create(model="text-embedding-3-small", input=[[15339, 1917], [3]], encoding_format="float")
        self.assertEqual(self.sim.last_request.json["input"], [[15339, 1917], [3]])
        self.assertEqual(len(vectors.data), 2)
