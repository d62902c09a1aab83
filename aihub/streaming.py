"""Server-sent events out of City: the response class and the frame encoders."""

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import orjson
from django.http import StreamingHttpResponse

from aihub.adapters.base import UpstreamError
from city.errors import TYPE_BY_STATUS, ApiError, error_body

DONE = b"data: [DONE]\n\n"


class EventStreamResponse(StreamingHttpResponse):
    """A streamed answer (`text/event-stream`, or audio as it is made) whose source is closed the moment the client goes away.

    Django cancels a streaming response's task when the client disconnects and closes the
    iterator it consumes; `__aiter__` passes that close on to the source generator at once, so the
    source's `finally` (close the upstream, record usage) runs then, not whenever it is collected.
    """

    def __init__(self, source: AsyncGenerator[bytes, None], content_type: str = "text/event-stream") -> None:
        super().__init__(source, content_type=content_type)
        self._source = source
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"  # proxies such as nginx: pass each event on at once

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async with aclosing(self._source) as source:
            async for part in source:
                yield part


def data_frame(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def event_frame(event: str, payload: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def error_type(status: int) -> str:
    """City's error type for a status; a 4xx City has no word of its own for (an upstream's 422, say) is
    the caller's mistake all the same."""
    return TYPE_BY_STATUS.get(status) or ("invalid_request_error" if 400 <= status < 500 else "api_error")


def api_error(exc: UpstreamError) -> ApiError:
    """An upstream failure as City answers it: the upstream's status and message, City's error type."""
    return ApiError(exc.status, exc.message, code=exc.code, param=exc.param, type=error_type(exc.status))


def error_payload(exc: UpstreamError) -> dict[str, Any]:
    return error_body(exc.message, error_type(exc.status), code=exc.code or "upstream_error", param=exc.param)
