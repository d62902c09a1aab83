"""What each call's usage record says, through a live City and the providers' simulators: the route
it came by, the deployment that answered (after a fail-over too), whether it streamed, whether its
client left, and the cached and reasoning tokens each wire protocol reports. The request log
(`ai/logs`) shows the same row."""

from aihub.models import UsageRecord
from aihub.tests.live import AllProtocolsTestCase
from aihub.tests.upstream.openai_sim import OpenAISim
from city.waiting import wait_until

HI = [{"role": "user", "content": "Say hi."}]
CHAT = {"model": "deepseek-v4-flash", "messages": HI, "max_tokens": 20}


class UsageCaptureTests(AllProtocolsTestCase):
    def records(self, count: int) -> list[UsageRecord]:
        studio_id = self.studio["id"]
        wait_until(lambda: UsageRecord.objects.filter(studio_id=studio_id).count() >= count, timeout=5)
        return list(UsageRecord.objects.filter(studio_id=studio_id).order_by("id"))

    def test_every_route_records_its_name_deployment_streaming_and_token_details(self) -> None:
        self.sim.script.cached_tokens, self.sim.script.reasoning_tokens = 3, 2
        calls = [
            ("/v1/ai/text", {"model": "deepseek-v4-flash", "prompt": "Say hi.", "max_tokens": 20}, "text", False),
            ("/v1/ai/stream", {"model": "deepseek-v4-flash", "prompt": "Say hi.", "max_tokens": 20}, "stream", True),
            ("/v1/chat/completions", CHAT, "chat/completions", False),
            ("/v1/ai/chat/completions", {**CHAT, "stream": True}, "chat/completions", True),
            ("/v1/completions", {"model": "deepseek-v4-flash", "prompt": "Say hi.", "max_tokens": 20}, "completions", False),
            ("/v1/completions", {"model": "deepseek-v4-flash", "prompt": "Say hi.", "max_tokens": 20, "stream": True}, "completions", True),
        ]
        request_ids = []
        for path, body, _, _ in calls:
            response = self.user.post(path, json=body)
            self.assertEqual(response.status_code, 200, response.text[:300])
            request_ids.append(response.headers["X-Request-Id"])
        embedding = self.user.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "hi"})
        self.assertEqual(embedding.status_code, 200, embedding.text[:300])
        records = self.records(len(calls) + 1)
        by_request = {r.request_id: r for r in records}
        for request_id, (path, _, route, streamed) in zip(request_ids, calls, strict=True):
            with self.subTest(path=path, streamed=streamed):
                record = by_request[request_id]
                self.assertEqual(
                    (record.route, record.provider, record.deployment, record.streamed, record.cancelled, record.status),
                    (route, "deepseek", "deepseek-v4-flash", streamed, False, 200),
                )
                self.assertEqual((record.prompt_tokens, record.cached_tokens), (11, 3))
                self.assertEqual((record.completion_tokens, record.reasoning_tokens), (7, 2))
                self.assertEqual(record.ttft_ms is not None, streamed)
        embedded = by_request[embedding.headers["X-Request-Id"]]
        self.assertEqual(
            (embedded.route, embedded.provider, embedded.deployment, embedded.streamed),
            ("embeddings", "openai", "text-embedding-3-small", False),
        )
        # The request log shows the same row to the token that made the call.
        logged = self.ok(self.user.get("/v1/ai/logs", params={"request_id": request_ids[3]}))["items"]
        self.assertEqual(
            [(r["route"], r["deployment"], r["streamed"], r["cached_tokens"], r["reasoning_tokens"]) for r in logged],
            [("chat/completions", "deepseek-v4-flash", True, 3, 2)],
        )

    def test_the_deployment_is_the_one_that_answered_after_a_fail_over(self) -> None:
        backup = OpenAISim().start()  # OpenRouter: deepseek-v4-flash's second deployment
        self.addCleanup(backup.stop)
        self.set_env(OPENROUTER_API_KEY="sk-or-test-not-real", OPENROUTER_BASE_URL=backup.url + "/api/v1")
        self.sim.fail(500)
        self.ok(self.user.post("/v1/chat/completions", json=CHAT))
        streamed = self.user.post("/v1/ai/stream", json={"model": "deepseek-v4-flash", "prompt": "Hi"})
        self.assertEqual(streamed.status_code, 200)
        for record in self.records(2):
            self.assertEqual((record.provider, record.deployment, record.status), ("openrouter", "deepseek/deepseek-v4-flash", 200))

    def test_a_client_that_leaves_mid_stream_is_recorded_as_cancelled(self) -> None:
        self.sim.script.text = "one two three four five six seven eight nine ten"
        self.sim.script.stream_pieces = 10
        self.sim.chunk_delay_seconds = 0.3
        with self.user.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as response:
            self.assertEqual(response.status_code, 200)
            for line in response.iter_lines():
                if '"content":"one' in line.replace(" ", ""):
                    break  # leave after the first words
        self.assertTrue(self.sim.wait_for_cancellation(10))
        (record,) = self.records(1)
        self.assertEqual(
            (record.route, record.status, record.error_code, record.streamed, record.cancelled),
            ("chat/completions", 499, "client_closed", True, True),
        )
        self.assertIsNotNone(record.ttft_ms)
        logged = self.ok(self.user.get("/v1/ai/logs", params={"status": "cancelled"}))["items"]
        self.assertEqual([r["id"] for r in logged], [record.call_id])

    def test_cached_and_reasoning_tokens_from_anthropic_and_gemini(self) -> None:
        for sim in (self.anthropic, self.gemini):
            sim.script.cached_tokens, sim.script.reasoning_tokens = 4, 3
        cases = [
            ("claude-haiku-4-5", False, "anthropic", "claude-haiku-4-5-20251001", 0),  # Anthropic reports no thinking count
            ("claude-haiku-4-5", True, "anthropic", "claude-haiku-4-5-20251001", 0),
            ("gemini-2.5-flash", False, "google", "gemini-2.5-flash", 3),
            ("gemini-2.5-flash", True, "google", "gemini-2.5-flash", 3),
        ]
        request_ids = []
        for model, stream, _, _, _ in cases:
            body = {"model": model, "messages": HI, "max_tokens": 50, "stream": stream}
            if stream:
                body["stream_options"] = {"include_usage": True}
            response = self.user.post("/v1/chat/completions", json=body)
            self.assertEqual(response.status_code, 200, response.text[:300])
            request_ids.append(response.headers["X-Request-Id"])
        by_request = {r.request_id: r for r in self.records(len(cases))}
        for request_id, (model, stream, provider, deployment, reasoning) in zip(request_ids, cases, strict=True):
            with self.subTest(model=model, stream=stream):
                record = by_request[request_id]
                self.assertEqual((record.provider, record.deployment, record.streamed), (provider, deployment, stream))
                self.assertEqual((record.prompt_tokens, record.completion_tokens), (11, 7))
                self.assertEqual((record.cached_tokens, record.reasoning_tokens, record.usage_estimated), (4, reasoning, False))

    def test_an_upstream_failure_names_its_deployment(self) -> None:
        self.sim.fail(400, message="bad request")
        response = self.user.post("/v1/ai/text", json={"model": "deepseek-v4-flash", "prompt": "Hi"})
        self.assertEqual(response.status_code, 400)
        (record,) = self.records(1)
        self.assertEqual((record.route, record.deployment, record.status, record.streamed), ("text", "deepseek-v4-flash", 400, False))
        self.assertTrue(record.error_code)
