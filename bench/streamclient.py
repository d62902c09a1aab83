"""Time to first byte of a streamed chat completion, and when every later chunk arrived.

A raw asyncio client (no client library adds its own buffering) on uvloop when installed: it sends
each request, then timestamps every read of the body. The first `data:` event is the first token;
the spread of the events shows whether a proxy passed chunks on as they came or held them.

Three shapes: streams one after the other on one kept-alive connection (as SDKs pool theirs),
`stream_load` (N kept-alive connections each streaming back to back for a fixed time) and
`open_streams` (N streams on N new connections, opened at once or at a steady rate, all held open
until they end).
"""

import asyncio
import math
import resource
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass
class StreamTiming:
    ttfb_ms: float  # request sent → first `data:` event received
    total_ms: float  # request sent → `data: [DONE]` received
    events: int  # `data:` events received
    first_half_events: int  # events received in the first half of the stream's time (about half if not held)


def request_bytes(port: int, path: str, body: bytes, token: str | None, headers: Mapping[str, str] | None = None) -> bytes:
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Accept: text/event-stream",
    ]
    if token:
        head.append(f"Authorization: Bearer {token}")
    head.extend(f"{name}: {value}" for name, value in (headers or {}).items())
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def one_stream(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes) -> StreamTiming:
    """One streamed request (`request_bytes`) on a kept-alive connection; reads it to its last chunk."""
    reader, writer = conn
    arrivals: list[float] = []  # one timestamp per `data:` event
    seen = b""
    started = time.perf_counter()
    writer.write(request)
    await writer.drain()
    while not seen.endswith(b"\r\n0\r\n\r\n"):  # the chunked body's end (every server here chunks SSE)
        data = await reader.read(65536)
        now = time.perf_counter()
        if not data:
            raise RuntimeError(f"the connection closed mid-stream: {seen[-300:]!r}")
        seen += data
        if len(seen) == len(data):
            status_line = seen.split(b"\r\n", 1)[0]
            if b" 200 " not in status_line + b" ":
                raise RuntimeError(f"stream answered {status_line.decode(errors='replace')}: {seen[:300]!r}")
        arrivals.extend([now] * (seen.count(b"data:") - len(arrivals)))
    if not arrivals or b"data: [DONE]" not in seen:
        raise RuntimeError(f"stream ended without data: [DONE]: {seen[-300:]!r}")
    total = arrivals[-1] - started
    first_half = sum(1 for t in arrivals if t - started <= total / 2)
    return StreamTiming((arrivals[0] - started) * 1000, total * 1000, len(arrivals), first_half)


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Runs a coroutine on uvloop when installed (a faster client loop than asyncio's own)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(make())  # type: ignore[arg-type]
    return uvloop.run(make())  # type: ignore[arg-type]


def stream_timings(
    port: int, path: str, body: bytes, token: str | None, count: int, pause_s: float = 0.0, headers: Mapping[str, str] | None = None
) -> list[StreamTiming]:
    """`count` streams one after the other on one connection, `pause_s` apart."""
    request = request_bytes(port, path, body, token, headers)

    async def run() -> list[StreamTiming]:
        conn = await asyncio.open_connection("127.0.0.1", port)
        try:
            timings = []
            for _ in range(count):
                timings.append(await one_stream(conn, request))
                if pause_s:
                    await asyncio.sleep(pause_s)
            return timings
        finally:
            conn[1].close()

    return run_async(run)


def stream_load(
    port: int, path: str, body: bytes, token: str | None, connections: int, seconds: float, headers: Mapping[str, str] | None = None
) -> list[StreamTiming]:
    """`connections` kept-alive connections, each streaming one request after the other until
    `seconds` have passed: the streams' timings, all connections together."""
    request = request_bytes(port, path, body, token, headers)

    async def one_connection(deadline: float) -> list[StreamTiming]:
        conn = await asyncio.open_connection("127.0.0.1", port)
        try:
            timings = []
            while time.perf_counter() < deadline:
                timings.append(await one_stream(conn, request))
            return timings
        finally:
            conn[1].close()

    async def run() -> list[StreamTiming]:
        deadline = time.perf_counter() + seconds
        per_connection = await asyncio.gather(*(one_connection(deadline) for _ in range(connections)))
        return [t for timings in per_connection for t in timings]

    return run_async(run)


@dataclass
class OpenStreams:
    timings: list[StreamTiming]  # the streams that ended with `data: [DONE]`
    failures: list[str]  # why each of the others did not (first few hundred characters)
    seconds: float  # from the first connect to the last stream's end
    peak_open: int = 0  # the most streams connected and not yet ended at one time


def raise_open_files(wanted: int) -> None:
    """Lifts this process's soft limit on open files towards `wanted` (up to its hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def open_streams(
    port: int,
    path: str,
    body: bytes,
    token: str | None,
    count: int,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
    per_second: float = 0.0,
) -> OpenStreams:
    """`count` streams, each on its own new connection, all read to their end: opened at once, or
    with `per_second`, one every 1/per_second seconds (a steady arrival rate: the time to the first
    event is then what the server adds while holding the streams already open, not the queue of
    `count` connections accepted in the same instant)."""
    raise_open_files(count + 256)
    request = request_bytes(port, path, body, token, headers)
    open_now, peak = 0, 0

    async def one(start: asyncio.Event, delay_s: float) -> StreamTiming:
        nonlocal open_now, peak
        await start.wait()
        if delay_s:
            await asyncio.sleep(delay_s)
        conn = await asyncio.open_connection("127.0.0.1", port)
        open_now += 1
        peak = max(peak, open_now)
        try:
            return await one_stream(conn, request)
        finally:
            open_now -= 1
            conn[1].close()

    async def run() -> OpenStreams:
        start = asyncio.Event()
        delays = [index / per_second if per_second else 0.0 for index in range(count)]
        tasks = [asyncio.ensure_future(asyncio.wait_for(one(start, delay), timeout_s + delay)) for delay in delays]
        await asyncio.sleep(0)  # every task waits on `start`: they connect together
        began = time.perf_counter()
        start.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        seconds = time.perf_counter() - began
        timings = [r for r in results if isinstance(r, StreamTiming)]
        failures = [f"{type(r).__name__}: {r}"[:300] for r in results if not isinstance(r, StreamTiming)]
        return OpenStreams(timings, failures, seconds, peak)

    return run_async(run)


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (`share` 0.99 for p99) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def summary(timings: list[StreamTiming]) -> dict[str, float]:
    ttfb = [t.ttfb_ms for t in timings]
    return {
        "streams": len(timings),
        "ttfb_p50_ms": statistics.median(ttfb),
        "ttfb_p90_ms": percentile(ttfb, 0.9),
        "ttfb_p99_ms": percentile(ttfb, 0.99),
        "total_p50_ms": statistics.median(t.total_ms for t in timings),
        "events": statistics.median(t.events for t in timings),
        "first_half_share": statistics.median(t.first_half_events / t.events for t in timings),
    }
