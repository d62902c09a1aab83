"""The contract every provider adapter keeps, and the pooled HTTP client they share.

An adapter translates OpenAI-shaped requests (dicts, as the OpenAI REST API takes them) to its
provider's wire protocol and the answers back to OpenAI shapes (dicts), streaming included, so the
service layer only ever sees OpenAI shapes.
"""

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from django.conf import settings


@dataclass(frozen=True)
class Upstream:
    """A deployment resolved at request time: the runtime env's base URL and key filled in, and the
    model's limits, so that an adapter needs nothing but this to shape its request."""

    provider: str
    adapter: str
    model: str  # the upstream model name
    base_url: str  # without a trailing slash
    api_key: str | None
    legacy_completions: bool = False
    native_responses: bool = False  # serves OpenAI's Responses API itself (`responses`, `responses_stream`)
    max_output_tokens: int = 0  # the model's ceiling on an answer, in tokens; 0: not known
    base_url_env: str = ""  # the env key the base URL came from, named in errors that point at it
    api_key_env: str = ""  # the env key of City's key for this provider, named when the provider refuses it


@dataclass(frozen=True)
class MediaFile:
    """A file a media request carries (audio to transcribe, an image to edit), read into memory
    within the route's size limit."""

    name: str  # the file name the client gave (upstreams read the format from its extension)
    data: bytes
    content_type: str


@dataclass
class MediaStream:
    """An upstream's binary answer, opened: its status was 2xx, and `chunks` yields its body as it
    arrives (closing `chunks` closes the upstream response)."""

    content_type: str
    chunks: AsyncGenerator[bytes, None]


