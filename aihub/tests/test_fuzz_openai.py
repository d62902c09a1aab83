"""Property-based, with callable models: generated OpenAI requests, half valid and half not at any
depth, go through a real City to Claude, Gemini and OpenAI-compatible models served by the
simulators. Every answer is a 2xx or a 4xx in the OpenAI error shape, never a 5xx, and no stream
breaks with City's internal error."""

from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from aihub.openai_request import CHAT_FIELDS
from aihub.tests.adapter_contract import WEATHER_TOOL
from aihub.tests.live import AllProtocolsTestCase
from city.tests import fuzz

CHAT_MODELS = ["claude-sonnet-4-6", "gemini-3-flash-preview", "deepseek-v4-flash"]
EMBEDDING_MODELS = ["gemini-embedding-001", "text-embedding-3-small"]
NAMES, VALUES = fuzz.known_words()
ANY = fuzz.json_values(NAMES, VALUES)

# A few good values per field, so that many requests pass the checks and reach the adapters.
GOOD: dict[str, list[Any]] = {
    "temperature": [0.5, 1],
    "max_tokens": [50],
    "max_completion_tokens": [40],
    "stream": [True, False],
    "stream_options": [{"include_usage": True}],
    "stop": ["x", ["y", "z"]],
    "tools": [[WEATHER_TOOL]],
    "tool_choice": ["auto", "none", "required", {"type": "function", "function": {"name": "get_weather"}}],
    "response_format": [{"type": "text"}, {"type": "json_object"}, {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}],
    "n": [1, 2],
    "top_p": [0.9],
    "seed": [7],
    "user": ["player-7"],
    "reasoning_effort": ["low", "high"],
    "parallel_tool_calls": [True, False],
    "logprobs": [False, True],
    "modalities": [["text"], ["text", "audio"]],
    "metadata": [{"run": "7"}],
    "top_k": [5],
    "thinking": [{"type": "enabled", "budget_tokens": 1024}],
}


def good_or_not(good: list[Any]) -> st.SearchStrategy[Any]:
    return fuzz.weighted((6, st.sampled_from(good)), (1, ANY))


def some_of(fields: dict[str, st.SearchStrategy[Any]], at_most: int = 4) -> st.SearchStrategy[dict[str, Any]]:
    """A few of the fields (a request that sets them all would nearly always have a wrong one)."""
    chosen = st.lists(st.sampled_from(sorted(fields)), max_size=at_most, unique=True)
    return chosen.flatmap(lambda names: st.fixed_dictionaries({name: fields[name] for name in names}))


def body(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]], at_most: int = 4
) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(lambda fixed, extra: {**extra, **fixed}, st.fixed_dictionaries(required), some_of(optional, at_most))


