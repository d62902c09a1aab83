"""Schemathesis reads City's OpenAPI document from a live City and sends it generated requests, valid
and invalid per the document, on every operation: none gets a 500, and every error is City's shape (or
the route's own, Anthropic's on /v1/messages)."""

import time
from typing import Any

import httpx
import orjson
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from city.errors import ApiError
from city.livecity import LiveCityTestCase
from city.registry import env_consumers
from city.testing import route_error_response

EXAMPLES_PER_OPERATION_AND_MODE = 3
TIME_LIMIT_SECONDS = 120.0  # a bound for a loaded machine; the run takes about 20 s on two cores
# 5xx answers that are City's typed refusals, not failures: a provider City has no keys for (503).
TYPED_5XX = {503}


class SchemathesisAgainstLiveCityTests(LiveCityTestCase):
    def test_generated_requests_get_no_server_error_and_errors_in_city_s_shape(self) -> None:
        # Every provider key blank: no model or OAuth provider is callable, so nothing leaves the machine.
        city = self.start_city(extra_env={req.key: "" for _, _, req in env_consumers()})
        document = httpx.get(f"{city.url}/v1/openapi.json", timeout=10).json()
        schema = schemathesis.openapi.from_dict(document)
        headers = {"Authorization": f"Bearer {self.admin_key}"}  # the admin reaches every handler
        problems: list[str] = []
        sent: list[int] = []
        deadline = time.monotonic() + TIME_LIMIT_SECONDS
        operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
        self.assertGreater(len(operations), 45)
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    fuzz(operation, mode, city.url, headers, problems, sent)
                except Unsatisfiable:
                    if mode == GenerationMode.POSITIVE:
                        raise
                    # an operation that takes nothing has no invalid input to generate
            self.assertLess(time.monotonic(), deadline, f"the run took over {TIME_LIMIT_SECONDS} s")
        self.assertEqual(problems, [])
        self.assertGreater(len(sent), 2 * len(operations))
        self.assertTrue(any(status == 200 for status in sent))
        self.assertTrue(any(status == 400 for status in sent))


def fuzz(operation: Any, mode: GenerationMode, base_url: str, headers: dict[str, str], problems: list[str], sent: list[int]) -> None:
    """Send the operation a few generated requests of one mode; note each status, and each problem (judge)."""

    @settings(
        max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        sent.append(response.status_code)
        problem = judge(case.method, response.status_code, content_type_of(response.headers), response.content, path=case.path)
        if problem:
            problems.append(f"{case.method} {case.formatted_path} ({mode}): {problem}")

    send()


def content_type_of(headers: dict[str, list[str]]) -> str:
    """Schemathesis keeps each header as a list, under its lower-case name."""
    return (headers.get("content-type") or [""])[0]


def judge(method: str, status: int, content_type: str, body: bytes, *, path: str = "") -> str:
    """What is wrong with an answer, or "" when nothing is. `path` (the operation's) names the route
    whose own error shape applies, where its action declares one."""
    if status >= 500 and status not in TYPED_5XX:
        return f"{status}: {body[:300]!r}"
    if status < 300 or method == "HEAD":
        return ""
    if content_type.startswith("text/html"):
        return ""  # the OAuth callback's page, for a person in a browser
    if content_type != "application/json":
        return f"{status} answered as {content_type!r}"
    render = route_error_response(path)
    if render is not None:
        answer = orjson.loads(body)
        message = (answer.get("error") or {}).get("message") if isinstance(answer, dict) else None
        if not isinstance(message, str) or answer != orjson.loads(render(ApiError(status, message)).content):
            return f"{status} without the route's error shape: {body[:300]!r}"
        return ""
    error = orjson.loads(body).get("error")
    if not isinstance(error, dict) or not {"message", "type", "code", "param"} <= set(error):
        return f"{status} without City's error shape: {body[:300]!r}"
    if status >= 500 and error.get("code") == "internal_error":
        return f"{status} internal_error"
    return ""
