"""OpenAI audio/speech: the OpenAICompatAdapter methods of these names delegate here.

`POST {base}/audio/speech` `{model, input, voice, response_format, speed, instructions?,
stream_format?}` answers the audio itself (or, with `stream_format: "sse"`, OpenAI's speech events). The answer is opened, its status checked (an error is read and raised as
UpstreamError, so that retries and fail-over happen before any byte reaches City's client), and
handed back as a MediaStream whose chunks are relayed as they arrive.
"""

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from aihub.adapters.base import MediaStream, Upstream, UpstreamError, error_from_response, error_from_transport

if TYPE_CHECKING:
    from aihub.adapters.openai_compat import OpenAICompatAdapter

# OpenAI's speech fields; anything else in the body is City's own and stays here.
SPEECH_FIELDS = ("input", "voice", "response_format", "speed", "instructions", "stream_format")


async def speech(adapter: "OpenAICompatAdapter", upstream: Upstream, body: dict[str, Any]) -> MediaStream:
    payload = {name: body[name] for name in SPEECH_FIELDS if body.get(name) is not None}
    payload["model"] = upstream.model
    headers = {**adapter.headers(upstream), "Accept": "*/*"}
    request = adapter.client.build_request("POST", upstream.base_url + "/audio/speech", content=orjson.dumps(payload), headers=headers)
    return await open_audio(adapter.client, request, upstream.provider, error_from_response)


async def open_audio(
    client: httpx.AsyncClient,
    request: httpx.Request,
    provider: str,
    error_of: Any,  # (status, body, provider) -> UpstreamError: each provider reads its own error shape
) -> MediaStream:
    """Send `request` and open its answer as a MediaStream, or raise UpstreamError."""
    try:
        response = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise error_from_transport(exc, provider) from None
    if response.status_code >= 400:
        try:
            body = await response.aread()
        except httpx.HTTPError as exc:
            raise error_from_transport(exc, provider) from None
        finally:
            await response.aclose()
        raise error_of(response.status_code, body, provider)
    content_type = response.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
    chunks = _chunks(response, provider)
    # Started up to its `try`, so that closing it closes the response even before a chunk is read
    # (a client gone before the relay began), and so does its collection (asyncio closes a started
    # generator that is dropped). An unstarted generator's aclose() skips its `finally`.
    await anext(chunks)
    return MediaStream(content_type, chunks)


async def _chunks(response: httpx.Response, provider: str) -> AsyncGenerator[bytes, None]:
    try:
        yield b""  # taken by open_audio (see there), never relayed
        async for chunk in response.aiter_bytes():
            if chunk:
                yield chunk
    except httpx.HTTPError as exc:
        raise UpstreamError(
            f"The connection to the {provider} upstream broke mid-answer ({type(exc).__name__}).",
            status=502,
            retryable=True,
            code="upstream_error",
        ) from None
    finally:
        await response.aclose()  # early close (client gone): the upstream sees it at once
