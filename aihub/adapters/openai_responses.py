"""OpenAI's Responses API, passed through to an upstream that speaks it natively (OpenAI's own API):
`POST {base}/responses`, plain and streamed, the body as the client sent it with `model` mapped.

A stream yields the upstream's events as dicts, in order, and ends with its terminal event
(`response.completed`, `response.incomplete` or `response.failed`); an `error` event, or a stream
cut before a terminal event, raises UpstreamError (retryable only before the first event reaches
anyone: aihub/attempts.py decides).
"""

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import orjson

from aihub.adapters import openai_shapes as oa
from aihub.adapters.base import Upstream, UpstreamError, error_from_response
from aihub.adapters.sse import iter_sse

if TYPE_CHECKING:
    from aihub.adapters.openai_compat import OpenAICompatAdapter

TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


async def responses(adapter: "OpenAICompatAdapter", upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
    payload = {**body, "model": upstream.model}
    payload.pop("stream", None)
    payload.pop("stream_options", None)
    async with oa.transport_errors(upstream.provider):
        response = await adapter.client.post(
            upstream.base_url + "/responses", content=orjson.dumps(payload), headers=adapter.headers(upstream)
        )
    if response.status_code >= 400:
        raise error_from_response(response.status_code, response.content, upstream.provider)
    answer = oa.json_of(response.content, upstream.provider)
    if answer.get("object") != "response" or not isinstance(answer.get("output"), list):
        raise oa.malformed_answer(upstream.provider)
    return answer


async def responses_stream(
    adapter: "OpenAICompatAdapter", upstream: Upstream, body: dict[str, Any]
) -> AsyncGenerator[dict[str, Any], None]:
    payload = {**body, "model": upstream.model, "stream": True}
    request = adapter.client.build_request(
        "POST",
        upstream.base_url + "/responses",
        content=orjson.dumps(payload),
        headers={**adapter.headers(upstream), "Accept": "text/event-stream"},
    )
    ended = False
    async with oa.transport_errors(upstream.provider):
        response = await adapter.client.send(request, stream=True)
        try:
            if response.status_code >= 400:
                raise error_from_response(response.status_code, await response.aread(), upstream.provider)
            async for _event, data in iter_sse(response):
                if data == b"[DONE]":
                    continue
                event = oa.json_of(data, upstream.provider)
                kind = event.get("type")
                if kind == "error":
                    raise _stream_error(event, upstream.provider)
                ended = ended or kind in TERMINAL_EVENTS
                yield event
        finally:
            await response.aclose()
    if not ended:
        raise oa.stream_cut_short()


def _stream_error(event: dict[str, Any], provider: str) -> UpstreamError:
    """OpenAI's `{"type": "error", "code", "message", "param"}` event."""
    message = str(event.get("message") or "no message")
    code = str(event.get("code") or "upstream_error")
    return UpstreamError(f"The upstream provider failed mid-stream: {message}", status=502, retryable=True, code=code)