class UpstreamError(Exception):
    """The upstream failed. `status` is what City answers; `retryable` allows retry/fail-over
    (only while nothing has reached the client)."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        retryable: bool,
        code: str | None = None,
        error_type: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status  # 4xx passed on from the upstream, or 502 / 503 / 504
        self.retryable = retryable
        self.code = code
        self.error_type = error_type
        self.param = param


class Adapter:
    """Subclasses override what their protocol does differently.

    - `chat(upstream, body)` → an OpenAI `chat.completion` dict (with `usage`).
    - `chat_stream(upstream, body)` → yields OpenAI `chat.completion.chunk` dicts as they arrive;
      the adapter always obtains usage from the upstream (asking for it where the protocol needs
      asking) and yields it as a final chunk with `choices: []` and `usage`; the service decides
      whether the client sees it. Closing the iterator early (client gone) closes the upstream
      response at once.
    - `embeddings(upstream, body)` → an OpenAI embeddings list dict (floats).
    - `completions(upstream, body)` / `completions_stream(...)`: legacy completions where the
      protocol has them natively; the base raises NotImplementedError and the service turns the
      prompt into a one-message chat instead.
    Media, each in OpenAI's shapes whatever the provider speaks (a provider without one raises
    NotImplementedError, which the route answers as a 400 naming the model):
    - `images(upstream, body)` → OpenAI's images response `{created, data: [{b64_json | url,
      revised_prompt?}], usage?}` for an images/generations body; `image_edit(upstream, body,
      images, mask)` the same for images/edits, the files apart.
    - `speech(upstream, body)` → a MediaStream of the audio, for an audio/speech body.
    - `transcribe(upstream, body, audio)` / `translate(...)` → OpenAI's verbose_json shape `{text,
      language?, duration?, segments?, words?, usage?}` for an audio/transcriptions (translations)
      body, the file apart; City renders the other response formats from it.
    - `video_create(upstream, body, reference)` → an OpenAI video object `{id (the upstream's),
      status, progress?, seconds?, size?, error?}`; `video_status(upstream, upstream_id)` the same
      object now; `video_content(upstream, upstream_id)` → a MediaStream of the finished video.
    Errors: raise UpstreamError (never httpx exceptions) — 4xx with the upstream's message,
    connect errors 502 retryable, upstream 5xx/429-overload 502/503 retryable, timeouts 504 retryable.

    Native protocols, passed through where the upstream speaks the client's protocol (issue 11):
    - `messages(upstream, body, headers)` → the Anthropic `message` object as the upstream answered
      it, for an Anthropic Messages request body (the client's, `model` set to the upstream's);
      `headers` are the client's `anthropic-version` / `anthropic-beta` to pass on.
    - `messages_stream(upstream, body, headers)` → yields the upstream's Anthropic stream events as
      dicts (`message_start` … `message_stop`, `ping` included); an `error` event or a cut stream
      raises UpstreamError.
    - `count_tokens(upstream, body, headers)` → Anthropic's `{"input_tokens": n}`.
    - `responses(upstream, body)` → OpenAI's `response` object for a Responses API request body, on an
      upstream with `native_responses`; `responses_stream(upstream, body)` → its stream events as
      dicts, ending with the terminal one (aihub/adapters/openai_responses.py).
    """

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def messages(self, upstream: Upstream, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        raise NotImplementedError

    def messages_stream(self, upstream: Upstream, body: dict[str, Any], headers: dict[str, str]) -> AsyncGenerator[dict[str, Any], None]:
        raise NotImplementedError

    async def count_tokens(self, upstream: Upstream, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        raise NotImplementedError

    async def responses(self, upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def responses_stream(self, upstream: Upstream, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        raise NotImplementedError

    async def chat(self, upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def chat_stream(self, upstream: Upstream, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        raise NotImplementedError

    async def embeddings(self, upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def completions(self, upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def completions_stream(self, upstream: Upstream, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        raise NotImplementedError

    async def images(self, upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def image_edit(self, upstream: Upstream, body: dict[str, Any], images: list[MediaFile], mask: MediaFile | None) -> dict[str, Any]:
        raise NotImplementedError

    async def speech(self, upstream: Upstream, body: dict[str, Any]) -> MediaStream:
        raise NotImplementedError

    async def transcribe(self, upstream: Upstream, body: dict[str, Any], audio: MediaFile) -> dict[str, Any]:
        raise NotImplementedError

    async def translate(self, upstream: Upstream, body: dict[str, Any], audio: MediaFile) -> dict[str, Any]:
        raise NotImplementedError

    async def video_create(self, upstream: Upstream, body: dict[str, Any], reference: MediaFile | None) -> dict[str, Any]:
        raise NotImplementedError

    async def video_status(self, upstream: Upstream, upstream_id: str) -> dict[str, Any]:
        raise NotImplementedError

    async def video_content(self, upstream: Upstream, upstream_id: str) -> MediaStream:
        raise NotImplementedError


def upstream_timeout() -> httpx.Timeout:
    return httpx.Timeout(
        connect=settings.UPSTREAM_CONNECT_TIMEOUT_SECONDS,
        read=settings.UPSTREAM_READ_TIMEOUT_SECONDS,
        write=settings.UPSTREAM_READ_TIMEOUT_SECONDS,
        pool=settings.UPSTREAM_CONNECT_TIMEOUT_SECONDS,
    )


# --- The mapping from a failed upstream exchange to UpstreamError, shared by every adapter ------

# Upstream statuses City answers as they are (the upstream's message included): the caller's fault.
# 429 is passed on too (the caller may slow down) but is retryable: another deployment may have room.
_RETRYABLE_4XX = {408, 409, 429}


def error_from_response(status: int, body: bytes, provider: str) -> UpstreamError:
    """An upstream's non-2xx answer → UpstreamError.

    4xx keeps its status and the upstream's own message, type, code and param (the OpenAI,
    Anthropic and Gemini error shapes are all read); 5xx becomes 502 (503 for 503 and Anthropic's
    529 "overloaded", 504 for 504), retryable.
    """
    message, error_type, code, param = _error_fields(body)
    if 400 <= status < 500:
        return UpstreamError(
            message or f"The upstream provider refused the request ({status}).",
            status=status,
            retryable=status in _RETRYABLE_4XX,
            code=code,
            error_type=error_type,
            param=param,
        )
    mapped = 503 if status in (503, 529) else 504 if status == 504 else 502
    detail = f": {message}" if message else ""
    return UpstreamError(
        f"The upstream provider failed with status {status}{detail}",
        status=mapped,
        retryable=True,
        code="upstream_error" if mapped == 502 else "upstream_unavailable" if mapped == 503 else "upstream_timeout",
    )


def error_from_transport(exc: Exception, provider: str) -> UpstreamError:
    """An httpx exception (connect, timeout, broken stream) → a retryable 502 or 504."""
    if isinstance(exc, httpx.TimeoutException):
        what = "accept the connection" if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)) else "answer"
        return UpstreamError(f"The upstream provider did not {what} in time.", status=504, retryable=True, code="upstream_timeout")
    if isinstance(exc, httpx.ConnectError):
        return UpstreamError(
            "City could not reach the upstream provider; try again later (an admin can check its base URL).",
            status=502,
            retryable=True,
            code="upstream_unreachable",
        )
    return UpstreamError(
        f"The connection to the upstream provider broke ({type(exc).__name__}).", status=502, retryable=True, code="upstream_error"
    )


def _error_fields(body: bytes) -> tuple[str | None, str | None, str | None, str | None]:
    """(message, type, code, param) from an OpenAI {"error": {...}}, Anthropic {"type": "error",
    "error": {...}}, Gemini {"error": {"code", "message", "status"}} or a plain-text body."""
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return (text[:500] or None), None, None, None
    if isinstance(data, list) and data and isinstance(data[0], dict):  # Gemini sometimes wraps errors in a list
        data = data[0]
    if not isinstance(data, dict):
        return None, None, None, None
    error = data.get("error", data)
    if isinstance(error, str):
        return error[:500], None, None, None
    if not isinstance(error, dict):
        return None, None, None, None
    message = error.get("message") or error.get("detail")
    error_type = error.get("type") or error.get("status")
    code = error.get("code")
    param = error.get("param")
    return (
        str(message)[:2000] if message else None,
        str(error_type) if isinstance(error_type, str) else None,
        str(code) if isinstance(code, (str, int)) and not isinstance(code, bool) else None,
        str(param) if isinstance(param, str) else None,
    )
