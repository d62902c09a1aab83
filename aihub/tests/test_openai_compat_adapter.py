"""The OpenAI-compatible adapter against the OpenAI simulator."""

import unittest
from typing import Any

from aihub.adapters.base import UpstreamError
from aihub.adapters.openai_compat import OpenAICompatAdapter
from aihub.tests.adapter_contract import AdapterContract
from aihub.tests.openai_schema import validate
from aihub.tests.upstream.openai_sim import OpenAISim, vector_for
from aihub.tests.upstream.sim import Reply, sse


class OpenAICompatAdapterTests(AdapterContract, unittest.IsolatedAsyncioTestCase):
    simulator_class = OpenAISim
    adapter_class = OpenAICompatAdapter
    provider = "openai"
    upstream_model = "gpt-sim"
    base_path = "/v1"

    async def test_fields_city_does_not_know_are_forwarded(self) -> None:
        await self.adapter.chat(self.upstream, self.chat_body(seed=7, logit_bias={"50256": -100}, some_future_field={"x": 1}))
        sent = self.sim.last_request.json
        self.assertEqual((sent["seed"], sent["logit_bias"], sent["some_future_field"]), (7, {"50256": -100}, {"x": 1}))

    async def test_streams_always_ask_the_upstream_for_usage(self) -> None:
        await self.collect(self.chat_body(stream=True, stream_options={"include_obfuscation": False}))
        sent = self.sim.last_request.json
        self.assertIs(sent["stream"], True)
        self.assertEqual(sent["stream_options"], {"include_obfuscation": False, "include_usage": True})

    async def test_usage_riding_on_the_last_choice_chunk_is_moved_to_its_own_chunk(self) -> None:
        # llama.cpp and older vLLM put usage on the final chunk that still has choices.
        self.sim.handler = lambda request: Reply.sse(
            [
                sse(
                    {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": "m",
                        "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}],
                    }
                ),
                ": keep-alive\n\n",
                sse(
                    {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": "m",
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
                    }
                ),
                "data: [DONE]\n\n",
            ]
        )
        chunks = await self.collect(self.chat_body(stream=True))
        self.assertEqual([c["choices"][0]["delta"] for c in chunks[:2]], [{"content": "Hi"}, {}])
        self.assertNotIn("usage", chunks[1])
        self.assertEqual(
            chunks[2],
            {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "m",
                "choices": [],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            },
        )

    async def test_an_error_event_midway_raises_a_502(self) -> None:
        self.sim.handler = lambda request: Reply.sse(
            [
                sse(
                    {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": "m",
                        "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}],
                    }
                ),
                sse({"error": {"message": "provider crashed", "code": 502}}),
            ]
        )
        with self.assertRaises(UpstreamError) as caught:
            await self.collect(self.chat_body(stream=True))
        self.assertEqual(caught.exception.status, 502)
        self.assertIn("provider crashed", caught.exception.message)

    async def test_embeddings_come_back_as_floats(self) -> None:
        answer = await self.adapter.embeddings(self.upstream, {"model": "x", "input": ["a b", "c"], "encoding_format": "base64"})
        validate(answer, "CreateEmbeddingResponse")
        self.assertEqual(answer["data"][1]["embedding"], vector_for("c", 8))
        self.assertNotIn("encoding_format", self.sim.last_request.json)
        self.assertEqual(self.sim.last_request.path, "/v1/embeddings")

    async def test_legacy_completions_native_and_streamed(self) -> None:
        answer = await self.adapter.completions(self.upstream, {"model": "x", "prompt": "Once upon", "max_tokens": 5})
        validate(answer, "CreateCompletionResponse")
        self.assertEqual(answer["choices"][0]["text"], self.sim.script.text)
        chunks: list[dict[str, Any]] = [
            c async for c in self.adapter.completions_stream(self.upstream, {"model": "x", "prompt": "Once upon"})
        ]
        self.assertEqual("".join(c["choices"][0]["text"] for c in chunks if c["choices"]), self.sim.script.text)
        self.assertEqual(chunks[-1]["usage"]["total_tokens"], 18)
        self.assertEqual(self.sim.last_request.path, "/v1/completions")
