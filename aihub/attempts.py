"""Retry with backoff and fail-over across a model's deployments — only before the first byte.

A non-streamed answer is one attempt per try. A stream's attempt ends at its first chunk: once
that chunk is in hand (and so before anything reaches the client) the stream is committed to that
upstream; anything that fails later is reported to the client, never retried.

Rules: a `retryable` error (connect error, timeout, upstream 5xx, 429) is retried on the same
deployment after a pause, then the next deployment is tried; an upstream 401/403/404 (that
deployment's key or model name is wrong) goes straight to the next deployment; any other 4xx is
the request's own fault and is answered at once. A 401/403 that is the last error reaches the client
as a 502 `upstream_auth_failed` naming the provider's key: the client's City token is not at fault. An adapter without the operation (Deepgram asked
for speech) raises NotImplementedError: the next deployment is tried, and if none has it the
client gets a 400 `unsupported_model` naming the model. The last error is what the client sees.
"""

import asyncio
import random
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from aihub import metrics
from aihub.adapters.base import Upstream, UpstreamError
from aihub.metering import Meter

T = TypeVar("T")

TRIES_PER_DEPLOYMENT = 2  # one retry of a deployment before failing over to the next
MAX_TRIES = 4  # across all deployments of a model
BACKOFF_SECONDS = 0.2  # pause before a retry, doubled per retry, ±50 % jitter
FAILOVER_STATUSES = {401, 403, 404}


def backoff_seconds(retry: int) -> float:
    return BACKOFF_SECONDS * (2 ** (retry - 1)) * random.uniform(0.5, 1.5)


async def first_success(upstreams: list[Upstream], attempt: Callable[[Upstream], Awaitable[T]], meter: Meter) -> T:
    """`attempt(upstream)` on each upstream in turn until one succeeds; raises the last UpstreamError.
    `meter.provider` names the upstream that answered (or failed last)."""
    tries = 0
    last: UpstreamError | None = None
    for upstream in upstreams:
        if last is not None and tries < MAX_TRIES:
            metrics.failover(meter.provider)  # the deployment just left
        for retry in range(TRIES_PER_DEPLOYMENT):
            if tries >= MAX_TRIES:
                break
            if retry:
                await asyncio.sleep(backoff_seconds(retry))
            tries += 1
            meter.provider, meter.deployment = upstream.provider, upstream.model
            try:
                return await attempt(upstream)
            except NotImplementedError:
                last = UpstreamError(
                    f"The model '{meter.model.id}' cannot do this through {upstream.provider}.",
                    status=400,
                    retryable=False,
                    code="unsupported_model",
                    param="model",
                )
                break  # next deployment: its protocol may have the operation
            except UpstreamError as exc:
                metrics.upstream_error(upstream.provider, exc.status)
                last = (
                    with_base_url_hint(exc, upstream)
                    if exc.status == 404
                    else key_refused(exc, upstream)
                    if exc.status in (401, 403)
                    else exc
                )
                if exc.retryable:
                    continue
                if exc.status in FAILOVER_STATUSES:
                    break  # next deployment
                raise
    assert last is not None
    raise last


def with_base_url_hint(exc: UpstreamError, upstream: Upstream) -> UpstreamError:
    """An upstream 404 names the base URL City called and the env key it came from: a base URL
    missing its API path (`…/v1`) looks like a missing model otherwise."""
    where = shown_url(upstream.base_url)
    env = f" ({upstream.base_url_env})" if upstream.base_url_env else ""
    exc.message = (
        f"{exc.message} [{upstream.provider} at {where}{env} answered 404: check the model name, and that the base URL "
        "includes the API's path, such as /v1]"
    )
    return exc


def key_refused(exc: UpstreamError, upstream: Upstream) -> UpstreamError:
    """An upstream's 401/403 as a 502 naming the provider and City's env key for it: the client's own
    City token is fine, and a 401 would tell its SDK (Claude Code, Codex) to sign in again."""
    key = f" ({upstream.api_key_env})" if upstream.api_key_env else ""
    return UpstreamError(
        f"The upstream provider {upstream.provider} refused City's credentials for it with {exc.status}: {exc.message} "
        f"[an admin should check City's {upstream.provider} API key{key}]",
        status=502,
        retryable=False,
        code="upstream_auth_failed",
    )


def shown_url(url: str) -> str:
    """The URL without user info or query (a base URL is no secret, but a proxy's password may sit in it)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


async def open_stream(
    upstreams: list[Upstream], start: Callable[[Upstream], AsyncGenerator[dict[str, Any], None]], meter: Meter
) -> tuple[AsyncGenerator[dict[str, Any], None], dict[str, Any] | None]:
    """Start a stream, retrying and failing over until its first chunk arrives.

    Returns the open iterator and that first chunk (None for a stream that ended at once). The
    caller owns the iterator and must `aclose()` it.
    """

    async def first_chunk(upstream: Upstream) -> tuple[AsyncGenerator[dict[str, Any], None], dict[str, Any] | None]:
        stream = start(upstream)
        try:
            first = await stream.__anext__()
        except StopAsyncIteration:
            return stream, None
        except BaseException:
            await stream.aclose()
            raise
        meter.first_token()
        return stream, first

    return await first_success(upstreams, first_chunk, meter)
