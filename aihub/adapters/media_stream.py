"""An upstream's binary answer (audio, a video) opened as a MediaStream, for every media adapter."""

from collections.abc import AsyncGenerator, Callable

import httpx

from aihub.adapters.base import MediaStream, UpstreamError, error_from_response, error_from_transport

# (status, body, provider) → UpstreamError: each provider reads its own error shape.
ErrorOf = Callable[[int, bytes, str], UpstreamError]


async def opened(
    client: httpx.AsyncClient,
    request: httpx.Request,
    provider: str,
    error_of: ErrorOf = error_from_response,
    default_type: str = "application/octet-stream",
) -> MediaStream:
    """Send `request` and open its answer as a MediaStream, or raise UpstreamError."""
    try:
        response = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise error_from_transport(exc, provider) from None
    return await stream_of(response, provider, error_of, default_type)


async def stream_of(
    response: httpx.Response, provider: str, error_of: ErrorOf = error_from_response, default_type: str = "application/octet-stream"
) -> MediaStream:
    """A response sent with `stream=True` as a MediaStream; its error, read and raised, when it is one."""
    if response.status_code >= 400:
        try:
            body = await response.aread()
        except httpx.HTTPError as exc:
            raise error_from_transport(exc, provider) from None
        finally:
            await response.aclose()
        raise error_of(response.status_code, body, provider)
    content_type = response.headers.get("content-type", default_type).split(";")[0].strip() or default_type
    chunks = _chunks(response, provider)
    # Started up to its `try`, so that closing it closes the response even before a chunk is read
    # (a client gone before the relay began), and so does its collection (asyncio closes a started
    # generator that is dropped). An unstarted generator's aclose() skips its `finally`.
    await anext(chunks)
    return MediaStream(content_type, chunks)


async def _chunks(response: httpx.Response, provider: str) -> AsyncGenerator[bytes, None]:
    try:
        yield b""  # taken by stream_of (see there), never relayed
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
