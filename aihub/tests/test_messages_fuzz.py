"""Property-based: generated Anthropic Messages requests, half valid and half not at any depth, go
through a real City to Claude (passed through), Gemini and OpenAI-compatible models (translated)
served by the simulators. Every answer is a 2xx or a 4xx in Anthropic's error shape, never a 5xx; a
message and every stream event validate against the anthropic SDK's types, and no stream breaks with
City's own failure."""

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from aihub.messages_request import MESSAGE_FIELDS
from aihub.tests.anthropic_schema import stream_events, validate_error, validate_message
from aihub.tests.live import AllProtocolsTestCase
from aihub.tests.test_fuzz_openai import ANY, body, good_or_not
from city.tests import fuzz

MODELS = ["claude-haiku-4-5", "gemini-2.5-flash", "deepseek-v4-flash"]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}

GOOD: dict[str, list[Any]] = {
    "max_tokens": [50, 2000],
    "system": ["Be brief.", [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]],
    "stop_sequences": [["END"]],
    "stream": [True, False],
    "temperature": [0.5, 1],
    "top_p": [0.9],
    "top_k": [5],
    "metadata": [{"user_id": "u1"}],
    "tools": [[WEATHER], [{"type": "web_search_20250305", "name": "web_search"}]],
    "tool_choice": [{"type": "auto"}, {"type": "any"}, {"type": "tool", "name": "get_weather"}, {"type": "none"}],
    "thinking": [{"type": "enabled", "budget_tokens": 1024}, {"type": "adaptive"}, {"type": "disabled"}],
    "output_config": [{"effort": "low"}, {"format": {"type": "json_schema", "schema": {"type": "object"}}}],
    "context_management": [{"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}],
    "service_tier": ["auto"],
}
TEXT = good_or_not(["Hello", "", "Weather in Paris?"])
SOURCE = good_or_not(
    [
        {"type": "base64", "media_type": "image/png", "data": PNG},
        {"type": "url", "url": "https://example.com/a.png"},
        {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        {"type": "text", "media_type": "text/plain", "data": "notes"},
        {"type": "file", "file_id": "file_1"},
    ]
)
BLOCK = st.fixed_dictionaries(
    {"type": good_or_not(["text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "search_result"])},
    optional={
        "text": TEXT,
        "source": SOURCE,
        "id": good_or_not(["toolu_1"]),
        "name": good_or_not(["get_weather"]),
        "input": good_or_not([{"city": "Paris"}, {}]),
        "tool_use_id": good_or_not(["toolu_1", "toolu_unknown"]),
        "content": good_or_not(
            ["18°C", [{"type": "text", "text": "18°C"}], [{"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}]]
        ),
        "is_error": good_or_not([True]),
        "thinking": TEXT,
        "signature": good_or_not(["c2ln"]),
        "data": good_or_not(["ZW5j"]),
        "cache_control": good_or_not([{"type": "ephemeral"}]),
    },
)
MESSAGE = st.fixed_dictionaries(
    {
        "role": good_or_not(["user", "user", "assistant", "system"]),
        "content": fuzz.weighted((5, TEXT), (4, st.lists(BLOCK, max_size=3)), (1, ANY)),
    }
)
MESSAGES_BODY = body(
    {
        "model": st.sampled_from(MODELS),
        "max_tokens": good_or_not([50]),
        "messages": fuzz.weighted((6, st.lists(MESSAGE, min_size=1, max_size=3)), (1, ANY)),
    },
    {name: good_or_not(GOOD.get(name, [None])) for name in sorted(set(MESSAGE_FIELDS) | set(GOOD)) if name not in ("model", "messages")},
)


class FuzzMessagesThroughSimulatorsTests(AllProtocolsTestCase):
    def test_generated_requests_never_get_a_5xx(self) -> None:
        answered: dict[int, int] = {}

        # Hypothesis runs inside the test: the live City's studio, token and env stay as setUp made them.
        @settings(fuzz.FUZZ_SETTINGS, max_examples=120)
        @given(request=MESSAGES_BODY, route=st.sampled_from(["/v1/messages", "/v1/ai/messages"]))
        def check(request: dict[str, Any], route: str) -> None:
            response = self.user.post(route, content=fuzz.json_bytes(request), headers={"Content-Type": "application/json"})
            answered[response.status_code] = answered.get(response.status_code, 0) + 1
            label = f"{response.status_code} on {route}: {response.text[:300]}"
            self.assertLess(response.status_code, 500, label)
            if response.status_code != 200:
                validate_error(response.json())
            elif response.headers["content-type"].startswith("text/event-stream"):
                events = stream_events(response.text)
                self.assertNotIn("City failed", response.text, label)
                self.assertEqual(events[0]["type"], "message_start", label)
            else:
                validate_message(response.json())

        sims = (self.sim, self.anthropic, self.gemini)
        before = sum(len(sim.requests) for sim in sims)
        check()
        # The fuzzer must also have sent requests that passed City's checks and reached the upstreams.
        self.assertGreater(answered.get(200, 0), 10, answered)
        self.assertGreater(sum(len(sim.requests) for sim in sims) - before, 10, answered)
