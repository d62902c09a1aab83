"""The official `anthropic` Python SDK against City's Messages API (`/v1/messages`, and `/v1/ai/messages`
over plain HTTP) on loopback, onto each kind of upstream: the OpenAI-compatible simulator (DeepSeek),
Gemini's, and Anthropic's (passed through natively). Every answer, error and stream event is also
validated against the SDK's published types, made strict (aihub/tests/anthropic_schema.py)."""

import base64
from typing import Any

import anthropic
import httpx
from anthropic.types import MessageParam, TextBlockParam, ToolParam

from aihub.catalog import models_by_id
from aihub.models import UsageRecord
from aihub.tests.anthropic_schema import assert_event_order, stream_events, validate_error, validate_message
from aihub.tests.live import AllProtocolsTestCase
from aihub.tests.live_plans import wait_for_records
from aihub.tests.upstream.sim import Reply, SimServer, sse

HI: list[MessageParam] = [{"role": "user", "content": "Say hi."}]
WEATHER: ToolParam = {
    "name": "get_weather",
    "description": "Weather of a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
EPHEMERAL: Any = {"type": "ephemeral"}
BETAS = "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14"
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
PDF_B64 = base64.b64encode(b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n%%EOF").decode()


def deepseek_thinking(request: Any) -> Reply:
    """DeepSeek answering in thinking mode: `reasoning_content` before the answer, streamed or not."""
    body = request.json
    thought, text = "Thinking it over.", "Two pictures and two documents."
    usage = {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}
    base = {"id": "chatcmpl-think", "created": 1_767_225_600, "model": body["model"]}
    if not body.get("stream"):
        message = {"role": "assistant", "content": text, "reasoning_content": thought}
        return Reply.json(
            {**base, "object": "chat.completion", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage}
        )

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return sse({**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    events = [chunk({"role": "assistant", "content": None, "reasoning_content": thought[:8]}), chunk({"reasoning_content": thought[8:]})]
    events += [
        chunk({"content": text}),
        chunk({}, "stop"),
        sse({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}),
        sse("[DONE]"),
    ]
    return Reply.sse(events)


class MessagesSDKTests(AllProtocolsTestCase):
    def setUp(self) -> None:
        super().setUp()
        # (City's model, the simulator behind it, the provider a record names)
        self.upstreams: list[tuple[str, SimServer, str]] = [
            ("deepseek-v4-flash", self.sim, "deepseek"),
            ("gemini-2.5-flash", self.gemini, "google"),
            ("claude-haiku-4-5", self.anthropic, "anthropic"),
        ]

    def sdk(self, *, bearer: bool = False, token: str | None = None) -> anthropic.Anthropic:
        """The SDK as a user points it at City: the base URL and City's token (in x-api-key, or as a bearer)."""
        key = token or self.token
        if bearer:
            client = anthropic.Anthropic(base_url=self.city.url, auth_token=key, max_retries=0, timeout=10)
        else:
            client = anthropic.Anthropic(base_url=self.city.url, api_key=key, max_retries=0, timeout=10)
        self.addCleanup(client.close)
        return client

    def records(self, count: int) -> list[UsageRecord]:
        return wait_for_records(self.studio["id"], count)

    def raw_stream(self, body: dict[str, Any], path: str = "/v1/messages") -> list[dict[str, Any]]:
        response = self.user.post(path, json={**body, "stream": True})
        self.assertEqual(response.status_code, 200, response.text[:300])
        self.assertTrue(response.headers["content-type"].startswith("text/event-stream"))
        events = stream_events(response.text)
        assert_event_order(events)
        return events

    def test_create_on_every_provider(self) -> None:
        system: list[TextBlockParam] = [
            {"type": "text", "text": "Be brief.", "cache_control": EPHEMERAL},
            {"type": "text", "text": "Answer in English."},
        ]
        for model, sim, provider in self.upstreams:
            with self.subTest(model=model):
                raw = self.sdk().messages.with_raw_response.create(
                    model=model,
                    max_tokens=64,
                    system=system,
                    messages=HI,
                    stop_sequences=["END"],
                    extra_body={"temperature": 0.5},
                    extra_headers={"anthropic-beta": BETAS},
                )
                validate_message(raw.http_response.json())
                message = raw.parse()
                self.assertEqual(message._request_id, raw.http_response.headers["x-request-id"])
                self.assertEqual((message.model, message.role, message.stop_reason), (model, "assistant", "end_turn"))
                self.assertEqual([(b.type, getattr(b, "text", None)) for b in message.content], [("text", sim.script.text)])
                self.assertEqual((message.usage.input_tokens, message.usage.output_tokens), (11, 7))
                sent = sim.last_request.json
                if provider == "deepseek":
                    self.assertEqual(sim.last_request.path, "/chat/completions")
                    self.assertEqual(
                        sent["messages"],
                        [
                            {"role": "system", "content": "Be brief.\n\nAnswer in English."},
                            {"role": "user", "content": [{"type": "text", "text": "Say hi."}]},
                        ],
                    )
                    self.assertEqual((sent["max_tokens"], sent["stop"], sent["temperature"]), (64, ["END"], 0.5))
                elif provider == "google":
                    self.assertEqual(sent["systemInstruction"], {"parts": [{"text": "Be brief.\n\nAnswer in English."}]})
                    self.assertEqual(sent["generationConfig"]["stopSequences"], ["END"])
                else:  # Anthropic's own API: the body as the client sent it, cache_control included
                    self.assertEqual(sent["system"], system)
                    self.assertEqual((sent["model"], sent["stop_sequences"]), ("claude-haiku-4-5-20251001", ["END"]))
                    # The client's API version and betas go on, as Anthropic would have had them.
                    version = raw.http_response.request.headers["anthropic-version"]
                    self.assertEqual(
                        (sim.last_request.headers["anthropic-version"], sim.last_request.headers["anthropic-beta"]), (version, BETAS)
                    )

    def test_the_token_as_a_bearer_and_the_ai_path(self) -> None:
        message = self.sdk(bearer=True).messages.create(model="deepseek-v4-flash", max_tokens=20, messages=HI)
        self.assertEqual(message.content[0].type, "text")
        answer = self.user.post("/v1/ai/messages", json={"model": "gemini-2.5-flash", "max_tokens": 20, "messages": HI})
        self.assertEqual(answer.status_code, 200, answer.text[:300])
        validate_message(answer.json())
        keyed = httpx.post(
            self.city.url + "/v1/ai/messages",
            json={"model": "claude-haiku-4-5", "max_tokens": 20, "messages": HI},
            headers={"x-api-key": self.token},
            timeout=10,
        )
        self.assertEqual(keyed.status_code, 200, keyed.text[:300])
        self.assertEqual(validate_message(keyed.json()).model, "claude-haiku-4-5")
        # The SDK's beta client (what Claude Code uses): /v1/messages?beta=true, its betas passed on to Anthropic.
        for model, sim, provider in self.upstreams:
            with self.subTest(model=model):
                beta = self.sdk().beta.messages.create(
                    model=model, max_tokens=20, messages=[{"role": "user", "content": "Say hi."}], betas=["context-management-2025-06-27"]
                )
                self.assertEqual((beta.model, beta.content[0].type), (model, "text"))
                if provider == "anthropic":
                    self.assertEqual(sim.last_request.headers["anthropic-beta"], "context-management-2025-06-27")

    def test_stream_on_every_provider(self) -> None:
        for model, sim, _ in self.upstreams:
            with self.subTest(model=model):
                events = self.raw_stream({"model": model, "max_tokens": 64, "messages": HI})
                text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
                self.assertEqual(text, sim.script.text)
                self.assertEqual(events[0]["message"]["model"], model)
                self.assertEqual(events[-2]["usage"]["output_tokens"], 7)
                self.assertEqual(events[-2]["delta"]["stop_reason"], "end_turn")
                with self.sdk().messages.stream(model=model, max_tokens=64, messages=HI) as stream:
                    self.assertEqual("".join(stream.text_stream), sim.script.text)
                    final = stream.get_final_message()
                self.assertEqual((final.model, final.usage.input_tokens, final.usage.output_tokens), (model, 11, 7))

    def test_a_tool_round_trip_on_every_provider(self) -> None:
        for model, sim, provider in self.upstreams:
            with self.subTest(model=model):
                sim.script.tool_call = ("get_weather", {"city": "Paris"})
                client = self.sdk()
                question: MessageParam = {"role": "user", "content": "Weather in Paris?"}
                first = client.messages.create(model=model, max_tokens=200, messages=[question], tools=[WEATHER])
                validate_message(first.to_dict())
                self.assertEqual(first.stop_reason, "tool_use")
                (call,) = [b for b in first.content if b.type == "tool_use"]
                self.assertEqual((call.name, call.input), ("get_weather", {"city": "Paris"}))
                # The same call, streamed: its arguments arrive as input_json_delta and parse whole.
                events = self.raw_stream({"model": model, "max_tokens": 200, "messages": [question], "tools": [WEATHER]})
                self.assertIn("input_json_delta", [e["delta"]["type"] for e in events if e["type"] == "content_block_delta"])
                with client.messages.stream(model=model, max_tokens=200, messages=[question], tools=[WEATHER]) as stream:
                    streamed = stream.get_final_message()
                self.assertEqual([(b.type, getattr(b, "input", None)) for b in streamed.content][-1], ("tool_use", {"city": "Paris"}))
                # The tool's result goes back; the model answers in text.
                sim.script.tool_call = None
                result: Any = {"type": "tool_result", "tool_use_id": call.id, "content": "18°C and sunny"}
                answer = client.messages.create(
                    model=model,
                    max_tokens=200,
                    tools=[WEATHER],
                    messages=[question, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}],
                )
                self.assertEqual((answer.stop_reason, answer.content[-1].type), ("end_turn", "text"))
                sent = sim.last_request.json
                if provider == "deepseek":
                    self.assertEqual(sent["messages"][-2]["tool_calls"][0]["id"], call.id)
                    self.assertEqual(sent["messages"][-1], {"role": "tool", "tool_call_id": call.id, "content": "18°C and sunny"})
                    self.assertEqual(sent["tools"][0]["function"]["parameters"], WEATHER["input_schema"])
                elif provider == "google":
                    response = sent["contents"][-1]["parts"][0]["functionResponse"]
                    self.assertEqual((response["name"], response["response"]), ("get_weather", {"result": "18°C and sunny"}))
                else:
                    self.assertEqual(sent["messages"][-1]["content"], [result])

    def test_thinking_images_and_documents_reach_each_provider_as_it_takes_them(self) -> None:
        self.sim.handler = deepseek_thinking
        self.set_env(OPENAI_BASE_URL=self.sim.url + "/v1")
        content = [
            {"type": "text", "text": "What is in these?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
            {"type": "document", "title": "Spec", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Plain notes."}},
        ]
        history = [
            {"role": "user", "content": "Hi"},
            {
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": "A greeting.", "signature": "c2ln"}, {"type": "text", "text": "Hello!"}],
            },
            {"role": "user", "content": content},
        ]
        body = {"max_tokens": 16000, "messages": history, "thinking": {"type": "enabled", "budget_tokens": 10000}}
        # DeepSeek: its reasoning_content back in the history, and as the answer's thinking block.
        message = validate_message(self.ok(self.user.post("/v1/messages", json={**body, "model": "deepseek-v4-flash"})))
        self.assertEqual(
            [(b.type, getattr(b, "thinking", None) or getattr(b, "text", None)) for b in message.content],
            [("thinking", "Thinking it over."), ("text", "Two pictures and two documents.")],
        )
        sent = self.sim.last_request.json
        self.assertEqual((sent["reasoning_effort"], sent["max_tokens"], sent["thinking"]), ("medium", 16000, {"type": "enabled"}))
        self.assertEqual(sent["messages"][1], {"role": "assistant", "content": "Hello!", "reasoning_content": "A greeting."})
        self.assertEqual(
            sent["messages"][2]["content"],
            [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {"type": "text", "text": "Spec"},
                {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF_B64}", "filename": "Spec"}},
                {"type": "text", "text": "Plain notes."},
            ],
        )
        events = self.raw_stream({**body, "model": "deepseek-v4-flash"})
        blocks = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
        self.assertEqual(blocks, ["thinking", "text"])
        thought = "".join(e["delta"].get("thinking", "") for e in events if e["type"] == "content_block_delta")
        self.assertEqual(thought, "Thinking it over.")
        # OpenAI: max_completion_tokens (its reasoning models refuse max_tokens), no reasoning_content.
        self.ok(self.user.post("/v1/messages", json={**body, "model": "gpt-5-mini"}))
        sent = self.sim.last_request.json
        self.assertEqual((sent["model"], sent["max_completion_tokens"], sent["reasoning_effort"]), ("gpt-5-mini", 16000, "medium"))
        self.assertNotIn("max_tokens", sent)
        self.assertEqual(sent["messages"][1], {"role": "assistant", "content": "Hello!"})
        # Gemini: its thought summaries asked for and answered as the thinking block.
        adaptive = {**body, "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}, "model": "gemini-2.5-flash"}
        message = validate_message(self.ok(self.user.post("/v1/messages", json=adaptive)))
        self.assertEqual([b.type for b in message.content], ["thinking", "text"])
        self.assertEqual(message.content[0].thinking, self.gemini.script.reasoning)  # type: ignore[union-attr]
        config = self.gemini.last_request.json["generationConfig"]
        self.assertEqual(config["thinkingConfig"], {"includeThoughts": True, "thinkingBudget": 16384})
        parts = self.gemini.last_request.json["contents"][-1]["parts"]
        self.assertEqual([next(iter(p)) for p in parts], ["text", "inlineData", "fileData", "text", "inlineData", "text"])
        # Thinking turned off: Gemini 2.5 Flash thinks by default, so it is told to stop.
        self.ok(
            self.user.post(
                "/v1/messages", json={"model": "gemini-2.5-flash", "max_tokens": 50, "messages": HI, "thinking": {"type": "disabled"}}
            )
        )
        self.assertEqual(self.gemini.last_request.json["generationConfig"]["thinkingConfig"], {"thinkingBudget": 0})

    def test_what_another_provider_cannot_take_is_a_400_naming_the_field(self) -> None:
        refused: list[tuple[dict[str, Any], str]] = [
            ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
            ({"messages": [*HI, {"role": "assistant", "content": "Sure, here"}]}, "messages[1]"),
            ({"container": "container_1"}, "container"),
            (
                {
                    "messages": [
                        {"role": "user", "content": [{"type": "document", "source": {"type": "url", "url": "https://x.test/a.pdf"}}]}
                    ]
                },
                "messages[0].content[0].source.type",
            ),
            (
                {"messages": [{"role": "user", "content": [{"type": "container_upload", "file_id": "file_1"}]}]},
                "messages[0].content[0].type",
            ),
            ({"n": 2}, "n"),
            ({"thinking": {"type": "enabled", "budget_tokens": 80}}, "thinking.budget_tokens"),
            ({"messages": "Hi"}, "messages"),
            ({"max_tokens": 0}, "max_tokens"),
            (
                {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64"}}]}]},
                "messages[0].content[0].source.media_type",
            ),
        ]
        client = self.sdk()
        for extra, field in refused:
            with self.subTest(field=field):
                with self.assertRaises(anthropic.BadRequestError) as caught:
                    client.messages.create(model="deepseek-v4-flash", max_tokens=50, messages=HI, extra_body=extra)
                validate_error(caught.exception.body)
                self.assertEqual(caught.exception.body["error"]["type"], "invalid_request_error")  # type: ignore[index]
                self.assertIn(field, caught.exception.message)
        response = self.user.post("/v1/messages", json={"model": "deepseek-v4-flash", "messages": HI})
        self.assertEqual(response.status_code, 400)
        self.assertIn("max_tokens is required", validate_error(response.json()).error.message)
        self.assertEqual(self.sim.requests, [])  # nothing went upstream
        self.assertEqual(self.records(0), [])  # and nothing was counted

    def test_errors_raise_the_sdks_own_classes(self) -> None:
        cases: list[tuple[type[anthropic.APIStatusError], dict[str, str], anthropic.Anthropic]] = [
            (anthropic.AuthenticationError, {}, self.sdk(token="ub_" + "x" * 40)),
            (anthropic.NotFoundError, {"model": "no-such-model"}, self.sdk()),
        ]
        plans: list[tuple[type[anthropic.APIStatusError], dict[str, Any]]] = [
            (anthropic.PermissionDeniedError, {"models": ["gemini-*"]}),
            (anthropic.PaymentRequiredError, {"max_cost_per_request": 0.000001}),
            (anthropic.RateLimitError, {"rpm": 1}),
        ]
        for error, limits in plans:
            plan = self.ok(self.admin.post("/v1/studios/plans/create", json={"name": f"{error.__name__} {self.studio['id']}", **limits}))
            issued = self.ok(
                self.admin.post("/v1/studios/tokens/apply", json={"studio_id": self.studio["id"], "name": "t", "plan_id": plan["id"]})
            )
            client = self.sdk(token=issued["token"])
            if error is anthropic.RateLimitError:
                client.messages.create(model="deepseek-v4-flash", max_tokens=20, messages=HI)
            cases.append((error, {}, client))
        for error, extra, client in cases:
            with self.subTest(error=error.__name__):
                with self.assertRaises(error) as caught:
                    client.messages.create(model=extra.get("model", "deepseek-v4-flash"), max_tokens=20, messages=HI)
                validate_error(caught.exception.body)
                # The SDK's own request id on errors too (its `request_id`, from Anthropic's `request-id` header).
                self.assertEqual(caught.exception.request_id, caught.exception.response.headers["x-request-id"])
        # An upstream that fails: 502, the SDK's InternalServerError, in Anthropic's shape.
        self.sim.fail(500)
        with self.assertRaises(anthropic.InternalServerError) as failed:
            self.sdk().messages.create(model="deepseek-v4-flash", max_tokens=20, messages=HI)
        self.assertEqual(validate_error(failed.exception.body).error.type, "api_error")

    def test_a_stream_that_breaks_ends_with_an_error_event(self) -> None:
        for model, sim, _ in self.upstreams:
            with self.subTest(model=model):
                sim.reset()
                sim.script.text, sim.script.stream_pieces = "one two three four five six seven eight nine ten", 10
                sim.fail_after_chunks = 5
                response = self.user.post("/v1/messages", json={"model": model, "max_tokens": 50, "messages": HI, "stream": True})
                events = stream_events(response.text)
                self.assertEqual((events[0]["type"], events[-1]["type"]), ("message_start", "error"))
                self.assertEqual(events[-1]["error"]["type"], "api_error")
                self.assertIn("text_delta", [e["delta"]["type"] for e in events if e["type"] == "content_block_delta"])
                with self.assertRaises(anthropic.APIStatusError):
                    with self.sdk().messages.stream(model=model, max_tokens=50, messages=HI) as stream:
                        stream.until_done()
        records = self.records(6)
        self.assertEqual({(r.route, r.status, r.streamed) for r in records}, {("messages", 502, True)})
        # Anthropic's message_start said the input; the output is what came before the break, as City counts it.
        claude = [r for r in records if r.provider == "anthropic"]
        self.assertEqual({(r.prompt_tokens, r.usage_estimated) for r in claude}, {(11, False)})
        self.assertTrue(all(r.completion_tokens > 1 for r in claude), [r.completion_tokens for r in claude])

    def test_a_broken_native_stream_never_bills_more_output_than_max_tokens(self) -> None:
        # Five long words, within max_tokens 5 on Claude, count as more by City's four-characters-a-token
        # estimate: what the break leaves uncounted is estimated, never past the cap the call reserved.
        self.anthropic.script.text = (
            "Incomprehensibilities notwithstanding internationalization counterrevolutionaries electroencephalography"
        )
        self.anthropic.script.stream_pieces, self.anthropic.fail_after_chunks = 5, 7
        response = self.user.post("/v1/messages", json={"model": "claude-haiku-4-5", "max_tokens": 5, "messages": HI, "stream": True})
        self.assertEqual(stream_events(response.text)[-1]["type"], "error")
        [record] = self.records(1)
        self.assertEqual((record.status, record.prompt_tokens), (502, 11))
        self.assertLessEqual(record.completion_tokens, 5)

    def test_a_client_that_leaves_cancels_the_upstream(self) -> None:
        for model, sim, _ in self.upstreams:
            with self.subTest(model=model):
                sim.reset()
                sim.script.text = "one two three four five six seven eight nine ten"
                sim.script.stream_pieces = 10
                sim.chunk_delay_seconds = 0.3
                body = {"model": model, "max_tokens": 50, "messages": HI, "stream": True}
                with self.user.stream("POST", "/v1/messages", json=body) as response:
                    for line in response.iter_lines():
                        if "text_delta" in line:
                            break  # leave after the first words
                self.assertTrue(sim.wait_for_cancellation(10), "City cancels the upstream call of a client that left")
        records = self.records(3)
        self.assertEqual({(r.route, r.status, r.cancelled) for r in records}, {("messages", 499, True)})

    def test_usage_is_metered_with_cache_reads_and_writes_at_their_prices(self) -> None:
        self.anthropic.script.usage, self.anthropic.script.cached_tokens, self.anthropic.script.cache_write_tokens = (1000, 9), 300, 600
        self.sim.script.cached_tokens = 3
        system = [{"type": "text", "text": "You are a coding agent.", "cache_control": EPHEMERAL}]
        calls = [("claude-haiku-4-5", False), ("claude-haiku-4-5", True), ("deepseek-v4-flash", False), ("deepseek-v4-flash", True)]
        usages = []
        for model, stream in calls:
            body = {"model": model, "max_tokens": 50, "system": system, "messages": HI}
            if stream:
                events = self.raw_stream(body)  # the usage as the SDK adds it up: message_start's, then message_delta's
                usages.append({**events[0]["message"]["usage"], **events[-2]["usage"]})
            else:
                usages.append(self.ok(self.user.post("/v1/messages", json=body))["usage"])
        claude = {"input_tokens": 100, "cache_creation_input_tokens": 600, "cache_read_input_tokens": 300, "output_tokens": 9}
        deepseek = {"input_tokens": 8, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 3, "output_tokens": 7}
        for usage, (model, _) in zip(usages, calls, strict=True):
            expected = claude if model.startswith("claude") else deepseek
            self.assertEqual({k: usage.get(k) for k in expected}, expected, model)
        self.assertEqual(self.anthropic.last_request.json["system"], system)  # cache_control arrived unchanged
        for record, (model, stream) in zip(self.records(len(calls)), calls, strict=True):
            with self.subTest(model=model, stream=stream):
                catalog = models_by_id()[model]
                if model.startswith("claude"):
                    counts, completion = (1000, 300, 600), 9
                else:
                    counts, completion = (11, 3, 0), 7
                self.assertEqual((record.route, record.modality, record.streamed, record.status), ("messages", "chat", stream, 200))
                self.assertEqual((record.prompt_tokens, record.cached_tokens, record.cache_write_tokens), counts)
                self.assertEqual(record.cost, catalog.prompt_cost(*counts) + completion * catalog.output_price)

    def test_deepseeks_own_cache_hit_count_shows_in_the_message_as_billed(self) -> None:
        # DeepSeek's documented usage names its cache hits prompt_cache_hit_tokens only.
        usage = {"prompt_tokens": 1000, "completion_tokens": 10, "total_tokens": 1010, "prompt_cache_hit_tokens": 900}
        message = {"role": "assistant", "content": "Hi."}
        answer = {"id": "c1", "object": "chat.completion", "created": 1, "model": "deepseek-v4-flash", "usage": usage}
        choices = [{"index": 0, "message": message, "finish_reason": "stop"}]
        self.sim.handler = lambda request: Reply.json({**answer, "choices": choices})
        got = self.sdk().messages.create(model="deepseek-v4-flash", max_tokens=20, messages=HI).usage
        self.assertEqual((got.input_tokens, got.cache_read_input_tokens, got.output_tokens), (100, 900, 10))
        [record] = self.records(1)
        self.assertEqual((record.prompt_tokens, record.cached_tokens), (1000, 900))

    def test_a_forced_tool_call_finished_as_stop_is_a_tool_use_stop(self) -> None:
        # OpenAI answers a named tool_choice with finish_reason "stop"; Anthropic says "tool_use" whenever it calls a tool.
        base = {"id": "c1", "created": 1, "model": "deepseek-v4-flash"}
        call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}

        def forced(request: Any) -> Reply:
            if not request.json.get("stream"):
                message = {"role": "assistant", "content": None, "tool_calls": [call]}
                choices = [{"index": 0, "message": message, "finish_reason": "stop"}]
                return Reply.json({**base, "object": "chat.completion", "choices": choices})
            deltas = [({"role": "assistant", "tool_calls": [{"index": 0, **call}]}, None), ({}, "stop")]
            chunks = [
                {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": d, "finish_reason": f}]} for d, f in deltas
            ]
            return Reply.sse([*(sse(c) for c in chunks), sse("[DONE]")])

        self.sim.handler = forced
        body: Any = {"model": "deepseek-v4-flash", "max_tokens": 50, "messages": HI, "tools": [WEATHER]}
        body["tool_choice"] = {"type": "tool", "name": "get_weather"}
        message = self.sdk().messages.create(**body)
        with self.sdk().messages.stream(**body) as stream:
            streamed = stream.get_final_message()
        for answer in (message, streamed):
            self.assertEqual((answer.stop_reason, [b.type for b in answer.content]), ("tool_use", ["tool_use"]))

    def test_what_claude_code_sends_works_on_any_model(self) -> None:
        body = {
            "max_tokens": 32000,
            "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": EPHEMERAL}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "List the files.", "cache_control": EPHEMERAL}]}],
            "tools": [
                {
                    "name": "Bash",
                    "description": "Run a command.",
                    "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
                }
            ],
            "metadata": {"user_id": "user_abc_account__session_0f1e"},
            "thinking": {"type": "enabled", "budget_tokens": 31999},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            "output_config": {"effort": "high"},
            "stream": True,
        }
        headers = {"anthropic-beta": "claude-code-20250219,context-management-2025-06-27", "x-api-key": self.token}
        for model, sim, provider in self.upstreams:
            with self.subTest(model=model):
                response = httpx.post(f"{self.city.url}/v1/messages?beta=true", json={**body, "model": model}, headers=headers, timeout=10)
                self.assertEqual(response.status_code, 200, response.text[:300])
                assert_event_order(stream_events(response.text))
                sent = sim.last_request.json
                if provider == "deepseek":
                    self.assertEqual((sent["reasoning_effort"], sent["max_tokens"]), ("high", 32000))
                    self.assertNotIn("metadata", sent)
                    self.assertNotIn("context_management", sent)
                elif provider == "anthropic":
                    self.assertEqual(sent["context_management"], body["context_management"])
                    self.assertEqual(sim.last_request.headers["anthropic-beta"], headers["anthropic-beta"])

    def test_a_model_on_anthropic_and_a_translated_fail_over(self) -> None:
        self.set_env(OPENROUTER_API_KEY="sk-or-test-not-real", OPENROUTER_BASE_URL=self.sim.url + "/api/v1")
        self.anthropic.fail(500)
        body = {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": HI}
        # Anthropic fails: OpenRouter (an OpenAI-compatible deployment) answers through translation.
        message = validate_message(self.ok(self.user.post("/v1/messages", json=body)))
        self.assertEqual((message.model, message.content[0].type), ("claude-sonnet-4-6", "text"))
        self.assertEqual(self.sim.last_request.path, "/api/v1/chat/completions")
        # A request only Anthropic can take is not sent to the fail-over: Anthropic's failure is the answer.
        served = len(self.sim.requests)
        response = self.user.post("/v1/messages", json={**body, "container": "container_1"})
        self.assertEqual(response.status_code, 502, response.text[:300])
        self.assertEqual(validate_error(response.json()).error.type, "api_error")
        self.assertEqual(len(self.sim.requests), served)
        self.assertEqual(self.anthropic.last_request.json["container"], "container_1")
        providers = [(r.provider, r.status) for r in self.records(2)]
        self.assertEqual(providers, [("openrouter", 200), ("anthropic", 502)])
