"""The OpenAI-compatible wire protocol: OpenAI, DeepSeek, Moonshot, Qwen, GLM, OpenRouter, Ollama, vLLM, llama.cpp …

Requests pass through as the client sent them (fields City does not know included); only `model`
becomes the upstream's name, and streams always ask for usage.
"""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
import orjson
from typing_extensions import override

from aihub.adapters import openai_images, openai_responses, openai_speech, openai_transcription, openai_videos
from aihub.adapters.base import Adapter, MediaFile, MediaStream, Upstream, UpstreamError, error_from_response, error_from_transport
from aihub.adapters.sse import iter_sse

_JSON = "application/json"
# Seconds to wait after `data: [DONE]` for the end of the body (see _read_to_the_end).
BODY_END_WAIT_SECONDS = 1.0


class OpenAICompatAdapter(Adapter):
    def headers(self, upstream: Upstream) -> dict[str, str]:
        headers = {"Content-Type": _JSON, "Accept": _JSON}
        if upstream.api_key:
            headers["Authorization"] = f"Bearer {upstream.api_key}"
        return headers

    async def _send(self, upstream: Upstream, path: str, payload: dict[str, Any], *, stream: bool) -> Any:
        """POST `payload`; an httpx.Response or, on the pooled client's lean path, a LeanResponse
        (the same `status_code`, `content`, `aread`, `aiter_bytes`, `aclose`). With `stream`, the
        body is left unread. Raises httpx's exceptions."""
        body = orjson.dumps(payload)
        accept = "text/event-stream" if stream else _JSON
        lean = getattr(self.client, "lean", None)
        if lean is not None and lean.base_url == upstream.base_url:
            headers = [(b"Content-Type", b"application/json"), (b"Accept", accept.encode())]
            if upstream.api_key:
                headers.append((b"Authorization", b"Bearer " + upstream.api_key.encode()))
            return await (lean.open if stream else lean.request)(b"POST", path, headers, body)
        request = self.client.build_request(
            "POST", upstream.base_url + path, content=body, headers={**self.headers(upstream), "Accept": accept}
        )
        return await self.client.send(request, stream=stream)

    async def chat(self, upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
        payload = {**body, "model": upstream.model}
        payload.pop("stream", None)
        payload.pop("stream_options", None)
        return await self._post(upstream, "/chat/completions", payload)

    def chat_stream(self, upstream: Upstream, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        return self._stream(upstream, "/chat/completions", self._stream_payload(upstream, body))

    async def embeddings(self, upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
        payload = {**body, "model": upstream.model}
        payload.pop("encoding_format", None)  # floats; the service encodes base64 itself
        return await self._post(upstream, "/embeddings", payload)

    async def completions(self, upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
        payload = {**body, "model": upstream.model}
        payload.pop("stream", None)
        payload.pop("stream_options", None)
        return await self._post(upstream, "/completions", payload)

    def completions_stream(self, upstream: Upstream, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        return self._stream(upstream, "/completions", self._stream_payload(upstream, body))

    # --- the exchange ---------------------------------------------------------------------------

    def _stream_payload(self, upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
        options = body.get("stream_options")
        options = {**options, "include_usage": True} if isinstance(options, dict) else {"include_usage": True}
        return {**body, "model": upstream.model, "stream": True, "stream_options": options}

    async def _post(self, upstream: Upstream, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._send(upstream, path, payload, stream=False)
        except httpx.HTTPError as exc:
            raise error_from_transport(exc, upstream.provider) from None
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.content, upstream.provider)
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                f"The {upstream.provider} upstream answered with something that is not JSON.",
                status=502,
                retryable=True,
                code="upstream_error",
            ) from None
        if not isinstance(answer, dict):
            raise UpstreamError(
                f"The {upstream.provider} upstream answered with an unexpected shape.", status=502, retryable=True, code="upstream_error"
            )
        return answer

    async def _stream(self, upstream: Upstream, path: str, payload: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """Yield the upstream's chunks; usage (wherever the upstream put it) comes last, alone, with `choices: []`."""
        try:
            response = await self._send(upstream, path, payload, stream=True)
        except httpx.HTTPError as exc:
            raise error_from_transport(exc, upstream.provider) from None
        try:
            if response.status_code >= 400:
                raise error_from_response(response.status_code, await response.aread(), upstream.provider)
            usage = None
            last: dict[str, Any] | None = None
            done = False
            events = iter_sse(response)
            async for _event, data in events:
                if data == b"[DONE]":
                    done = True
                    break
                chunk = _parse_chunk(data, upstream.provider)
                if chunk.get("usage"):
                    usage = chunk.pop("usage")
                else:
                    chunk.pop("usage", None)
                if not chunk.get("choices"):
                    continue  # the usage chunk (sent below, last) or an empty one (e.g. prompt filter results)
                last = chunk
                yield chunk
            if usage is not None:
                yield {
                    "id": (last or {}).get("id", ""),
                    "object": (last or {}).get("object", "chat.completion.chunk"),
                    "created": (last or {}).get("created", 0),
                    "model": (last or {}).get("model", upstream.model),
                    "choices": [],
                    "usage": usage,
                }
            if done:
                await _read_to_the_end(events)
        except httpx.HTTPError as exc:
            raise error_from_transport(exc, upstream.provider) from None
        finally:
            await response.aclose()  # early close (client gone) drops the upstream connection at once

    @override
    async def responses(self, upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
        return await openai_responses.responses(self, upstream, body)

    @override
    def responses_stream(self, upstream: Upstream, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        return openai_responses.responses_stream(self, upstream, body)

    @override
    async def images(self, upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
        return await openai_images.images(self, upstream, body)

    @override
    async def image_edit(self, upstream: Upstream, body: dict[str, Any], images: list[MediaFile], mask: MediaFile | None) -> dict[str, Any]:
        return await openai_images.image_edit(self, upstream, body, images, mask)

    @override
    async def speech(self, upstream: Upstream, body: dict[str, Any]) -> MediaStream:
        return await openai_speech.speech(self, upstream, body)

    @override
    async def transcribe(self, upstream: Upstream, body: dict[str, Any], audio: MediaFile) -> dict[str, Any]:
        return await openai_transcription.transcribe(self, upstream, body, audio)

    @override
    async def translate(self, upstream: Upstream, body: dict[str, Any], audio: MediaFile) -> dict[str, Any]:
        return await openai_transcription.translate(self, upstream, body, audio)

    @override
    async def video_create(self, upstream: Upstream, body: dict[str, Any], reference: MediaFile | None) -> dict[str, Any]:
        return await openai_videos.video_create(self, upstream, body, reference)

    @override
    async def video_status(self, upstream: Upstream, upstream_id: str) -> dict[str, Any]:
        return await openai_videos.video_status(self, upstream, upstream_id)

    @override
    async def video_content(self, upstream: Upstream, upstream_id: str) -> MediaStream:
        return await openai_videos.video_content(self, upstream, upstream_id)


async def _read_to_the_end(events: AsyncIterator[Any]) -> None:
    """Read past `[DONE]` to the body's end, which normally follows at once: a body read to its end
    returns its connection to the pool, where closing it early would cost the next stream a new
    connection (a TLS handshake, with a real provider). An upstream that never ends the body is
    given BODY_END_WAIT_SECONDS, then closed."""
    try:
        async with asyncio.timeout(BODY_END_WAIT_SECONDS):
            async for _ in events:
                pass
    except TimeoutError:
        pass


def _parse_chunk(data: bytes, provider: str) -> dict[str, Any]:
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamError(
            f"The {provider} upstream sent a stream event that is not JSON.", status=502, retryable=True, code="upstream_error"
        ) from None
    if not isinstance(chunk, dict):
        raise UpstreamError(
            f"The {provider} upstream sent a stream event of an unexpected shape.", status=502, retryable=True, code="upstream_error"
        )
    if "error" in chunk and "choices" not in chunk:
        # Some OpenAI-compatible servers (OpenRouter, vLLM) report a failure mid-stream as an event.
        error = error_from_response(502, data, provider)
        raise UpstreamError(error.message, status=502, retryable=True, code=error.code or "upstream_error")
    return chunk
