"""Time to first byte of a streamed chat completion, and when every later chunk arrived.

A raw asyncio client (no client library adds its own buffering), on one kept-alive connection as
SDKs pool theirs: it sends each request, then timestamps every read of the body. The first `data:` event is the first
token; the spread of the events shows whether a proxy passed chunks on as they came or held them.
"""

import asyncio
import statistics
import time
from dataclasses import dataclass


@dataclass
class StreamTiming:
    ttfb_ms: float  # request sent → first `data:` event received
    total_ms: float  # request sent → `data: [DONE]` received
    events: int  # `data:` events received
    first_half_events: int  # events received in the first half of the stream's time (about half if not held)


async def one_stream(
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], port: int, path: str, body: bytes, token: str | None
) -> StreamTiming:
    """One streamed request on a kept-alive connection (as SDKs pool theirs); reads it to its last chunk."""
    reader, writer = conn
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Accept: text/event-stream",
    ]
    if token:
        head.append(f"Authorization: Bearer {token}")
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
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


def stream_timings(port: int, path: str, body: bytes, token: str | None, count: int, pause_s: float = 0.0) -> list[StreamTiming]:
    """`count` streams one after the other on one connection, `pause_s` apart."""

    async def run() -> list[StreamTiming]:
        conn = await asyncio.open_connection("127.0.0.1", port)
        try:
            timings = []
            for _ in range(count):
                timings.append(await one_stream(conn, port, path, body, token))
                if pause_s:
                    await asyncio.sleep(pause_s)
            return timings
        finally:
            conn[1].close()

    return asyncio.run(run())


def summary(timings: list[StreamTiming]) -> dict[str, float]:
    ttfb = sorted(t.ttfb_ms for t in timings)
    return {
        "ttfb_p50_ms": statistics.median(ttfb),
        "ttfb_p90_ms": ttfb[int(0.9 * (len(ttfb) - 1))],
        "total_p50_ms": statistics.median(t.total_ms for t in timings),
        "events": statistics.median(t.events for t in timings),
        "first_half_share": statistics.median(t.first_half_events / t.events for t in timings),
    }
