"""ASGI guard that answers 413 before an oversized body is read into memory or a temp file."""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from city.errors import ApiError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimitMiddleware:
    """Refuses HTTP bodies over `limit_bytes`: by Content-Length at once, or while a chunked body arrives.

    The body is buffered here (Django would buffer it anyway) and replayed to the app; after the
    replay, `receive` is the server's again so that disconnects still reach streaming responses.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit_bytes: int,
        upload_limit_bytes: int = 0,
        takes_uploads: Callable[[Scope], bool] | None = None,
        render_error: Callable[[Scope, ApiError], bytes] | None = None,
    ) -> None:
        self.app = app
        # The refusal's body in the route's own error shape (Anthropic's on its routes); None: City's.
        self.render_error = render_error
        self.limit_bytes = limit_bytes
        # Routes that take uploads (`takes_uploads(scope)`) get the larger limit; asked only of a body
        # over the usual one, so other requests pay nothing for it.
        self.upload_limit_bytes = upload_limit_bytes
        self.takes_uploads = takes_uploads

    def _larger_limit(self, scope: Scope) -> int | None:
        if self.takes_uploads is not None and self.upload_limit_bytes > self.limit_bytes and self.takes_uploads(scope):
            return self.upload_limit_bytes
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            larger = self._larger_limit(scope)
            if larger is None or declared > larger:
                await self._refuse(scope, send, larger or limit, larger is not None)
                return
            limit = larger
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away before its body arrived: let the app see the disconnect.
                await self.app(scope, _replay([message], receive), send)
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                larger = self._larger_limit(scope) if limit == self.limit_bytes else None
                if larger is None or size > larger:
                    upload = limit != self.limit_bytes or larger is not None
                    await self._refuse(scope, send, larger or limit, upload)
                    return
                limit = larger
            chunks.append(body)
            if not message.get("more_body", False):
                break
        whole = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)

    async def _refuse(self, scope: Scope, send: Send, limit: int, upload: bool) -> None:
        name = "CITY_MAX_UPLOAD_BYTES" if upload else "CITY_MAX_BODY_BYTES"
        error = ApiError(413, f"The request body is over the limit of {limit} bytes ({name}).", code="body_too_large")
        body = self.render_error(scope, error) if self.render_error is not None else orjson.dumps(error.body())
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
