"""City's text and stream API, and the rules every AI call keeps: studio checks, model lookup,
upstream errors, retries and fail-over before the first byte only, disconnects, runtime env and
usage records — all end to end against a real City process and loopback upstreams."""

import json
import time
from typing import Any

import httpx

from aihub.models import UsageRecord
from aihub.tests.live import AiLiveTestCase
from aihub.tests.upstream.openai_sim import OpenAISim
from aihub.tests.upstream.sim import Reply, sse

HI = [{"role": "user", "content": "Hi"}]
FLASH_PRICES = (140_000, 280_000)  # deepseek-v4-flash, micro-USD per million tokens


def events(response: httpx.Response) -> list[tuple[str | None, Any]]:
    """(event, data) of each server-sent event; event is None for a data-only event."""
    found: list[tuple[str | None, Any]] = []
    name: str | None = None
    for line in response.text.splitlines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            found.append((name, json.loads(line[len("data: ") :])))
            name = None
    return found


class AiLive(AiLiveTestCase):
    city_env = {"UPSTREAM_READ_TIMEOUT_SECONDS": "1"}

    def records(self, count: int, timeout: float = 5.0) -> list[UsageRecord]:
        """The studio's usage records, once `count` of them are written."""
        deadline = time.monotonic() + timeout
        while True:
            rows = list(UsageRecord.objects.filter(studio_id=self.studio["id"]).order_by("id"))
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


