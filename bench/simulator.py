"""A lean OpenAI-compatible upstream for the benchmark: fast enough that it is never the bottleneck.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies, chunked responses) on a raw
asyncio protocol (uvloop when installed) to answer:

- `POST /v1/chat/completions` (also `/chat/completions`): a `chat.completion`, or with
  `"stream": true` an SSE stream of `--chunks` chunks, `--chunk-interval-ms` apart, each written
  the moment it is due (so a proxy that re-buffers shows up in the chunk arrival times); a body
  that holds `[bench:short-stream]` gets the first chunk and, at once, the last; one that holds
  `[bench:slow-stream]` gets `--slow-chunks` chunks `--slow-chunk-interval-ms` apart (a model that
  is slow to answer, for holding many streams open at once);
- `GET /v1/models` (also `/models`): one model.

It checks no credential: the benchmark measures the proxies, not the upstream.

    python bench/simulator.py --port 18001 [--chunks 20 --chunk-interval-ms 10]
"""

import argparse
import asyncio
import time
from typing import cast

import orjson

COMPLETION_TEXT = "Hello from the City benchmark upstream."
# In a request's body (say, in a message), asks for a short stream: the first chunk, then the last at once.
SHORT_STREAM_MARK = b"[bench:short-stream]"
# Asks for a slow stream (--slow-chunks, --slow-chunk-interval-ms): the run that holds 1,000 streams open.
SLOW_STREAM_MARK = b"[bench:slow-stream]"


def completion(model: str) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": COMPLETION_TEXT, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
        }
    )


def stream_chunk(model: str, index: int, last: bool) -> bytes:
    delta = {} if last else ({"role": "assistant", "content": "tok "} if index == 0 else {"content": "tok "})
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if last else None}],
    }
    if last:
        body["usage"] = {"prompt_tokens": 12, "completion_tokens": index, "total_tokens": 12 + index}
    return b"data: " + orjson.dumps(body) + b"\n\n"


def models_list() -> bytes:
    return orjson.dumps({"object": "list", "data": [{"id": "bench-model", "object": "model", "created": 0, "owned_by": "bench"}]})


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class UpstreamProtocol(asyncio.Protocol):
    def __init__(self, chunks: int, interval_s: float, slow: tuple[int, float] = (20, 0.25)) -> None:
        self.chunks = chunks
        self.interval_s = interval_s
        self.slow = slow  # (chunks, interval in seconds) of a `[bench:slow-stream]` request
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.streaming = False  # one stream at a time per connection; later requests wait in the buffer
        self.stream_task: asyncio.Task | None = None  # held so the loop does not collect it mid-stream

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP server's connections are stream transports; uvloop's (TCPTransport) does not subclass asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.streaming:
            self.answer_buffered()

    def answer_buffered(self) -> None:
        while self.transport is not None and not self.streaming:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin1")
            lines = head.split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            length = 0
            close = False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self.answer(method, target.split("?", 1)[0], body, close)

    def answer(self, method: str, path: str, body: bytes, close: bool) -> None:
        if path in ("/v1/chat/completions", "/chat/completions") and method == "POST":
            try:
                request = orjson.loads(body)
                model = str(request.get("model", "bench-model"))
            except (orjson.JSONDecodeError, AttributeError):
                self.respond(
                    400, b'{"error": {"message": "bad JSON", "type": "invalid_request_error", "code": null, "param": null}}', close
                )
                return
            if request.get("stream"):
                self.streaming = True
                if SHORT_STREAM_MARK in body:
                    chunks, interval_s = 1, 0.0
                elif SLOW_STREAM_MARK in body:
                    chunks, interval_s = self.slow
                else:
                    chunks, interval_s = self.chunks, self.interval_s
                self.stream_task = asyncio.ensure_future(self.stream(model, close, chunks, interval_s))
            else:
                self.respond(200, completion(model), close)
        elif path in ("/v1/models", "/models") and method == "GET":
            self.respond(200, models_list(), close)
        else:
            self.respond(404, b'{"error": {"message": "no such route", "type": "not_found_error", "code": null, "param": null}}', close)

    def respond(self, status: int, body: bytes, close: bool) -> None:
        reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}[status]
        head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n" % (
            status,
            reason,
            len(body),
            b"connection: close\r\n" if close else b"",
        )
        assert self.transport is not None
        self.transport.write(head + body)
        if close:
            self.transport.close()
            self.transport = None

    async def stream(self, model: str, close: bool, chunks: int, interval_s: float) -> None:
        transport = self.transport
        assert transport is not None
        transport.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
            + http_chunk(stream_chunk(model, 0, False))
        )
        started = time.monotonic()
        for index in range(1, chunks + 1):
            # Sleep to each chunk's due time, so that the spacing does not drift with the event loop.
            await asyncio.sleep(max(0.0, started + index * interval_s - time.monotonic()))
            if transport.is_closing():
                return
            last = index == chunks
            transport.write(http_chunk(stream_chunk(model, index, last) + (b"data: [DONE]\n\n" if last else b"")))
        transport.write(b"0\r\n\r\n")
        self.streaming = False
        if close:
            transport.close()
            self.transport = None
        else:
            self.answer_buffered()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(host: str, port: int, chunks: int, interval_s: float, slow: tuple[int, float] = (20, 0.25)) -> None:
    loop = asyncio.get_running_loop()
    # A deep backlog: the benchmark opens 1,000 streams at once, straight to it for the baseline.
    server = await loop.create_server(lambda: UpstreamProtocol(chunks, interval_s, slow), host, port, backlog=4096)
    print(f"simulator listening on http://{host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18001)
    parser.add_argument("--chunks", type=int, default=20, help="stream chunks after the first one")
    parser.add_argument("--chunk-interval-ms", type=float, default=10.0, help="milliseconds between two stream chunks")
    parser.add_argument("--slow-chunks", type=int, default=20, help="chunks after the first one of a [bench:slow-stream] request")
    parser.add_argument("--slow-chunk-interval-ms", type=float, default=250.0, help="milliseconds between two chunks of a slow stream")
    args = parser.parse_args()
    main_task = serve(
        args.host, args.port, args.chunks, args.chunk_interval_ms / 1000, (args.slow_chunks, args.slow_chunk_interval_ms / 1000)
    )
    try:
        import uvloop
    except ImportError:
        asyncio.run(main_task)
    else:
        uvloop.run(main_task)


if __name__ == "__main__":
    main()
