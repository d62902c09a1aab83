"""A small base for loopback upstream simulators: real HTTP servers on 127.0.0.1 that tests point City at.

A simulator is a subclass of `SimServer` that implements `handle(request) -> Reply` in its provider's
wire format (and `error_body(status, message)` in its provider's error shape). The base runs a real
HTTP/1.1 server (keep-alive, chunked streaming) in a background thread on a free port, and gives
every simulator the same switches and records:

    sim = OpenAISim().start()           # or `with OpenAISim() as sim:`
    sim.url                             # "http://127.0.0.1:PORT"
    sim.latency_seconds = 0.2           # added before every answer
    sim.fail(503, times=2)              # the next 2 requests answer 503 (times=None: all of them)
    sim.fail(400, {"error": {...}})     # … with this exact body instead of error_body(status, message)
    sim.stall_seconds = 5               # hold this long without a byte (before the first byte,
    sim.stall_after_chunks = 2          #   or after N stream chunks); a client that leaves is recorded
    sim.fail_after_chunks = 3           # streams: cut the connection after 3 chunks
    sim.chunk_delay_seconds = 0.05      # streams: pause between chunks
    sim.handler = lambda request: Reply.json({...})  # answer with this instead of `handle` (None: `handle`)
    sim.hold()                          # hold every answer (before its first byte) until release()
    sim.release()                       #   … then answer the held ones and every later one at once
    sim.in_flight, sim.max_in_flight    # requests being answered now, and the most ever at once
    sim.wait_for_in_flight(3, 2.0)      # True once 3 requests are being answered at the same time
    sim.requests                        # [Received(method, path, query, headers, body, json), …]
    sim.last_request                    # the most recent one
    sim.cancellations                   # [Cancellation(request, chunks_sent)] — client disconnected mid-answer
    sim.wait_for_cancellation(2.0)      # True once a cancellation was seen
    sim.script.text = "Hi there"        # what a chat simulator answers (see Script), shared by every
    sim.script.tool_call = ("get_weather", {"city": "Paris"})  #   provider's simulator so that one
    sim.script.usage = None             #   contract test suite can drive them all
    sim.reset()                         # switches and script back to normal, records cleared
    sim.stop()

Replies: `Reply.json(obj, status=200)`, `Reply.sse(events)` where `events` is an iterable of bytes/str
chunks (use `sse(data, event=None)` to format one), or `Reply(status, body=b"...", content_type=...)`.
Each chunk of a stream is written and flushed as one HTTP chunk; a client that has disconnected is
noticed between chunks and while stalling (within ~20 ms), and recorded as a cancellation.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

_POLL_SECONDS = 0.02  # how often a stall checks whether the client has left


@dataclass
class Received:
    """One request as the simulator received it. Header names are lower-case."""

    method: str
    path: str  # without the query string
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any  # the parsed body, or None when it was not JSON


@dataclass
class Cancellation:
    request: Received
    chunks_sent: int


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Iterable[bytes | str] | None = None  # set: a streamed (chunked) answer

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(status=status, body=json.dumps(obj).encode(), headers=headers or {})

    @classmethod
    def sse(cls, events: Iterable[bytes | str], status: int = 200) -> Reply:
        return cls(status=status, content_type="text/event-stream", chunks=events, headers={"Cache-Control": "no-cache"})


def sse(data: Any, event: str | None = None) -> str:
    """One server-sent event: `event: NAME` (when given) and `data: JSON` (strings are sent as they are)."""
    payload = data if isinstance(data, str) else json.dumps(data)
    return (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"


@dataclass
class Script:
    """What a chat simulator answers, in whatever wire format it speaks.

    `text` is streamed in `stream_pieces` pieces; `tool_call` (name, arguments) answers with a call
    instead when the request offers tools; `usage` (prompt, completion) is reported, or none at all
    when None; `finish` is "stop" or "length" (each simulator uses its provider's word for it);
    `embedding_dimensions` is the default size of embedding vectors. `reasoning` is the thinking a
    simulator shows when the request turns thinking on; `json` is the input of a tool call the request
    forces (other than `tool_call`'s), as a JSON answer is asked of Claude.
    """

    text: str = "Hello from the simulator."
    stream_pieces: int = 4
    tool_call: tuple[str, dict[str, Any]] | None = None
    reasoning: str = "The user says hello; a short greeting back will do."
    json: dict[str, Any] = field(default_factory=lambda: {"greeting": "Hello from the simulator.", "words": 4})
    usage: tuple[int, int] | None = (11, 7)
    # Of usage's prompt, read from the provider's cache; of its completion, spent thinking (each
    # provider reports them in its own fields; none are sent while they are 0).
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    # Of usage's prompt, written to the provider's cache (Anthropic's cache_creation_input_tokens), and
    # of those, written for an hour (its `cache_creation.ephemeral_1h_input_tokens`; the rest for 5 minutes).
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    finish: str = "stop"
    embedding_dimensions: int = 8

    def pieces(self) -> list[str]:
        """`text` cut into `stream_pieces` non-empty pieces (fewer for short texts)."""
        n = max(1, min(self.stream_pieces, len(self.text)))
        size = -(-len(self.text) // n)
        return [self.text[i : i + size] for i in range(0, len(self.text), size)] or [""]


class _ClientGone(Exception):
    pass


class SimServer:
    """Subclass and implement `handle`; see the module docstring for the switches and records."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._requests: list[Received] = []
        self._cancellations: list[Cancellation] = []
        self._server: ThreadingHTTPServer | None = None
        self._gate = threading.Event()  # set: answers go out; clear: held until release()
        self._thread: threading.Thread | None = None
        self.reset()

    # --- what a subclass provides -------------------------------------------------------------

    def handle(self, request: Received) -> Reply:
        raise NotImplementedError

    # A test's own answer for every request, in place of `handle` (None: `handle` answers); reset() clears it.
    handler: Callable[[Received], Reply] | None

    def reply_to(self, request: Received) -> Reply:
        return self.handler(request) if self.handler is not None else self.handle(request)

    def error_body(self, status: int, message: str) -> Any:
        """The provider's error shape for a forced error (override per provider)."""
        return {"error": {"message": message, "type": "server_error" if status >= 500 else "invalid_request_error", "code": None}}

    # --- recorded payloads ----------------------------------------------------------------------

    # Folder of recorded payloads (`{name}.json`) that `play` names; set by a provider's simulator.
    recordings: Path | None = None

    def play(self, name: str, status: int = 200) -> None:
        """Answer the next request with the recording `{recordings}/{name}.json` (a list is an SSE stream)."""
        with self._lock:
            self._plays.append((name, status))

    def next_played(self) -> tuple[Any, int] | None:
        """The recorded payload and status `play` queued for this request, or None."""
        with self._lock:
            played = self._plays.pop(0) if self._plays else None
        if played is None or self.recordings is None:
            return None
        name, status = played
        return json.loads((self.recordings / f"{name}.json").read_text()), status

    # --- switches ------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._plays: list[tuple[str, int]] = []
            self.latency_seconds = 0.0
            self.stall_seconds = 0.0
            self.stall_after_chunks = 0
            self.fail_after_chunks: int | None = None
            self.chunk_delay_seconds = 0.0
            self.handler = None
            self._fail_status: int | None = None
            self._fail_body: Any = None
            self._fail_times: int | None = None
            self._requests.clear()
            self._cancellations.clear()
            self._cancelled.clear()
            self._in_flight = 0
            self._max_in_flight = 0
            self._gate.set()  # answers held until now go out
            self._gate = threading.Event()
            self._gate.set()
            self.script = Script()

    def fail(self, status: int, body: Any = None, *, times: int | None = None, message: str | None = None) -> None:
        """Answer the next `times` requests (None: every request) with `status` and `body`
        (default: error_body(status, message))."""
        with self._lock:
            self._fail_status = status
            self._fail_body = body if body is not None else self.error_body(status, message or f"simulated error {status}")
            self._fail_times = times

    # The longest a held answer waits for release(): a test that forgets to release ends anyway.
    hold_limit_seconds = 30.0

    def hold(self) -> None:
        """Hold every answer, before its first byte, until `release()` (or hold_limit_seconds)."""
        with self._lock:
            self._gate = threading.Event()

    def release(self) -> None:
        """Answer the held requests, and every later one at once."""
        with self._lock:
            self._gate.set()

    # --- records -------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Requests received and not yet answered in full (or left by their client)."""
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The most requests ever in flight at the same time since the last reset()."""
        with self._lock:
            return self._max_in_flight

    def wait_for_in_flight(self, count: int, timeout: float = 2.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.in_flight >= count:
                return True
            time.sleep(0.01)
        return self.in_flight >= count

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> Received:
        with self._lock:
            return self._requests[-1]

    @property
    def cancellations(self) -> list[Cancellation]:
        with self._lock:
            return list(self._cancellations)

    def wait_for_cancellation(self, timeout: float = 2.0) -> bool:
        return self._cancelled.wait(timeout)

    def wait_for_requests(self, count: int, timeout: float = 2.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests) >= count:
                return True
            time.sleep(0.01)
        return len(self.requests) >= count

    # --- life cycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the simulator first"
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # getsockname() of an AF_INET socket
        return f"http://{host}:{port}"

    def start(self) -> Self:
        sim: SimServer = self

        class Handler(_Handler):
            simulator = sim

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"{type(self).__name__}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- used by the handler -------------------------------------------------------------------

    def _record(self, received: Received) -> tuple[int | None, Any]:
        with self._lock:
            self._requests.append(received)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            if self._fail_status is None:
                return None, None
            status, body = self._fail_status, self._fail_body
            if self._fail_times is not None:
                self._fail_times -= 1
                if self._fail_times <= 0:
                    self._fail_status = self._fail_body = self._fail_times = None
            return status, body

    def _answered(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _gate_now(self) -> threading.Event:
        with self._lock:
            return self._gate

    def _record_cancellation(self, received: Received, chunks_sent: int) -> None:
        with self._lock:
            self._cancellations.append(Cancellation(received, chunks_sent))
        self._cancelled.set()


class _Server(ThreadingHTTPServer):
    # Hundreds of calls at once (the plan tests' bursts): a backlog of 5, the default, drops their
    # connections and the client's retries after a second make a test slow and flaky.
    request_queue_size = 512


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, chunked streams
    # TCP_NODELAY, as real upstreams' servers set it: with Nagle's algorithm on, an answer written in
    # pieces (headers, then body) waits out the client's delayed ACK, about 40 ms, now and then.
    disable_nagle_algorithm = True
    simulator: SimServer
    _in_flight = False  # this request is counted in the simulator's in_flight

    def log_message(self, format: str, *args: Any) -> None:  # quiet tests
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        sim = self.simulator
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        split = urlsplit(self.path)
        received = Received(
            method=self.command,
            path=split.path,
            query={k: v[-1] for k, v in parse_qs(split.query).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            json=parsed,
        )
        fail_status, fail_body = sim._record(received)
        self._in_flight = True
        try:
            self._wait_for_release(sim._gate_now())
            if sim.latency_seconds:
                self._wait(sim.latency_seconds)
            if sim.stall_seconds and sim.stall_after_chunks == 0:
                self._wait(sim.stall_seconds)
            if fail_status is not None:
                payload = fail_body if isinstance(fail_body, bytes) else json.dumps(fail_body).encode()
                self._send_whole(Reply(status=fail_status, body=payload))
                return
            reply = sim.reply_to(received)
            if reply.chunks is None:
                self._send_whole(reply)
            else:
                self._send_stream(reply, received)
        except _ClientGone as gone:
            sim._record_cancellation(received, int(str(gone) or 0))
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            sim._record_cancellation(received, 0)
            self.close_connection = True
        finally:
            self._leave()

    def _leave(self) -> None:
        """Counts this request out of `in_flight`, once: just before the last bytes of its answer go
        out, so that a client which frees a slot on reading them never sees the count over its limit."""
        if self._in_flight:
            self._in_flight = False
            self.simulator._answered()

    def _send_whole(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self._leave()
        self.wfile.write(reply.body)
        self.wfile.flush()

    def _send_stream(self, reply: Reply, received: Received) -> None:
        sim = self.simulator
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()
        sent = 0
        chunks = iter(reply.chunks or ())
        chunk = next(chunks, None)
        while chunk is not None:
            upcoming = next(chunks, None)  # one ahead: to know the last chunk before it goes out
            if sim.fail_after_chunks is not None and sent >= sim.fail_after_chunks:
                # An abrupt end: no terminating chunk, the connection just closes.
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if sent and sim.stall_seconds and sim.stall_after_chunks == sent:
                self._wait(sim.stall_seconds, sent)
            if sent and sim.chunk_delay_seconds:
                self._wait(sim.chunk_delay_seconds, sent)
            if self._client_gone():
                raise _ClientGone(str(sent))
            data = chunk.encode() if isinstance(chunk, str) else chunk
            if upcoming is None:
                self._leave()
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                raise _ClientGone(str(sent)) from None
            sent += 1
            chunk = upcoming
        self._leave()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _wait_for_release(self, gate: threading.Event) -> None:
        """While the simulator holds answers: wait for release(), noticing a client that leaves."""
        deadline = time.monotonic() + self.simulator.hold_limit_seconds
        while not gate.wait(_POLL_SECONDS) and time.monotonic() < deadline:
            if self._client_gone():
                raise _ClientGone("0")

    def _wait(self, seconds: float, sent: int = 0) -> None:
        """Sleep, but notice a client that leaves meanwhile."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self._client_gone(min(left, _POLL_SECONDS)):
                raise _ClientGone(str(sent))

    def _client_gone(self, timeout: float = 0.0) -> bool:
        """True when the peer has closed its end (readable with nothing to read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], timeout)
            if not readable:
                return False
            if self.connection.recv(1, socket.MSG_PEEK) == b"":
                return True
            time.sleep(timeout)  # pipelined bytes, not a close: don't spin
            return False
        except (OSError, ValueError):
            return True
