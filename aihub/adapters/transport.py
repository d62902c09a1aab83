"""The wire under City's upstream calls: aiohttp, with one pooled session per upstream base URL and
event loop (pool.py creates them), used two ways:

- under the adapters' httpx.AsyncClient, through httpx-aiohttp's `AiohttpTransport` (`httpx_transport`):
  adapters keep httpx's API and exceptions; httpx decodes compressed bodies;
- `LeanHTTP`, the OpenAI-compatible adapter's hot path: straight to aiohttp, with no httpx Request,
  Response, URL or cookie objects per call, aiohttp's failures raised as httpx's exceptions so that
  base.error_from_transport maps them as it maps httpx's own.

Why aiohttp: its C HTTP parser (llhttp) makes it the cheapest well-kept client; CPU per sequential
call on the 2-core benchmark machine was about 1.4 ms for httpx's default transport, 0.8 ms for
httpx over aiohttp and 0.25 ms for an aiohttp session alone. City used to parse HTTP by hand for
that speed; a hand-written parser facing external servers was a correctness and security risk.

A response closed before its body was read to the end closes its connection (aiohttp's `close()`
on the lean path; on the httpx path httpx-aiohttp's `release()`, which closes a connection whose
body is unread), so the upstream sees the client leave at once and stops generating.
"""

import asyncio
import functools
import ssl
from collections.abc import AsyncIterator
from typing import cast

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from yarl import URL

# What the lean path sends as User-Agent (httpx's requests send httpx's own).
_USER_AGENT = "City"
# What aiohttp raises for a failed exchange; ValueError: a header it refuses to send (CR/LF in a key).
_FAILURES = (aiohttp.ClientError, OSError, ValueError)


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """httpx's verifying context (certifi's roots, SSL_CERT_FILE honoured), built once per process:
    loading the roots costs milliseconds, and a context is safe to share across loops."""
    return httpx.create_ssl_context()


def new_session(*, max_connections: int, keepalive_expiry_seconds: float) -> aiohttp.ClientSession:
    """A pooled session for one upstream (call inside the event loop it will serve).

    No Accept-Encoding is sent by default (answers come uncompressed, cheap to relay); one that
    comes compressed anyway is decoded on the lean path, and left to httpx on the httpx path.
    """
    connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0, keepalive_timeout=keepalive_expiry_seconds, ssl=ssl_context())
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": _USER_AGENT},
        skip_auto_headers=("Accept-Encoding",),
        auto_decompress=True,
        cookie_jar=aiohttp.DummyCookieJar(),  # upstream APIs are stateless; never carry cookies between callers
        timeout=aiohttp.ClientTimeout(total=None),  # per request, from httpx.Timeout (see client_timeout)
    )


def httpx_transport(session: aiohttp.ClientSession) -> httpx.AsyncBaseTransport:
    """httpx-aiohttp's transport over `session`; closing it (client.aclose()) closes the session."""
    return _Transport(client=session, verify=ssl_context())


