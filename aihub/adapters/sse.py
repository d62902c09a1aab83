"""Server-sent events read off an httpx streaming response, for every adapter."""

from collections.abc import AsyncIterator

import httpx


async def iter_sse(response: httpx.Response) -> AsyncIterator[tuple[str | None, bytes]]:
    """Yield `(event, data)` per event as it arrives: `event` is the `event:` field (None when absent),
    `data` the `data:` lines joined by newlines. Comments (keep-alives), `id:` and `retry:` are skipped;
    a last event without its closing blank line is still yielded."""
    event: str | None = None
    data: list[bytes] = []
    pending = b""
    async for chunk in response.aiter_bytes():
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if data:
                    yield event, b"\n".join(data)
                event, data = None, []
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                event = line[6:].strip().decode("utf-8", "replace")
    if pending.startswith(b"data:"):
        value = pending.rstrip(b"\r")[5:]
        data.append(value[1:] if value.startswith(b" ") else value)
    if data:
        yield event, b"\n".join(data)
