"""The Gemini adapter against the Gemini simulator: the shared adapter contract, then what the
translation to and from Gemini's wire format must get right."""

import json
import time
import unittest
from typing import Any

import httpx
import openai
from openai.types.chat import ChatCompletionFunctionToolParam

from aihub.adapters.base import Upstream
from aihub.adapters.gemini import THOUGHT_SIGNATURE_FALLBACK, GeminiAdapter
from aihub.adapters.openai_shapes import REASONING_EFFORTS
from aihub.tests.adapter_contract import API_KEY, PIXEL_PNG, WEATHER_TOOL, AdapterContract
from aihub.tests.live import AiLiveTestCase, ThroughCityMixin
from aihub.tests.openai_schema import validate
from aihub.tests.upstream.gemini_sim import GeminiSim
from aihub.tests.upstream.openai_sim import vector_for
from aihub.tests.upstream.sim import Received

GEMINI_KEY = "test-gemini-key-not-real"
TIME_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}}},
}


class GeminiAdapterTests(AdapterContract, unittest.IsolatedAsyncioTestCase):
    simulator_class = GeminiSim
    adapter_class = GeminiAdapter
    provider = "google"
    adapter_name = "gemini"
    upstream_model = "gemini-2.5-flash"

    # --- contract hooks: Gemini's wire format read back -----------------------------------------

    def sent_model(self, received: Received) -> str:
        return received.path.removeprefix("/v1beta/models/").split(":")[0]

    def sent_key(self, received: Received) -> str | None:
        return received.headers.get("x-goog-api-key")

    def sent_system(self, received: Received) -> str | None:
        system = received.json.get("systemInstruction")
        return "\n".join(part["text"] for part in system["parts"]) if system else None

    def sent_user_texts(self, received: Received) -> list[str]:
        return [part["text"] for c in received.json["contents"] if c["role"] == "user" for part in c["parts"] if "text" in part]

    def sent_image_count(self, received: Received) -> int:
        return sum(
            1
            for c in received.json["contents"]
            for part in c["parts"]
            if (part.get("inlineData") or part.get("fileData") or {}).get("mimeType", "").startswith("image/")
        )

    def sent_max_tokens(self, received: Received) -> int | None:
        return received.json.get("generationConfig", {}).get("maxOutputTokens")

    def sent(self) -> dict[str, Any]:
        return self.sim.last_request.json

    # --- request translation --------------------------------------------------------------------

    async def test_it_calls_the_v1beta_methods_with_the_key_in_a_header(self) -> None:
        await self.adapter.chat(self.upstream, self.chat_body())
        self.assertEqual(self.sim.last_request.path, "/v1beta/models/gemini-2.5-flash:generateContent")
        await self.collect(self.chat_body(stream=True))
        self.assertEqual(self.sim.last_request.path, "/v1beta/models/gemini-2.5-flash:streamGenerateContent")
        self.assertEqual(self.sim.last_request.query, {"alt": "sse"})  # the key never rides in the URL
        self.assertEqual(self.sim.last_request.headers["x-goog-api-key"], API_KEY)

    async def test_system_messages_become_the_system_instruction_and_roles_become_user_and_model(self) -> None:
        messages = [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": "First."},
            {"role": "user", "content": [{"type": "text", "text": "Second."}]},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": "Third."},
        ]
        await self.adapter.chat(self.upstream, {"model": "m", "messages": messages})
        sent = self.sent()
        self.assertEqual(sent["systemInstruction"], {"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]})
        self.assertEqual(
            sent["contents"],
            [
                {"role": "user", "parts": [{"text": "First."}, {"text": "Second."}]},
                {"role": "model", "parts": [{"text": "Noted."}]},
                {"role": "user", "parts": [{"text": "Third."}]},
            ],
        )
        self.assertNotIn("generationConfig", sent)

    async def test_sampling_fields_go_into_the_generation_config(self) -> None:
        await self.adapter.chat(
            self.upstream,
            self.chat_body(
                temperature=1.5,
                top_p=0.8,
                stop=["END"],
                seed=7,
                n=2,
                presence_penalty=0.5,
                frequency_penalty=0.25,
                max_completion_tokens=99,
            ),
        )
        self.assertEqual(
            self.sent()["generationConfig"],
            {
                "temperature": 1.5,
                "topP": 0.8,
                "candidateCount": 2,
                "presencePenalty": 0.5,
                "frequencyPenalty": 0.25,
                "seed": 7,
                "maxOutputTokens": 99,
                "stopSequences": ["END"],
            },
        )

    async def test_n_asks_for_several_candidates_and_gets_several_choices(self) -> None:
        answer = await self.adapter.chat(self.upstream, self.chat_body(n=2))
        validate(answer, "CreateChatCompletionResponse")
        self.assertEqual([c["index"] for c in answer["choices"]], [0, 1])
        self.assertEqual({c["message"]["content"] for c in answer["choices"]}, {self.sim.script.text})

    async def test_response_format_becomes_a_json_mime_type_and_schema(self) -> None:
        schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": False}
        await self.adapter.chat(
            self.upstream, self.chat_body(response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}})
        )
        self.assertEqual(self.sent()["generationConfig"]["responseMimeType"], "application/json")
        self.assertEqual(self.sent()["generationConfig"]["responseJsonSchema"], schema)
        await self.adapter.chat(self.upstream, self.chat_body(response_format={"type": "json_object"}))
        self.assertEqual(self.sent()["generationConfig"], {"maxOutputTokens": 50, "responseMimeType": "application/json"})

    async def test_images_audio_and_pdfs_go_inline_and_image_urls_as_file_data(self) -> None:
        body = self.chat_body()
        body["messages"][1]["content"] = [
            {"type": "image_url", "image_url": {"url": PIXEL_PNG}},
            {"type": "image_url", "image_url": "https://example.com/photos/cat.webp?size=large"},  # a bare string, as some clients send
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
            {"type": "text", "text": "Describe all of these."},
        ]
        await self.adapter.chat(self.upstream, body)
        self.assertEqual(
            self.sent()["contents"][0]["parts"],
            [
                {"inlineData": {"mimeType": "image/png", "data": PIXEL_PNG.split(",", 1)[1]}},
                {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/photos/cat.webp?size=large"}},
                {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
                {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0x"}},
                {"text": "Describe all of these."},
            ],
        )

    async def test_tools_and_tool_choice_become_function_declarations_and_tool_config(self) -> None:
        cases = [
            ("auto", {"mode": "AUTO"}),
            ("required", {"mode": "ANY"}),
            ("none", {"mode": "NONE"}),
            ({"type": "function", "function": {"name": "get_time"}}, {"mode": "ANY", "allowedFunctionNames": ["get_time"]}),
        ]
        for openai_choice, calling in cases:
            await self.adapter.chat(self.upstream, self.chat_body(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=openai_choice))
            self.assertEqual(self.sent()["toolConfig"], {"functionCallingConfig": calling})
        self.assertEqual(
            self.sent()["tools"],
            [
                {
                    "functionDeclarations": [
                        {
                            "name": "get_weather",
                            "description": "Weather of a city.",
                            "parametersJsonSchema": WEATHER_TOOL["function"]["parameters"],
                        },
                        {"name": "get_time", "parametersJsonSchema": TIME_TOOL["function"]["parameters"]},
                    ]
                }
            ],
        )

    async def test_a_tool_round_trip_becomes_function_call_and_function_response_parts(self) -> None:
        self.sim.play("generate_content_function_call")
        first = await self.adapter.chat(self.upstream, self.chat_body(tools=[WEATHER_TOOL]))
        assistant = first["choices"][0]["message"]
        messages = [*self.chat_body()["messages"], {k: v for k, v in assistant.items() if v is not None}]
        messages.append({"role": "tool", "tool_call_id": assistant["tool_calls"][0]["id"], "content": '{"temperature": 18}'})
        messages.append({"role": "tool", "tool_call_id": assistant["tool_calls"][1]["id"], "content": "drizzle, 14 °C"})
        await self.adapter.chat(self.upstream, {"model": "m", "messages": messages, "tools": [WEATHER_TOOL]})
        contents = self.sent()["contents"]
        self.assertEqual([c["role"] for c in contents], ["user", "model", "user"])
        self.assertEqual(
            contents[1]["parts"],
            [
                {
                    "functionCall": {"name": "get_weather", "args": {"location": "Paris", "unit": "celsius"}},
                    "thoughtSignature": THOUGHT_SIGNATURE_FALLBACK,
                },
                {"functionCall": {"name": "get_weather", "args": {"location": "London", "unit": "celsius"}}},
            ],
        )
        self.assertEqual(
            contents[2]["parts"],
            [
                {"functionResponse": {"name": "get_weather", "response": {"temperature": 18}}},
                {"functionResponse": {"name": "get_weather", "response": {"result": "drizzle, 14 °C"}}},
            ],
        )

    async def test_what_gemini_cannot_take_is_refused_before_going_upstream(self) -> None:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"logprobs": True}, "logprobs"),
            ({"temperature": "hot"}, "temperature"),
            ({"response_format": "json"}, "response_format"),
            ({"modalities": ["text", "audio"]}, "modalities"),
            (
                {
                    "messages": [
                        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/render?id=3"}}]}
                    ]
                },
                "messages[0].content[0].image_url.url",
            ),
            (
                {"messages": [{"role": "user", "content": "Hi"}, {"role": "tool", "tool_call_id": "call_unknown", "content": "42"}]},
                "messages[1].tool_call_id",
            ),
            ({"tool_choice": "required"}, "tool_choice"),
            ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format.json_schema.schema"),
            ({"messages": [{"role": "narrator", "content": "Hi"}]}, "messages[0].role"),
            ({"logit_bias": {"50256": -100}}, "logit_bias"),
            ({"reasoning_effort": "extreme"}, "reasoning_effort"),
            (
                {"reasoning_effort": "low", "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}},
                "generationConfig.thinkingConfig.thinkingBudget",
            ),
            ({"function_call": "auto", "functions": [{"name": "f"}]}, "function_call"),
            ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
            ({"top_k": "many"}, "top_k"),
            ({"temperature": 0.5, "generationConfig": {"temperature": 0.9}}, "generationConfig.temperature"),
            ({"contents": []}, "contents"),  # an extension field that City sets itself from the messages
        ]
        await self.assert_refused_before_sending(cases)

    async def test_bookkeeping_fields_and_parallel_tool_calls_are_left_out_and_neutral_values_pass(self) -> None:
        await self.adapter.chat(
            self.upstream,
            self.chat_body(
                store=True,
                metadata={"run": "7"},
                service_tier="auto",
                user="player-7",
                prompt_cache_key="k1",
                parallel_tool_calls=False,
                logprobs=False,
                logit_bias={},
                functions=[],
                verbosity="medium",
                reasoning_effort=None,
            ),
        )
        sent = self.sim.last_request.json
        self.assertEqual(set(sent), {"contents", "systemInstruction", "generationConfig"})
        self.assertEqual(sent["generationConfig"], {"maxOutputTokens": 50})

    async def test_fields_that_are_not_openais_are_forwarded_to_gemini(self) -> None:
        safety = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
        await self.adapter.chat(
            self.upstream, self.chat_body(top_k=40, generationConfig={"thinkingConfig": {"thinkingBudget": 0}}, safetySettings=safety)
        )
        sent = self.sim.last_request.json
        self.assertEqual(sent["generationConfig"], {"maxOutputTokens": 50, "topK": 40, "thinkingConfig": {"thinkingBudget": 0}})
        self.assertEqual(sent["safetySettings"], safety)
        error = await self.expect_error(self.adapter.chat(self.upstream, self.chat_body(thinking={"type": "enabled"})))
        self.assertEqual((error.status, error.error_type), (400, "invalid_request_error"))
        self.assertIn('Unknown name "thinking"', error.message)  # Google's own word

    # --- reasoning_effort: thinkingConfig -------------------------------------------------------

    async def test_reasoning_effort_is_a_thinking_budget_within_each_gemini_2_5_models_range(self) -> None:
        cases = {  # upstream model → thinkingBudget for none, minimal, low, medium, high, xhigh, max
            "gemini-2.5-flash": [0, 512, 2048, 8192, 16384, 24576, 24576],
            "gemini-2.5-flash-lite": [0, 512, 2048, 8192, 16384, 24576, 24576],
            "gemini-2.5-pro": [128, 512, 2048, 8192, 16384, 24576, 32768],  # 2.5 Pro cannot stop thinking
        }
        for model, budgets in cases.items():
            upstream = Upstream(provider="google", adapter="gemini", model=model, base_url=self.sim.url, api_key=API_KEY)
            for effort, budget in zip(REASONING_EFFORTS, budgets, strict=True):
                await self.adapter.chat(upstream, self.chat_body(reasoning_effort=effort))
                self.assertEqual(
                    self.sim.last_request.json["generationConfig"],
                    {"maxOutputTokens": 50, "thinkingConfig": {"thinkingBudget": budget}},
                    (model, effort),
                )

    async def test_reasoning_effort_is_a_thinking_level_on_gemini_3_models(self) -> None:
        cases = {  # upstream model → thinkingLevel for none, minimal, low, medium, high, xhigh, max
            "gemini-3-flash-preview": ["MINIMAL", "MINIMAL", "LOW", "MEDIUM", "HIGH", "HIGH", "HIGH"],
            "gemini-3.1-pro-preview": ["LOW", "LOW", "LOW", "MEDIUM", "HIGH", "HIGH", "HIGH"],  # no minimal; cannot stop thinking
            "gemini-3-pro-preview": ["LOW", "LOW", "LOW", "HIGH", "HIGH", "HIGH", "HIGH"],  # no medium: the next level up
        }
        for model, levels in cases.items():
            upstream = Upstream(provider="google", adapter="gemini", model=model, base_url=self.sim.url, api_key=API_KEY)
            for effort, level in zip(REASONING_EFFORTS, levels, strict=True):
                await self.adapter.chat(upstream, self.chat_body(reasoning_effort=effort))
                self.assertEqual(
                    self.sim.last_request.json["generationConfig"]["thinkingConfig"], {"thinkingLevel": level}, (model, effort)
                )

    async def test_thought_summaries_asked_beside_reasoning_effort_come_back_as_reasoning_content(self) -> None:
        body = self.chat_body(reasoning_effort="medium", generationConfig={"thinkingConfig": {"includeThoughts": True}})
        answer = await self.adapter.chat(self.upstream, body)
        validate(answer, "CreateChatCompletionResponse")
        self.assertEqual(
            self.sim.last_request.json["generationConfig"]["thinkingConfig"], {"thinkingBudget": 8192, "includeThoughts": True}
        )
        message = answer["choices"][0]["message"]
        self.assertEqual((message["reasoning_content"], message["content"]), (self.sim.script.reasoning, self.sim.script.text))
        chunks = await self.collect({**body, "stream": True})
        deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
        for chunk in chunks:
            validate(chunk, "CreateChatCompletionStreamResponse")
        self.assertEqual("".join(d.get("reasoning_content") or "" for d in deltas), self.sim.script.reasoning)
        self.assertEqual("".join(d.get("content") or "" for d in deltas), self.sim.script.text)
        self.assertLess(
            next(i for i, d in enumerate(deltas) if d.get("reasoning_content")), next(i for i, d in enumerate(deltas) if d.get("content"))
        )
        # Without includeThoughts Gemini sends none, and there is no reasoning_content.
        answer = await self.adapter.chat(self.upstream, self.chat_body(reasoning_effort="medium"))
        self.assertNotIn("reasoning_content", answer["choices"][0]["message"])

    # --- answer translation ---------------------------------------------------------------------

    async def test_a_recorded_function_call_answer_becomes_openai_tool_calls(self) -> None:
        self.sim.play("generate_content_function_call")
        answer = await self.adapter.chat(self.upstream, self.chat_body(tools=[WEATHER_TOOL]))
        validate(answer, "CreateChatCompletionResponse")
        message = answer["choices"][0]["message"]
        self.assertIsNone(message["content"])
        self.assertEqual(
            [json.loads(c["function"]["arguments"]) for c in message["tool_calls"]],
            [{"location": "Paris", "unit": "celsius"}, {"location": "London", "unit": "celsius"}],
        )
        self.assertEqual(len({c["id"] for c in message["tool_calls"]}), 2)
        # Gemini says STOP after calling functions; OpenAI callers wait for tool_calls.
        self.assertEqual(answer["choices"][0]["finish_reason"], "tool_calls")
        # Thinking tokens are completion tokens, as OpenAI counts reasoning tokens.
        self.assertEqual(
            answer["usage"],
            {"prompt_tokens": 74, "completion_tokens": 86, "total_tokens": 160, "completion_tokens_details": {"reasoning_tokens": 56}},
        )

    async def test_thought_summaries_are_reasoning_content_and_max_tokens_is_length(self) -> None:
        self.sim.play("generate_content_thinking_max_tokens")
        answer = await self.adapter.chat(self.upstream, self.chat_body())
        validate(answer, "CreateChatCompletionResponse")
        self.assertEqual(answer["choices"][0]["message"]["content"], "The printing press was invented around 1440 by")
        self.assertEqual(answer["choices"][0]["message"]["reasoning_content"], "**Planning the essay**\n\nI should start with Gutenberg.")
        self.assertEqual(answer["choices"][0]["finish_reason"], "length")
        self.assertEqual(answer["usage"]["prompt_tokens_details"], {"cached_tokens": 1024})
        self.assertEqual((answer["usage"]["prompt_tokens"], answer["usage"]["completion_tokens"]), (1200, 52))

    async def test_safety_stops_and_blocked_prompts_are_content_filter(self) -> None:
        for recording in ("generate_content_safety", "generate_content_prompt_blocked"):
            self.sim.play(recording)
            answer = await self.adapter.chat(self.upstream, self.chat_body())
            validate(answer, "CreateChatCompletionResponse")
            self.assertEqual(answer["choices"][0]["finish_reason"], "content_filter", recording)
            self.assertEqual(answer["choices"][0]["message"]["content"], "", recording)

    async def test_the_answer_does_not_tell_that_the_upstream_is_gemini(self) -> None:
        self.sim.play("generate_content")
        answer = await self.adapter.chat(self.upstream, self.chat_body())
        self.assertEqual(answer["model"], "city-model-id")
        self.assertTrue(answer["id"].startswith("chatcmpl-"))
        self.assertEqual(answer["usage"], {"prompt_tokens": 9, "completion_tokens": 10, "total_tokens": 19})
        for word in ("gemini", "candidates", "usageMetadata", "Nq1LaPDYLNqzmecPq_bFsAY"):
            self.assertNotIn(word, json.dumps(answer))

    async def test_recorded_errors_keep_googles_message_with_openai_types(self) -> None:
        self.sim.play("error_api_key", status=400)
        error = await self.expect_error(self.adapter.chat(self.upstream, self.chat_body()))
        self.assertEqual((error.status, error.retryable, error.error_type, error.code), (400, False, "invalid_request_error", None))
        self.assertIn("API key not valid", error.message)
        self.sim.play("error_invalid_argument", status=400)
        error = await self.expect_error(self.collect(self.chat_body(stream=True)))
        self.assertEqual((error.status, error.retryable), (400, False))
        self.assertIn("contents is not specified", error.message)
        self.sim.play("error_unavailable", status=503)
        error = await self.expect_error(self.adapter.chat(self.upstream, self.chat_body()))
        self.assertEqual((error.status, error.retryable), (503, True))
        self.assertIn("overloaded", error.message)

    # --- streams --------------------------------------------------------------------------------

    async def test_a_recorded_text_stream_keeps_the_last_usage(self) -> None:
        self.sim.play("stream_text")
        chunks = await self.collect(self.chat_body(stream=True))
        for chunk in chunks:
            validate(chunk, "CreateChatCompletionStreamResponse")
        self.assertEqual(chunks[0]["choices"][0]["delta"], {"role": "assistant", "content": ""})
        self.assertEqual(
            [c["choices"][0]["delta"].get("content") for c in chunks[1:4]], ["The", " sky is blue because of Rayleigh", " scattering."]
        )
        self.assertEqual(chunks[4]["choices"][0]["finish_reason"], "stop")
        self.assertEqual(
            chunks[5], {**chunks[5], "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 11, "total_tokens": 20}}
        )
        self.assertEqual(len(chunks), 6)

    async def test_a_recorded_function_call_stream_becomes_whole_indexed_tool_calls(self) -> None:
        self.sim.play("stream_function_call")
        chunks = await self.collect(self.chat_body(stream=True, tools=[WEATHER_TOOL, TIME_TOOL]))
        calls = [call for c in chunks if c["choices"] for call in c["choices"][0]["delta"].get("tool_calls") or []]
        for chunk in chunks:
            validate(chunk, "CreateChatCompletionStreamResponse")
        self.assertEqual(
            [(c["index"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls],
            [(0, "get_weather", {"location": "Paris"}), (1, "get_time", {"timezone": "Europe/Paris"})],
        )
        self.assertTrue(all(c["id"].startswith("call_") and c["type"] == "function" for c in calls))
        self.assertEqual("".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]), "Let me look that up.")
        self.assertEqual(
            [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]], ["tool_calls"]
        )
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 24 + 32)

    async def test_an_error_event_midway_raises_from_the_stream(self) -> None:
        self.sim.play("stream_error_unavailable")
        received: list[dict[str, Any]] = []

        async def drain() -> None:
            async for chunk in self.adapter.chat_stream(self.upstream, self.chat_body(stream=True)):
                received.append(chunk)

        error = await self.expect_error(drain())
        self.assertEqual((error.status, error.retryable), (503, True))
        self.assertIn("overloaded", error.message)
        self.assertEqual("".join(c["choices"][0]["delta"].get("content") or "" for c in received), "Once upon")

    async def test_each_text_delta_is_yielded_as_soon_as_it_arrives(self) -> None:
        self.sim.chunk_delay_seconds = 0.1
        started = time.monotonic()
        arrivals = []
        async for chunk in self.adapter.chat_stream(self.upstream, self.chat_body(stream=True)):
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                arrivals.append(time.monotonic() - started)
        self.assertEqual(len(arrivals), 4)
        self.assertLess(arrivals[0], arrivals[-1] - 0.2)  # events 0.1 s apart stay apart

    # --- embeddings -----------------------------------------------------------------------------

    async def test_one_input_is_embedded_with_embed_content(self) -> None:
        answer = await self.adapter.embeddings(self.upstream, {"model": "city-embed", "input": "hello world", "dimensions": 4})
        validate(answer, "CreateEmbeddingResponse")
        self.assertEqual(self.sim.last_request.path, "/v1beta/models/gemini-2.5-flash:embedContent")
        self.assertEqual(self.sent(), {"content": {"parts": [{"text": "hello world"}]}, "outputDimensionality": 4})
        self.assertEqual(answer["data"], [{"object": "embedding", "index": 0, "embedding": vector_for("hello world", 4)}])
        self.assertEqual((answer["model"], answer["usage"]), ("city-embed", {"prompt_tokens": 3, "total_tokens": 3}))

    async def test_several_inputs_are_embedded_in_one_batch(self) -> None:
        answer = await self.adapter.embeddings(self.upstream, {"model": "city-embed", "input": ["a", "b c"]})
        validate(answer, "CreateEmbeddingResponse")
        self.assertEqual(self.sim.last_request.path, "/v1beta/models/gemini-2.5-flash:batchEmbedContents")
        self.assertEqual([r["model"] for r in self.sent()["requests"]], ["models/gemini-2.5-flash"] * 2)
        self.assertEqual([d["embedding"] for d in answer["data"]], [vector_for("a", 8), vector_for("b c", 8)])
        self.assertEqual([d["index"] for d in answer["data"]], [0, 1])

    async def test_more_inputs_than_one_batch_takes_go_as_several_batches_in_order(self) -> None:
        texts = [f"line {i}" for i in range(250)]
        answer = await self.adapter.embeddings(self.upstream, {"model": "e", "input": texts, "dimensions": 2})
        self.assertEqual(sorted(len(r.json["requests"]) for r in self.sim.requests), [50, 100, 100])
        self.assertEqual([d["embedding"] for d in answer["data"]], [vector_for(t, 2) for t in texts])
        self.assertEqual([d["index"] for d in answer["data"]], list(range(250)))

    async def test_recorded_embedding_answers_and_token_id_inputs(self) -> None:
        self.sim.play("embed_content")
        answer = await self.adapter.embeddings(self.upstream, {"model": "e", "input": "x"})
        self.assertEqual(answer["data"][0]["embedding"][:2], [0.013168523, -0.008711934])
        self.sim.play("batch_embed_contents")
        answer = await self.adapter.embeddings(self.upstream, {"model": "e", "input": ["x", "y"]})
        self.assertEqual(answer["data"][1]["embedding"][:2], [-0.021144226, 0.0075981836])
        error = await self.expect_error(self.adapter.embeddings(self.upstream, {"model": "e", "input": [[101, 202]]}))
        self.assertEqual((error.status, error.param), (400, "input"))