class TextApiTests(AiLive):
    def test_text_answers_a_message(self) -> None:
        answer = self.ok(
            self.user.post(
                "/v1/ai/text",
                json={
                    "model": "deepseek-v4-flash",
                    "prompt": "Hello",
                    "system": "Be brief.",
                    "max_tokens": 50,
                    "temperature": 0.2,
                    "top_p": 0.9,
                },
            )
        )
        self.assertTrue(answer["id"].startswith("msg_"))
        self.assertEqual(answer["role"], "assistant")
        self.assertEqual(answer["parts"], [{"type": "text", "text": self.sim.script.text}])
        self.assertEqual((answer["model"], answer["finish_reason"]), ("deepseek-v4-flash", "stop"))
        self.assertEqual(answer["usage"], {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18})
        sent = self.sim.last_request.json
        self.assertEqual(sent["messages"], [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}])
        self.assertEqual((sent["model"], sent["max_tokens"], sent["temperature"], sent["top_p"]), ("deepseek-v4-flash", 50, 0.2, 0.9))

    def test_text_takes_messages_with_parts(self) -> None:
        messages = [
            {"role": "user", "parts": [{"type": "text", "text": "What is this?"}, {"type": "image", "url": "https://example.com/cat.png"}]}
        ]
        self.ok(self.user.post("/v1/ai/text", json={"model": "deepseek-v4-flash", "messages": messages}))
        self.assertEqual(
            self.sim.last_request.json["messages"],
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                    ],
                }
            ],
        )

    def test_text_shows_reasoning_and_tool_calls_as_parts(self) -> None:
        self.sim.script.tool_call = ("get_weather", {"city": "Oslo"})
        answer = self.ok(
            self.user.post(
                "/v1/ai/text",
                json={
                    "model": "deepseek-v4-flash",
                    "prompt": "Weather?",
                    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
                },
            )
        )
        self.assertEqual(
            answer["parts"], [{"type": "tool_call", "id": "call_sim_1", "name": "get_weather", "arguments": '{"city": "Oslo"}'}]
        )
        self.assertEqual(answer["finish_reason"], "tool_calls")
        self.sim.handler = lambda request: Reply.json(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 1,
                "model": "m",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "reasoning_content": "Think.", "content": "42"}, "finish_reason": "stop"}
                ],
            }
        )
        answer = self.ok(self.user.post("/v1/ai/text", json={"model": "deepseek-reasoner", "prompt": "Answer?"}))
        self.assertEqual(answer["parts"], [{"type": "reasoning", "text": "Think."}, {"type": "text", "text": "42"}])

    def test_text_refuses_bad_input_naming_the_field(self) -> None:
        cases = [
            ({"model": "deepseek-v4-flash"}, "prompt"),
            ({"model": "deepseek-v4-flash", "prompt": "a", "messages": HI}, "prompt"),
            ({"model": "deepseek-v4-flash", "prompt": "a", "max_tokens": 0}, "max_tokens"),
            ({"model": "deepseek-v4-flash", "prompt": "a", "temperature": 3}, "temperature"),
            ({"model": "deepseek-v4-flash", "messages": [{"role": "robot", "content": "x"}]}, "messages[0]"),
            ({"prompt": "a"}, "model"),
            ({"model": "deepseek-v4-flash", "prompt": 3}, "prompt"),
            ({"model": "deepseek-v4-flash", "messages": "Hi"}, "messages"),
            ({"model": "deepseek-v4-flash", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
            ({"model": "deepseek-v4-flash", "prompt": "a", "system": ["Be brief."]}, "system"),
            ({"model": "deepseek-v4-flash", "prompt": "a", "bogus": 1}, "bogus"),
            ({"model": "deepseek-v4-flash", "prompt": "a", "stream": True}, "stream"),
            ({"model": "deepseek-v4-flash", "prompt": "a", "n": 2}, "n"),
            ({"model": "deepseek-v4-flash", "prompt": "a", "logprobs": True}, "logprobs"),
            ({"model": "deepseek-v4-flash", "prompt": "a", "top_p": "high"}, "top_p"),
            ({"model": "deepseek-v4-flash", "prompt": "a", "stop": 5}, "stop"),
            ({"model": "deepseek-v4-flash", "prompt": "a", "seed": 1.5}, "seed"),
            ({"model": "deepseek-v4-flash", "prompt": "a", "tools": {"name": "f"}}, "tools"),
            ({"model": "deepseek-v4-flash", "prompt": "a", "max_completion_tokens": 0}, "max_completion_tokens"),
        ]
        for route in ("/v1/ai/text", "/v1/ai/stream"):
            for body, param in cases:
                with self.subTest(route=route, body=body):
                    response = self.user.post(route, json=body)
                    self.assertEqual(response.status_code, 400, response.text)
                    self.assertEqual(response.json()["error"]["type"], "invalid_request_error")
                    self.assertEqual(response.json()["error"]["param"], param)
                    self.assertIn(param.split("[")[0], response.json()["error"]["message"])
        self.assertEqual(self.sim.requests, [])
        # None of them was recorded: the first record is this good call's.
        self.ok(self.user.post("/v1/ai/text", json={"model": "deepseek-v4-flash", "prompt": "a", "n": 1, "top_k": 5, "seed": 7}))
        self.assertEqual([(r.modality, r.status) for r in self.records(1)], [("text", 200)])
        self.assertEqual((self.sim.last_request.json["top_k"], self.sim.last_request.json["seed"]), (5, 7))

    def test_stream_sends_start_deltas_and_done(self) -> None:
        response = self.user.post("/v1/ai/stream", json={"model": "deepseek-v4-flash", "prompt": "Hello"})
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response.headers["content-type"].startswith("text/event-stream"))
        found = events(response)
        names = [name for name, _ in found]
        self.assertEqual(names[0], "start")
        self.assertEqual(names[-1], "done")
        self.assertEqual(set(names[1:-1]), {"delta"})
        self.assertGreaterEqual(len(names), 4)
        start, done = found[0][1], found[-1][1]
        self.assertEqual(start, {"id": done["id"], "model": "deepseek-v4-flash", "role": "assistant"})
        self.assertEqual("".join(d["text"] for n, d in found if n == "delta"), self.sim.script.text)
        self.assertEqual(done["parts"], [{"type": "text", "text": self.sim.script.text}])
        self.assertEqual((done["finish_reason"], done["usage"]["total_tokens"]), ("stop", 18))

    def test_stream_reports_a_failure_midway_as_an_error_event(self) -> None:
        self.sim.fail_after_chunks = 3
        found = events(self.user.post("/v1/ai/stream", json={"model": "deepseek-v4-flash", "prompt": "Hello"}))
        self.assertEqual(found[0][0], "start")
        self.assertEqual(found[-1][0], "error")
        self.assertEqual(found[-1][1]["error"]["type"], "api_error")
        self.assertNotIn("done", [name for name, _ in found])
        self.assertEqual(len(self.sim.requests), 1, "nothing is retried once the stream has started")


class RulesTests(AiLive):
    def test_a_studio_id_other_than_the_tokens_is_refused(self) -> None:
        other = self.ok(self.admin.post("/v1/studios/create", json={"name": "Other"}))
        routes: list[tuple[str, dict[str, Any]]] = [
            ("/v1/ai/text", {"prompt": "Hi"}),
            ("/v1/chat/completions", {"messages": HI}),
            ("/v1/ai/stream", {"prompt": "Hi"}),
        ]
        for route, body in routes:
            with self.subTest(route=route):
                response = self.user.post(route, json={"model": "deepseek-v4-flash", "studio_id": other["id"], **body})
                self.assertEqual(response.status_code, 403)
                self.assertEqual(response.json()["error"]["code"], "studio_mismatch")
        self.ok(self.user.post("/v1/ai/text", json={"model": "deepseek-v4-flash", "studio_id": self.studio["id"], "prompt": "Hi"}))
        self.assertNotIn("studio_id", self.sim.last_request.json)
        self.assertEqual(len(self.sim.requests), 1)

    def test_the_admin_names_the_studio(self) -> None:
        response = self.admin.post("/v1/ai/text", json={"model": "deepseek-v4-flash", "prompt": "Hi"})
        self.assertEqual((response.status_code, response.json()["error"]["param"]), (400, "studio_id"))
        self.ok(self.admin.post("/v1/ai/text", json={"model": "deepseek-v4-flash", "prompt": "Hi", "studio_id": self.studio["id"]}))
        self.assertEqual(self.records(1)[0].token_id, None)

    def test_unknown_and_unconfigured_models_are_not_found(self) -> None:
        for model in ("gpt-17", "claude-sonnet-4-6", 42):
            with self.subTest(model=model):
                response = self.user.post("/v1/chat/completions", json={"model": model, "messages": HI})
                expected = 400 if model == 42 else 404
                self.assertEqual(response.status_code, expected)
                if expected == 404:
                    self.assertEqual(
                        response.json()["error"],
                        {
                            "message": response.json()["error"]["message"],
                            "type": "not_found_error",
                            "code": "model_not_found",
                            "param": "model",
                        },
                    )

    def test_a_model_is_only_asked_what_it_does(self) -> None:
        for route, body in [
            ("/v1/chat/completions", {"model": "text-embedding-3-small", "messages": HI}),
            ("/v1/ai/text", {"model": "text-embedding-3-small", "prompt": "Hi"}),
            ("/v1/embeddings", {"model": "deepseek-v4-flash", "input": "Hi"}),
        ]:
            with self.subTest(route=route):
                response = self.user.post(route, json=body)
                self.assertEqual(response.status_code, 400)
                self.assertEqual((response.json()["error"]["code"], response.json()["error"]["param"]), ("unsupported_model", "model"))
        self.assertEqual(self.sim.requests, [])

    def test_a_model_is_callable_right_after_its_key_is_set_and_gone_after_it_is_removed(self) -> None:
        chat = {"model": "claude-sonnet-4-6", "messages": HI}
        self.assertEqual(self.user.post("/v1/chat/completions", json=chat).status_code, 404)
        self.assertNotIn("kimi-k2.5", [m["id"] for m in self.ok(self.user.get("/v1/models"))["data"]])
        self.set_env(MOONSHOT_API_KEY="sk-test-moonshot", MOONSHOT_BASE_URL=self.sim.url + "/v1")
        self.assertIn("kimi-k2.5", [m["id"] for m in self.ok(self.user.get("/v1/models"))["data"]])
        self.ok(self.user.post("/v1/chat/completions", json={"model": "kimi-k2.5", "messages": HI}))
        self.assertEqual(self.sim.last_request.headers["authorization"], "Bearer sk-test-moonshot")
        self.remove_env("MOONSHOT_API_KEY")
        self.assertNotIn("kimi-k2.5", [m["id"] for m in self.ok(self.user.get("/v1/ai/models"))["data"]])
        self.assertEqual(self.user.post("/v1/chat/completions", json={"model": "kimi-k2.5", "messages": HI}).status_code, 404)

    def test_a_local_server_is_callable_once_its_base_url_is_set(self) -> None:
        self.assertEqual(self.user.post("/v1/chat/completions", json={"model": "local-chat", "messages": HI}).status_code, 404)
        self.set_env(LOCAL_OPENAI_BASE_URL=self.sim.url + "/v1", LOCAL_OPENAI_MODEL="qwen2.5:7b")
        answer = self.ok(self.user.post("/v1/chat/completions", json={"model": "local-chat", "messages": HI}))
        self.assertEqual(answer["model"], "local-chat")
        self.assertEqual(self.sim.last_request.json["model"], "qwen2.5:7b")
        self.assertNotIn("authorization", self.sim.last_request.headers)

    def test_the_admin_sees_every_model_with_its_env(self) -> None:
        listing = self.ok(self.admin.get("/v1/ai/models"))
        by_id = {item["id"]: item for item in listing["items"]}
        claude = by_id["claude-sonnet-4-6"]
        self.assertFalse(claude["callable"])
        self.assertIn({"key": "ANTHROPIC_API_KEY", "description": "anthropic API key", "required": True}, claude["env_requirements"])
        self.assertEqual(claude["default_modes"], ["text", "stream", "openai"])
        self.assertTrue(by_id["deepseek-v4-flash"]["callable"])
        self.assertEqual(
            by_id["deepseek-v4-flash"]["meta"]["price"],
            {
                "currency": "USD",
                "input_per_million_tokens": "0.14",
                "output_per_million_tokens": "0.28",
                "cached_input_per_million_tokens": "0.0028",
            },
        )
        self.assertEqual(
            claude["meta"]["price"],
            {
                "currency": "USD",
                "input_per_million_tokens": "3",
                "output_per_million_tokens": "15",
                "cached_input_per_million_tokens": "0.3",
                "cache_write_per_million_tokens": "3.75",
                "cache_write_1h_per_million_tokens": "6",
            },
        )
        user_item = next(i for i in self.ok(self.user.get("/v1/ai/models"))["items"] if i["id"] == "deepseek-v4-flash")
        self.assertEqual(set(user_item), {"id", "name", "description", "modalities", "tags", "meta"})
        for required in (
            "claude-haiku-4-5",
            "claude-opus-4-6",
            "deepseek-chat",
            "deepseek-reasoner",
            "text-embedding-3-large",
            "gemini-2.5-pro",
            "kimi-k2.5",
            "qwen3-max",
            "glm-5",
            "llama-4-maverick",
            "local-chat",
        ):
            self.assertIn(required, by_id)

    def test_a_malformed_upstream_chunk_ends_the_stream_with_an_error_event(self) -> None:
        good = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        self.sim.handler = lambda request: Reply.sse(
            [
                sse({**good, "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}),
                sse({**good, "choices": [{"index": 0, "delta": "not an object", "finish_reason": None}]}),
                "data: [DONE]\n\n",
            ]
        )
        response = self.user.post("/v1/chat/completions", json={"model": "deepseek-v4-flash", "messages": HI, "stream": True})
        last = [line for line in response.text.splitlines() if line.startswith("data: ")][-1]
        self.assertEqual(json.loads(last[len("data: ") :])["error"]["code"], "internal_error")
        self.assertEqual(self.records(1)[0].status, 500)

    def test_an_upstream_4xx_is_passed_on_with_its_message(self) -> None:
        self.sim.fail(400, message="This model's maximum context length is 128000 tokens.")
        response = self.user.post("/v1/chat/completions", json={"model": "deepseek-v4-flash", "messages": HI})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"]["message"], "This model's maximum context length is 128000 tokens.")
        self.assertEqual(len(self.sim.requests), 1, "a 4xx is not retried")
        self.sim.fail(429, message="Rate limit reached for requests", times=2)
        response = self.user.post("/v1/ai/text", json={"model": "deepseek-v4-flash", "prompt": "Hi"})
        self.assertEqual((response.status_code, response.json()["error"]["type"]), (429, "rate_limit_error"))


class RetryTests(AiLive):
    def setUp(self) -> None:
        super().setUp()
        self.backup = OpenAISim().start()  # OpenRouter, deepseek-v4-flash's second deployment
        self.addCleanup(self.backup.stop)

    def add_failover(self) -> None:
        self.set_env(OPENROUTER_API_KEY="sk-or-test", OPENROUTER_BASE_URL=self.backup.url + "/api/v1")

    def test_an_upstream_5xx_is_retried(self) -> None:
        self.sim.fail(503, times=1)
        answer = self.ok(self.user.post("/v1/chat/completions", json={"model": "deepseek-v4-flash", "messages": HI}))
        self.assertEqual(answer["choices"][0]["message"]["content"], self.sim.script.text)
        self.assertEqual(len(self.sim.requests), 2)

    def test_a_failing_deployment_fails_over_to_the_next(self) -> None:
        self.add_failover()
        self.sim.fail(500)
        answer = self.ok(self.user.post("/v1/chat/completions", json={"model": "deepseek-v4-flash", "messages": HI}))
        self.assertEqual(answer["model"], "deepseek-v4-flash")
        self.assertEqual(len(self.sim.requests), 2, "one retry, then fail-over")
        self.assertEqual(self.backup.last_request.json["model"], "deepseek/deepseek-v4-flash")
        self.assertEqual(self.backup.last_request.path, "/api/v1/chat/completions")
        self.assertEqual(self.records(1)[0].provider, "openrouter")

    def test_a_stream_fails_over_before_its_first_byte(self) -> None:
        self.add_failover()
        self.sim.fail(502)
        found = events(self.user.post("/v1/ai/stream", json={"model": "deepseek-v4-flash", "prompt": "Hi"}))
        self.assertEqual(found[-1][0], "done")
        self.assertEqual(len(self.backup.requests), 1)

    def test_a_stream_that_breaks_after_its_first_byte_is_not_retried(self) -> None:
        self.add_failover()
        self.sim.fail_after_chunks = 2
        response = self.user.post("/v1/chat/completions", json={"model": "deepseek-v4-flash", "messages": HI, "stream": True})
        self.assertEqual(response.status_code, 200)
        last = [line for line in response.text.splitlines() if line.startswith("data: ")][-1]
        self.assertEqual(json.loads(last[len("data: ") :])["error"]["code"], "upstream_error")
        self.assertEqual((len(self.sim.requests), len(self.backup.requests)), (1, 0))
        # The record is written just after the answer: waiting for it keeps its insert out of the
        # test database's teardown (on PostgreSQL the two could deadlock).
        self.assertEqual([r.provider for r in self.records(1)], ["deepseek"])

    def test_when_every_try_fails_the_client_gets_the_last_error(self) -> None:
        self.sim.fail(500, message="boom")
        response = self.user.post("/v1/chat/completions", json={"model": "deepseek-v4-flash", "messages": HI})
        self.assertEqual(response.status_code, 502)
        self.assertEqual(response.json()["error"]["type"], "api_error")
        self.assertNotIn("deepseek", response.json()["error"]["message"].lower(), "the client is not told which provider failed")
        self.assertEqual(len(self.sim.requests), 2)
        record = self.records(1)[0]
        self.assertEqual((record.status, record.error_code, record.provider), (502, "upstream_error", "deepseek"))

    def test_an_upstream_that_does_not_answer_in_time_gives_504(self) -> None:
        self.sim.stall_seconds = 3  # City's read timeout is 1 s here
        started = time.monotonic()
        response = self.user.post("/v1/ai/stream", json={"model": "deepseek-v4-flash", "prompt": "Hi"})
        self.assertEqual(response.status_code, 504)
        self.assertEqual(response.json()["error"]["code"], "upstream_timeout")
        self.assertLess(time.monotonic() - started, 4.0)

    def test_an_unreachable_upstream_gives_502(self) -> None:
        self.set_env(DEEPSEEK_BASE_URL="http://127.0.0.1:9")  # the discard port: nothing listens
        response = self.user.post("/v1/ai/text", json={"model": "deepseek-v4-flash", "prompt": "Hi"})
        self.assertEqual((response.status_code, response.json()["error"]["code"]), (502, "upstream_unreachable"))
        self.assertNotIn("deepseek", response.json()["error"]["message"].lower())

    def test_a_client_that_leaves_mid_stream_cancels_the_upstream_request(self) -> None:
        self.sim.chunk_delay_seconds = 0.3
        with self.user.stream(
            "POST", "/v1/chat/completions", json={"model": "deepseek-v4-flash", "messages": HI, "stream": True}
        ) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    break  # the first chunk arrived; now leave
        self.assertTrue(self.sim.wait_for_cancellation(3.0), "the upstream did not see the request cancelled")
        self.assertLess(self.sim.cancellations[0].chunks_sent, 5)
        record = self.records(1)[0]
        self.assertEqual((record.status, record.error_code), (499, "client_closed"))

    def test_a_client_that_leaves_before_the_first_byte_cancels_the_upstream_request(self) -> None:
        routes: list[tuple[str, dict[str, Any]]] = [("/v1/chat/completions", {"messages": HI}), ("/v1/ai/stream", {"prompt": "Hi"})]
        for route, body in routes:
            with self.subTest(route=route):
                self.sim.reset()
                self.sim.stall_seconds = 0.8  # the upstream is slow, but within City's 1 s read timeout
                with self.assertRaises(httpx.ReadTimeout):
                    self.user.post(route, json={"model": "deepseek-v4-flash", **body}, timeout=0.3)
                self.assertTrue(self.sim.wait_for_cancellation(2.0), "the upstream did not see the request cancelled")
                self.assertEqual(len(self.sim.requests), 1)


class DisconnectUnderUvicornTests(AiLive):
    """The disconnect rules under uvicorn (`make serve-prod`) as well as Daphne: whichever server reports
    the client leaving, City's API app (city/apiapp.py) cancels the stream and its upstream request."""

    server = "uvicorn"
    test_a_client_that_leaves_mid_stream_cancels_the_upstream_request = (
        RetryTests.test_a_client_that_leaves_mid_stream_cancels_the_upstream_request
    )
    test_a_client_that_leaves_before_the_first_byte_cancels_the_upstream_request = (
        RetryTests.test_a_client_that_leaves_before_the_first_byte_cancels_the_upstream_request
    )


class UsageTests(AiLive):
    def test_every_call_leaves_a_usage_record(self) -> None:
        self.ok(self.user.post("/v1/ai/text", json={"model": "deepseek-v4-flash", "prompt": "Hi"}))
        self.user.post("/v1/chat/completions", json={"model": "deepseek-v4-flash", "messages": HI, "stream": True})
        self.ok(self.user.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "two words"}))
        text, chat, embedding = self.records(3)
        self.assertEqual(
            (text.model, text.provider, text.modality, text.status, text.token_id),
            ("deepseek-v4-flash", "deepseek", "text", 200, self.token_id),
        )
        self.assertEqual((text.prompt_tokens, text.completion_tokens, text.usage_estimated), (11, 7, False))
        self.assertEqual(text.cost, 11 * FLASH_PRICES[0] + 7 * FLASH_PRICES[1])
        self.assertIsNone(text.ttft_ms)
        self.assertEqual((chat.modality, chat.prompt_tokens, chat.completion_tokens), ("chat", 11, 7))
        assert chat.ttft_ms is not None
        self.assertLessEqual(chat.ttft_ms, chat.latency_ms)
        self.assertEqual(
            (embedding.modality, embedding.prompt_tokens, embedding.completion_tokens, embedding.cost), ("embeddings", 2, 0, 2 * 20_000)
        )

    def test_a_usage_record_carries_the_request_id_of_its_answer(self) -> None:
        answered = self.user.post("/v1/ai/text", json={"model": "deepseek-v4-flash", "prompt": "Hi"})
        streamed = self.user.post(
            "/v1/chat/completions", json={"model": "deepseek-v4-flash", "messages": HI, "stream": True}, headers={"X-Request-Id": "trace-7"}
        )
        self.assertRegex(answered.headers["x-request-id"], r"^req_[0-9a-z]{26}$")
        self.assertEqual(streamed.headers["x-request-id"], "trace-7")
        self.assertEqual([r.request_id for r in self.records(2)], [answered.headers["x-request-id"], "trace-7"])

    def test_without_upstream_usage_city_counts(self) -> None:
        self.sim.script.usage = None
        self.sim.script.text = "x" * 40  # about ten tokens
        response = self.user.post(
            "/v1/chat/completions",
            json={"model": "deepseek-v4-flash", "messages": HI, "stream": True, "stream_options": {"include_usage": True}},
        )
        usage = json.loads([line for line in response.text.splitlines() if line.startswith("data: {")][-1][len("data: ") :])["usage"]
        self.assertEqual(usage["completion_tokens"], 10)
        self.assertGreater(usage["prompt_tokens"], 0)
        record = self.records(1)[0]
        self.assertTrue(record.usage_estimated)
        self.assertEqual((record.prompt_tokens, record.completion_tokens), (usage["prompt_tokens"], 10))

    def test_records_survive_a_shutdown(self) -> None:
        city = self.start_city()
        client = httpx.Client(base_url=city.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        self.addCleanup(client.close)
        for _ in range(20):
            self.assertEqual(client.post("/v1/ai/text", json={"model": "deepseek-v4-flash", "prompt": "Hi"}).status_code, 200)
        city.stop()
        self.assertEqual(len(self.records(20, timeout=0)), 20)
