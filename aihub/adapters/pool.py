"""One pooled upstream client per upstream base URL and event loop, created on first use.

Each holds one aiohttp session (a keep-alive connection pool, see transport.py) that serves both
ways in: httpx's API (`client.post`, `client.send(stream=True)`, …) through httpx-aiohttp's
transport, and `client.lean`, the shorter path the OpenAI-compatible adapter takes.

Clients belong to the event loop they first ran on, so the pool is keyed by loop: Daphne and
uvicorn run one loop per process (one client per upstream for the life of the process). A loop made
for one call (a sync test client) gets its own, which its session keeps alive until `close_all()`
runs in that loop or the process ends.
"""

import asyncio
import os
import weakref

import httpx

from aihub.adapters.base import upstream_timeout
from aihub.adapters.transport import LeanHTTP, httpx_transport, new_session

# Open connections per upstream and process: past it a call waits (up to the connect timeout) for one
# to come free. aiohttp's default of 100 would queue the 101st concurrent stream.
_MAX_CONNECTIONS = 1024
# How long an idle keep-alive connection is kept: below common server idle timeouts (60 s and up),
# so the upstream seldom closes one under a new request.
_KEEPALIVE_EXPIRY_SECONDS = 30.0

_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, httpx.AsyncClient]]" = weakref.WeakKeyDictionary()


class UpstreamClient(httpx.AsyncClient):
    """httpx's client for one upstream, with `lean` (a LeanHTTP to the same base URL over the same
    connection pool, or None when httpx's own transport is in use) for adapters that take the
    shorter way on their hot path."""

    lean: LeanHTTP | None = None


def client_for(base_url: str) -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    per_loop = _clients.get(loop)
    if per_loop is None:
        per_loop = _clients[loop] = {}
    client = per_loop.get(base_url)
    if client is None:
        client = per_loop[base_url] = new_client(base_url, upstream_timeout())
    return client


def new_client(base_url: str, timeout: httpx.Timeout) -> UpstreamClient:
    """A new client for `base_url` (call inside the loop it will serve); client_for keeps one per loop."""
    if _proxied():
        # httpx's own transport reads the proxy settings (and NO_PROXY) from the environment.
        limits = httpx.Limits(
            max_connections=_MAX_CONNECTIONS, max_keepalive_connections=_MAX_CONNECTIONS, keepalive_expiry=_KEEPALIVE_EXPIRY_SECONDS
        )
        return UpstreamClient(timeout=timeout, limits=limits, follow_redirects=False)
    session = new_session(max_connections=_MAX_CONNECTIONS, keepalive_expiry_seconds=_KEEPALIVE_EXPIRY_SECONDS)
    client = UpstreamClient(timeout=timeout, transport=httpx_transport(session), follow_redirects=False)
    client.lean = LeanHTTP(session, base_url, timeout)
    return client


def _proxied() -> bool:
    """A proxy in the process env (HTTPS_PROXY, …)."""
    return any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"))


async def close_all() -> None:
    """Close this loop's clients (shutdown, tests); closing one closes its session."""
    per_loop = _clients.pop(asyncio.get_running_loop(), {})
    for client in per_loop.values():
        await client.aclose()