class _Transport(AiohttpTransport):
    """httpx-aiohttp's transport, its failures mapped as the lean path maps them: its own mapping
    (0.2.0) makes a refused connection a ConnectTimeout (a 504 "did not accept the connection in
    time" instead of a 502 "check its base URL"), and lets some of aiohttp's errors (a malformed
    answer) through as they are, past the adapters' `except httpx.HTTPError`."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except Exception as exc:
            raise _mapped(exc) from exc
        response.stream = _Stream(cast(httpx.AsyncByteStream, response.stream))  # an async transport's body streams async
        return response


class _Stream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._stream = stream
        self._read_to_the_end = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for piece in self._stream:
                yield piece
        except Exception as exc:
            raise _mapped(exc) from exc
        self._read_to_the_end = True

    async def aclose(self) -> None:
        await self._stream.aclose()  # aiohttp's release(): a body not read to the end closes its connection
        if not self._read_to_the_end:
            await _socket_closed()


async def _socket_closed() -> None:
    """Let a connection just closed reach its socket before going on. asyncio (and uvloop) close the
    socket on the loop's next turn, in the order closes and wake-ups were scheduled; yielding once
    lets that turn come, so the upstream has seen the client go when `aclose()` returns, even if
    the caller then blocks the loop."""
    await asyncio.sleep(0)


def _mapped(exc: Exception) -> Exception:
    """The exception httpx-aiohttp raised, mapped from the aiohttp failure underneath it."""
    cause = exc.__cause__ if isinstance(exc, httpx.TransportError) else exc
    if isinstance(cause, _FAILURES):
        return httpx_error(cause)
    return exc


def client_timeout(timeout: httpx.Timeout) -> aiohttp.ClientTimeout:
    """httpx's timeouts in aiohttp's terms: `connect` covers waiting for a pooled connection and
    opening one; `sock_read` is the longest silence while reading (as httpx's `read`). aiohttp has no
    write timeout: request bodies are small and written into the socket buffer at once."""
    pool, connect = timeout.pool, timeout.connect
    total_connect = None if pool is None or connect is None else pool + connect
    return aiohttp.ClientTimeout(total=None, connect=total_connect, sock_connect=connect, sock_read=timeout.read)


def httpx_error(exc: Exception) -> httpx.HTTPError:
    """aiohttp's failure → the httpx exception base.error_from_transport expects."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # no pooled connection, or the connect timed out
        return httpx.ConnectTimeout(f"Timed out connecting to the upstream: {exc}")
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS handshake and certificate
        return httpx.ConnectError(f"Could not connect to the upstream: {exc}")
    if isinstance(exc, TimeoutError):  # aiohttp.SocketTimeoutError: silent longer than the read timeout
        return httpx.ReadTimeout("Timed out waiting for the upstream's answer.")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(f"The upstream's body was cut short or malformed: {exc}")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError("The upstream closed the connection without answering.")
    if isinstance(exc, OSError):  # aiohttp.ClientOSError, a reset connection
        return httpx.ReadError(f"The connection to the upstream broke: {exc}")
    if isinstance(exc, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)):
        return httpx.UnsupportedProtocol(f"The upstream's URL cannot be used: {exc}")
    if isinstance(exc, ValueError):
        return httpx.LocalProtocolError(f"The request could not be sent: {exc}")
    return httpx.RemoteProtocolError(f"The upstream's answer could not be read: {type(exc).__name__}: {exc}")


class LeanResponse:
    """An answer read by `LeanHTTP`: the parts of httpx.Response the adapters use (`status_code`,
    `headers` as raw (name, value) byte pairs, `content` once read, `aread`, `aiter_bytes`, `aclose`)."""

    __slots__ = ("_response", "content", "headers", "status_code")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status_code = response.status
        self.headers = response.raw_headers
        self.content = b""

    async def aread(self) -> bytes:
        """The whole body; the connection goes back to the pool (or is closed when reading failed)."""
        try:
            self.content = await self._response.read()
        except _FAILURES as exc:
            self._response.close()
            raise httpx_error(exc) from None
        return self.content

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives; read to the end, the connection goes back to the pool."""
        try:
            async for piece in self._response.content.iter_any():
                yield piece
        except _FAILURES as exc:
            self._response.close()
            raise httpx_error(exc) from None

    async def aclose(self) -> None:
        """Done with the answer. Unread to the end, its connection is closed, not pooled, and closed
        by the time aclose returns: the upstream sees the request end now. (A body read to the end
        has already gone back to the pool.)"""
        closing = self._response.connection is not None
        self._response.close()
        if closing:
            await _socket_closed()


class LeanHTTP:
    """The shortest way from an adapter to one upstream base URL, over the pooled aiohttp session:
    httpx's exceptions raised, httpx's timeouts kept (read: longest silence)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, timeout: httpx.Timeout) -> None:
        self.base_url = base_url
        self.session = session
        self.timeout = client_timeout(timeout)
        self._prefix = base_url.rstrip("/")
        self._urls: dict[str, URL] = {}  # path → its parsed URL: parsing per call costs more than the cache

    def _url(self, path: str) -> URL:
        url = self._urls.get(path)
        if url is None:
            url = URL(self._prefix + path)
            if len(self._urls) < 64:  # adapters use a handful of paths; never grow without bound
                self._urls[path] = url
        return url

    async def open(self, method: bytes, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> LeanResponse:
        """Send; return once the status and headers are in (the body is still to be read or closed)."""
        try:
            response = await self.session.request(
                method.decode(),
                self._url(path),
                headers={name.decode("latin-1"): value.decode("latin-1") for name, value in headers},
                data=body,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except _FAILURES as exc:  # TimeoutError is an OSError
            raise httpx_error(exc) from None
        return LeanResponse(response)

    async def request(self, method: bytes, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> LeanResponse:
        """Send and read the whole answer (`content`)."""
        response = await self.open(method, path, headers, body)
        await response.aread()
        return response