class GeminiSimulatorTests(unittest.TestCase):
    """The simulator refuses what Google's API refuses, so the adapter tests above mean something."""

    def test_it_refuses_what_the_real_api_refuses(self) -> None:
        with GeminiSim() as sim:
            url = f"{sim.url}/v1beta/models/gemini-2.5-flash:generateContent"
            user = {"role": "user", "parts": [{"text": "Hi"}]}
            call = {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]}
            thinking = [  # (model, thinkingConfig, status)
                ("gemini-2.5-flash", {"thinkingBudget": 0}, 200),
                ("gemini-2.5-pro", {"thinkingBudget": 0}, 400),
                ("gemini-2.5-pro", {"thinkingBudget": 100}, 400),
                ("gemini-2.5-pro", {"thinkingBudget": -1}, 200),
                ("gemini-2.5-flash", {"thinkingLevel": "LOW"}, 400),
                ("gemini-3-flash-preview", {"thinkingLevel": "MINIMAL"}, 200),
                ("gemini-3.1-pro-preview", {"thinkingLevel": "MINIMAL"}, 400),
                ("gemini-3.1-pro-preview", {"thinkingLevel": "LOW", "thinkingBudget": 1024}, 400),
                ("gemini-3.1-pro-preview", {"thinkingLevel": "LOW", "includeThoughts": True}, 200),
                ("gemini-3.1-pro-preview", {"effort": "LOW"}, 400),
            ]
            for model, config, status in thinking:
                response = httpx.post(
                    f"{sim.url}/v1beta/models/{model}:generateContent",
                    headers={"x-goog-api-key": "k"},
                    json={"contents": [user], "generationConfig": {"thinkingConfig": config}},
                )
                self.assertEqual(response.status_code, status, (model, config))
            cases = [
                ({}, 403, {"contents": [user]}),
                ({"x-goog-api-key": "k"}, 400, {"contents": []}),
                ({"x-goog-api-key": "k"}, 400, {"contents": [{"role": "assistant", "parts": [{"text": "Hi"}]}]}),
                ({"x-goog-api-key": "k"}, 400, {"contents": [user], "generationConfig": {"max_tokens": 5}}),
                ({"x-goog-api-key": "k"}, 400, {"contents": [user, call, user]}),
                ({"x-goog-api-key": "k"}, 200, {"contents": [user]}),
            ]
            for headers, status, body in cases:
                response = httpx.post(url, json=body, headers=headers)
                self.assertEqual(response.status_code, status, body)
                if status != 200:
                    self.assertEqual(set(response.json()["error"]), {"code", "message", "status"})