TEXT = good_or_not(["Hello", "", "Weather in Paris?"])
PART = st.fixed_dictionaries(
    {"type": good_or_not(["text", "image_url", "input_audio", "file", "refusal"])},
    optional={
        "text": TEXT,
        "image_url": good_or_not([{"url": "https://example.com/a.png"}, {"url": "data:image/png;base64,iVBORw0KGgo="}]),
        "input_audio": good_or_not([{"data": "UklGRg==", "format": "wav"}]),
        "file": good_or_not([{"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}]),
        "refusal": TEXT,
    },
)
FUNCTION_CALL = st.fixed_dictionaries(
    {}, optional={"name": good_or_not(["get_weather"]), "arguments": good_or_not(['{"city": "Paris"}', "{}", "[1]", "no"])}
)
TOOL_CALL = st.fixed_dictionaries(
    {},
    optional={
        "id": good_or_not(["call_1", "call 2!"]),
        "type": good_or_not(["function", "custom"]),
        "function": fuzz.weighted((3, FUNCTION_CALL), (1, ANY)),
    },
)
MESSAGE_FIELDS = {
    "tool_calls": fuzz.weighted((6, st.lists(TOOL_CALL, max_size=2)), (1, ANY)),
    "tool_call_id": good_or_not(["call_1", "call_unknown"]),
    "name": good_or_not(["bob"]),
    "refusal": good_or_not(["no"]),
    "reasoning_content": good_or_not(["thinking"]),
    "thinking_blocks": good_or_not([[{"type": "thinking", "thinking": "t", "signature": "s"}]]),
}
MESSAGE = body(
    {
        "role": good_or_not(["user", "user", "user", "assistant", "assistant", "system", "developer", "tool", "function"]),
        "content": fuzz.weighted((6, TEXT), (3, st.lists(PART, max_size=3)), (1, ANY)),
    },
    MESSAGE_FIELDS,
    at_most=2,
)
CHAT_BODY = body(
    {"model": st.sampled_from(CHAT_MODELS), "messages": fuzz.weighted((6, st.lists(MESSAGE, min_size=1, max_size=4)), (1, ANY))},
    {name: good_or_not(GOOD.get(name, [None])) for name in sorted(set(CHAT_FIELDS) | set(GOOD)) if name not in ("model", "messages")},
)
COMPLETION_FIELDS = (
    "max_tokens",
    "temperature",
    "stop",
    "stream",
    "stream_options",
    "n",
    "seed",
    "user",
    "echo",
    "suffix",
    "logprobs",
    "best_of",
)
COMPLETION_BODY = body(
    {"model": st.sampled_from(CHAT_MODELS), "prompt": good_or_not(["Once upon", ["Once"], [1, 2]])},
    {name: good_or_not(GOOD.get(name, [None])) for name in COMPLETION_FIELDS},
)
EMBEDDING_BODY = body(
    {"model": st.sampled_from(EMBEDDING_MODELS), "input": good_or_not(["hello", ["a", "b"], [1, 2], [[1], [2]]])},
    {"encoding_format": good_or_not(["float", "base64"]), "dimensions": good_or_not([8]), "user": good_or_not(["u"])},
)
REQUESTS = fuzz.weighted(
    (6, st.tuples(st.sampled_from(["/v1/chat/completions", "/v1/ai/chat/completions"]), CHAT_BODY)),
    (2, st.tuples(st.sampled_from(["/v1/ai/text", "/v1/ai/stream"]), CHAT_BODY)),
    (1, st.tuples(st.just("/v1/completions"), COMPLETION_BODY)),
    (1, st.tuples(st.just("/v1/embeddings"), EMBEDDING_BODY)),
)


class FuzzOpenAIRoutesThroughSimulatorsTests(AllProtocolsTestCase):
    def test_generated_requests_never_get_a_5xx(self) -> None:
        answered: dict[int, int] = {}
        reached = [0]

        # Hypothesis runs inside the test (not as its decorator): the live City's studio, token and
        # env stay as setUp made them for every example, instead of being flushed between examples.
        @settings(fuzz.FUZZ_SETTINGS, max_examples=300)
        @given(request=REQUESTS)
        def check(request: tuple[str, dict[str, Any]]) -> None:
            route, body = request
            response = self.user.post(route, content=fuzz.json_bytes(body), headers={"Content-Type": "application/json"})
            answered[response.status_code] = answered.get(response.status_code, 0) + 1
            fuzz.assert_contract(self, route, HttpxAnswer(response))
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                self.assertNotIn(b"internal_error", response.content, f"{route}: {response.content[-300:]!r}")

        sims = (self.sim, self.anthropic, self.gemini)
        before = sum(len(sim.requests) for sim in sims)
        check()
        reached[0] = sum(len(sim.requests) for sim in sims) - before
        # The fuzzer must also have sent requests that passed the checks and reached the upstreams.
        self.assertGreater(answered.get(200, 0), 10, answered)
        self.assertGreater(reached[0], 10, answered)


class HttpxAnswer:
    """An httpx response read the way fuzz.assert_contract reads Django's test responses."""

    def __init__(self, response: httpx.Response) -> None:
        self.status_code, self.content, self._response = response.status_code, response.content, response

    def __getitem__(self, header: str) -> str:
        return self._response.headers.get(header, "")

    def json(self) -> Any:
        return self._response.json()