class GeminiThroughCityTests(ThroughCityMixin[GeminiSim], AiLiveTestCase):
    """The official OpenAI SDK against City, with Gemini served by the Gemini simulator: the caller
    sees OpenAI's shapes only."""

    simulator = GeminiSim
    api_key_env, api_key, base_url_env = "GEMINI_API_KEY", GEMINI_KEY, "GEMINI_BASE_URL"

    @property
    def gemini(self) -> GeminiSim:
        return self.provider

    def test_the_openai_sdk_cannot_tell_the_upstream_is_gemini(self) -> None:
        raw = self.sdk.chat.completions.with_raw_response.create(
            model="gemini-2.5-flash",
            max_completion_tokens=50,
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        )
        validate(raw.http_response.json(), "CreateChatCompletionResponse")
        for trace in ("candidates", "usagemetadata", "modelversion", "responseid", "STOP"):
            self.assertNotIn(trace, raw.http_response.text)
        completion = raw.parse()
        self.assertEqual((completion.model, completion.choices[0].message.content), ("gemini-2.5-flash", self.gemini.script.text))
        assert completion.usage is not None
        self.assertEqual((completion.usage.prompt_tokens, completion.usage.completion_tokens), (11, 7))
        sent = self.gemini.last_request
        self.assertEqual((sent.path, sent.headers["x-goog-api-key"]), ("/v1beta/models/gemini-2.5-flash:generateContent", GEMINI_KEY))
        self.assertEqual(sent.json["systemInstruction"], {"parts": [{"text": "Be brief."}]})

        chunks = list(
            self.sdk.chat.completions.create(
                model="gemini-2.5-flash", messages=[{"role": "user", "content": "Hi"}], stream=True, stream_options={"include_usage": True}
            )
        )
        self.assertEqual("".join(c.choices[0].delta.content or "" for c in chunks if c.choices), self.gemini.script.text)
        usage = chunks[-1].usage
        assert usage is not None
        self.assertEqual((chunks[-1].choices, usage.total_tokens), ([], 18))

        vectors = self.sdk.embeddings.create(model="gemini-embedding-001", input=["hello", "world"], dimensions=4)
        self.assertEqual([d.embedding for d in vectors.data], [vector_for("hello", 4), vector_for("world", 4)])
        self.assertEqual(self.gemini.last_request.path, "/v1beta/models/gemini-embedding-001:batchEmbedContents")

        self.gemini.fail(400, message="* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.")
        with self.assertRaises(openai.BadRequestError) as caught:
            self.sdk.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "Hi"}])
        error = caught.exception.response.json()
        validate(error, "ErrorResponse")
        self.assertIn("must not be empty", error["error"]["message"])
        self.assertNotIn("INVALID_ARGUMENT", caught.exception.response.text)

    def test_an_openai_field_gemini_cannot_honour_is_refused_by_name_before_going_upstream(self) -> None:
        with self.assertRaises(openai.BadRequestError) as caught:
            self.sdk.chat.completions.create(
                model="gemini-2.5-flash", messages=[{"role": "user", "content": "Hi"}], logit_bias={"1734": -100}
            )
        validate(caught.exception.response.json(), "ErrorResponse")
        self.assertEqual(caught.exception.param, "logit_bias")
        self.assertEqual(self.gemini.requests, [])
        self.sdk.chat.completions.create(
            model="gemini-2.5-flash",
            messages=[{"role": "user", "content": "Hi"}],
            user="player-7",
            extra_body={"top_k": 40, "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}},
        )
        self.assertEqual(self.gemini.last_request.json["generationConfig"], {"topK": 40, "thinkingConfig": {"thinkingBudget": 0}})

    def test_reasoning_effort_through_the_openai_sdk(self) -> None:
        completion = self.sdk.chat.completions.create(
            model="gemini-3.1-pro-preview", messages=[{"role": "user", "content": "Hi"}], reasoning_effort="medium"
        )
        self.assertEqual(completion.choices[0].message.content, self.gemini.script.text)
        self.assertEqual(self.gemini.last_request.json["generationConfig"], {"thinkingConfig": {"thinkingLevel": "MEDIUM"}})
        reasoning, text = "", ""
        for chunk in self.sdk.chat.completions.create(
            model="gemini-2.5-pro",
            messages=[{"role": "user", "content": "Hi"}],
            reasoning_effort="none",
            stream=True,
            extra_body={"generationConfig": {"thinkingConfig": {"includeThoughts": True}}},
        ):
            if chunk.choices:
                reasoning += (chunk.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
                text += chunk.choices[0].delta.content or ""
        self.assertEqual((reasoning, text), (self.gemini.script.reasoning, self.gemini.script.text))
        self.assertEqual(
            self.gemini.last_request.json["generationConfig"], {"thinkingConfig": {"thinkingBudget": 128, "includeThoughts": True}}
        )
        with self.assertRaises(openai.BadRequestError) as caught:
            self.sdk.chat.completions.create(
                model="gemini-2.5-flash",
                messages=[{"role": "user", "content": "Hi"}],
                reasoning_effort="low",
                extra_body={"generationConfig": {"thinkingConfig": {"thinkingBudget": 10}}},
            )
        self.assertEqual(caught.exception.param, "generationConfig.thinkingConfig.thinkingBudget")
