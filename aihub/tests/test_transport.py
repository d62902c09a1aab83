"""The pooled upstream client City gives adapters (pool.new_client: aiohttp under httpx, and the lean
path) under every adapter's contract tests, plus what is particular to it: the lean path is taken,
aiohttp's failures arrive as httpx's exceptions, a closed or cancelled call drops its upstream
connection at once, and both ways in share one keep-alive pool."""

import asyncio
import gzip
import os
import socket
import threading
import time
import unittest
from unittest import mock

import httpx

import aihub.tests.test_anthropic_adapter as anthropic_tests
import aihub.tests.test_gemini_adapter as gemini_tests
import aihub.tests.test_openai_compat_adapter as openai_tests
from aihub.adapters.base import Upstream
from aihub.adapters.openai_compat import OpenAICompatAdapter
from aihub.adapters.pool import UpstreamClient, client_for, close_all, new_client
from aihub.adapters.transport import LeanHTTP, new_session
from aihub.tests.upstream.openai_sim import OpenAISim
from aihub.tests.upstream.sim import Reply
from city.waiting import wait_until_async

JSON = [(b"Content-Type", b"application/json")]


class OpenAICompatOverLeanHTTP(openai_tests.OpenAICompatAdapterTests):
    """City's pooled client as the OpenAI-compatible adapter uses it: the lean path."""

    def make_client(self, base_url: str, timeout: httpx.Timeout) -> httpx.AsyncClient:
        return new_client(base_url, timeout)

    async def test_the_lean_path_is_taken(self) -> None:
        await self.adapter.chat(self.upstream, self.chat_body())
        self.assertEqual(self.sim.last_request.headers["user-agent"], "City")  # httpx would say python-httpx


class OpenAICompatOverHttpxAiohttp(openai_tests.OpenAICompatAdapterTests):
    """The same client without its lean path: httpx over httpx-aiohttp's transport."""

    def make_client(self, base_url: str, timeout: httpx.Timeout) -> httpx.AsyncClient:
        client = new_client(base_url, timeout)
        client.lean = None
        return client

    async def test_httpx_is_taken(self) -> None:
        await self.adapter.chat(self.upstream, self.chat_body())
        self.assertTrue(self.sim.last_request.headers["user-agent"].startswith("python-httpx/"))


class AnthropicOverThePooledClient(anthropic_tests.AnthropicAdapterTests):
    def make_client(self, base_url: str, timeout: httpx.Timeout) -> httpx.AsyncClient:
        return new_client(base_url, timeout)


class GeminiOverThePooledClient(gemini_tests.GeminiAdapterTests):
    def make_client(self, base_url: str, timeout: httpx.Timeout) -> httpx.AsyncClient:
        return new_client(base_url, timeout)


class RawServer:
    """A loopback server answering each request with `answer(request_bytes)` bytes (or a list of byte
    pieces), one connection at a time; counts the connections it accepted and closed."""

    def __init__(self, answer, close_after_each: bool = False) -> None:
        self.answer, self.close_after_each = answer, close_after_each
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.closed = 0
        self.received: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                while True:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        break
                    if not data:
                        break
                    self.received.append(data)
                    reply = self.answer(data)
                    # A list is sent piece by piece, 50 ms apart: what arrives in separate TCP segments.
                    for n, piece in enumerate(reply if isinstance(reply, list) else [reply]):
                        if n:
                            time.sleep(0.05)
                        conn.sendall(piece)
                    if self.close_after_each:
                        break
            self.closed += 1

    def stop(self) -> None:
        self.sock.close()


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


class PooledClientTests(unittest.IsolatedAsyncioTestCase):
    timeout = httpx.Timeout(2.0, read=0.5)

    def client(self, base_url: str) -> UpstreamClient:
        client = new_client(base_url, self.timeout)
        self.addAsyncCleanup(client.aclose)
        return client

    def lean(self, client: UpstreamClient) -> LeanHTTP:
        """The client's lean path, which it has unless a proxy is in the environment."""
        assert client.lean is not None
        return client.lean

    def serve(self, answer, **kwargs) -> RawServer:
        server = RawServer(answer, **kwargs)
        self.addCleanup(server.stop)
        return server

    def sim(self) -> OpenAISim:
        sim = OpenAISim()
        sim.start()
        self.addCleanup(sim.stop)
        return sim

    # --- keep-alive ------------------------------------------------------------------------------

    async def test_the_lean_path_and_httpx_share_one_keep_alive_connection(self) -> None:
        server = self.serve(lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        client = self.client(server.url)
        for _ in range(3):
            self.assertEqual((await self.lean(client).request(b"POST", "/x", JSON, b"{}")).content, b"ok")
            self.assertEqual((await client.post(server.url + "/x", content=b"{}")).text, "ok")
        self.assertEqual(server.connections, 1)

    async def test_a_stream_read_to_the_end_gives_its_connection_back(self) -> None:
        server = self.serve(lambda _: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n")
        client = self.client(server.url)
        for _ in range(3):
            response = await self.lean(client).open(b"POST", "/x", JSON, b"{}")
            self.assertEqual(b"".join([piece async for piece in response.aiter_bytes()]), b"Hello, world")
            await response.aclose()
        self.assertEqual(server.connections, 1)

    async def test_finished_streams_give_their_connection_back(self) -> None:
        """After `data: [DONE]` the adapter reads on to the body's end, so the next stream reuses the
        connection (against a real provider: no new TLS handshake per stream)."""
        events = b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
        events += b"data: [DONE]\n\n"
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        # The body's terminating chunk comes in a later segment than [DONE], as it often does from a real provider.
        server = self.serve(lambda _: [head + b"%x\r\n%s\r\n" % (len(events), events), b"0\r\n\r\n"])
        adapter = OpenAICompatAdapter(self.client(server.url))
        upstream = Upstream(provider="test", adapter="openai", model="m", base_url=server.url, api_key="sk-test")
        for _ in range(3):
            chunks = [chunk async for chunk in adapter.chat_stream(upstream, {"model": "m", "messages": [], "stream": True})]
            self.assertEqual(chunks[0]["choices"][0]["delta"]["content"], "Hi")
        self.assertEqual(server.connections, 1)

    async def test_a_connection_the_server_closed_is_not_reused(self) -> None:
        server = self.serve(lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close_after_each=True)
        client = self.client(server.url)
        for _ in range(3):
            self.assertEqual((await self.lean(client).request(b"POST", "/x", JSON, b"{}")).content, b"ok")
            await wait_until_async(lambda: server.closed == server.connections, message="the server closed the connection")
            # On loopback its FIN is in our socket by now: a turn of the loop reads it (one sufficed in 30 of 30; two for margin).
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        self.assertEqual(server.connections, 3)

    async def test_compressed_answers_are_decoded_both_ways(self) -> None:
        packed = gzip.compress(b'{"ok": true}')
        server = self.serve(lambda _: b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(packed), packed))
        client = self.client(server.url)
        self.assertEqual((await self.lean(client).request(b"POST", "/x", JSON, b"{}")).content, b'{"ok": true}')
        self.assertEqual((await client.get(server.url)).json(), {"ok": True})

    async def test_the_lean_path_asks_for_no_compression(self) -> None:
        sim = self.sim()
        await self.lean(self.client(sim.url)).request(b"POST", "/v1/chat/completions", JSON, b'{"model": "m", "messages": []}')
        self.assertNotIn("accept-encoding", sim.last_request.headers)
        self.assertEqual(sim.last_request.json["model"], "m")

    async def test_a_proxy_in_the_environment_is_used(self) -> None:
        proxy = self.serve(lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        with mock.patch.dict(os.environ, {"HTTP_PROXY": proxy.url, "NO_PROXY": ""}):
            client = self.client("http://upstream.example/v1")
        self.assertIsNone(client.lean)  # httpx's own transport, which speaks to proxies
        self.assertEqual((await client.post("http://upstream.example/v1/chat/completions", content=b"{}")).text, "ok")
        self.assertTrue(proxy.received[0].startswith(b"POST http://upstream.example/v1/chat/completions HTTP/1.1"))

    # --- failures arrive as httpx's exceptions ---------------------------------------------------

    async def test_an_unreachable_upstream_is_a_connect_error(self) -> None:
        client = self.client(closed_port())
        with self.assertRaises(httpx.ConnectError):
            await self.lean(client).request(b"POST", "/x", JSON, b"{}")
        with self.assertRaises(httpx.ConnectError):
            await client.post(closed_port() + "/x", content=b"{}")

    async def test_an_upstream_silent_past_the_read_timeout_is_a_read_timeout(self) -> None:
        sim = self.sim()
        sim.stall_seconds = 2.0
        with self.assertRaises(httpx.ReadTimeout):
            await self.lean(self.client(sim.url)).request(b"POST", "/v1/chat/completions", JSON, b"{}")

    async def test_a_body_cut_short_is_a_protocol_error(self) -> None:
        server = self.serve(lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", close_after_each=True)
        with self.assertRaises(httpx.RemoteProtocolError):
            await self.lean(self.client(server.url)).request(b"POST", "/x", JSON, b"{}")

    async def test_a_stream_broken_midway_is_a_protocol_error(self) -> None:
        sim = self.sim()
        sim.handler = lambda request: Reply.sse(f"data: {i}\n\n" for i in range(10))
        sim.fail_after_chunks = 2
        response = await self.lean(self.client(sim.url)).open(b"POST", "/v1/chat/completions", JSON, b"{}")
        with self.assertRaises(httpx.RemoteProtocolError):
            async for _ in response.aiter_bytes():
                pass
        await response.aclose()

    async def test_a_server_that_hangs_up_without_answering_is_a_protocol_error(self) -> None:
        server = self.serve(lambda _: b"", close_after_each=True)
        with self.assertRaises(httpx.RemoteProtocolError):
            await self.lean(self.client(server.url)).request(b"POST", "/x", JSON, b"{}")

    async def test_an_answer_that_is_not_http_is_a_protocol_error(self) -> None:
        server = self.serve(lambda _: b"SSH-2.0-OpenSSH_9.6\r\n\r\n", close_after_each=True)
        with self.assertRaises(httpx.RemoteProtocolError):
            await self.lean(self.client(server.url)).request(b"POST", "/x", JSON, b"{}")

    async def test_a_header_that_would_inject_another_is_refused_unsent(self) -> None:
        sim = self.sim()
        client = self.client(sim.url)
        with self.assertRaises(httpx.LocalProtocolError):
            await self.lean(client).request(b"POST", "/v1/chat/completions", [(b"Authorization", b"Bearer k\r\nX-Evil: 1")], b"{}")
        with self.assertRaises(httpx.LocalProtocolError):
            await client.post(sim.url + "/v1/chat/completions", content=b"{}", headers={"Authorization": "Bearer k\r\nX-Evil: 1"})
        self.assertEqual(sim.requests, [])

    async def test_no_free_connection_within_the_connect_timeout_is_a_connect_timeout(self) -> None:
        sim = self.sim()
        sim.handler = lambda request: Reply.sse(f"data: {i}\n\n" for i in range(20))
        sim.chunk_delay_seconds = 0.1
        session = new_session(max_connections=1, keepalive_expiry_seconds=30.0)
        self.addAsyncCleanup(session.close)
        lean = LeanHTTP(session, sim.url, httpx.Timeout(0.2, read=2.0))
        busy = await lean.open(b"POST", "/v1/chat/completions", JSON, b"{}")  # holds the only connection
        with self.assertRaises(httpx.ConnectTimeout):
            await lean.request(b"POST", "/v1/chat/completions", JSON, b"{}")
        await busy.aclose()

    # --- leaving early ---------------------------------------------------------------------------

    async def test_closing_a_lean_stream_early_drops_the_connection(self) -> None:
        sim = self.sim()
        sim.handler = lambda request: Reply.sse(f"data: {i}\n\n" for i in range(50))
        sim.chunk_delay_seconds = 0.1
        response = await self.lean(self.client(sim.url)).open(b"POST", "/v1/chat/completions", JSON, b"{}")
        async for _ in response.aiter_bytes():
            break
        await response.aclose()
        self.assertTrue(sim.wait_for_cancellation(2.0), "the simulator did not see the client leave")
        self.assertLess(sim.cancellations[0].chunks_sent, 5)

    async def test_closing_an_httpx_stream_early_drops_the_connection(self) -> None:
        sim = self.sim()
        sim.handler = lambda request: Reply.sse(f"data: {i}\n\n" for i in range(50))
        sim.chunk_delay_seconds = 0.1
        async with self.client(sim.url).stream("POST", sim.url + "/v1/chat/completions", json={"model": "m"}) as response:
            async for _ in response.aiter_bytes():
                break
        self.assertTrue(sim.wait_for_cancellation(2.0), "the simulator did not see the client leave")

    async def test_a_call_cancelled_before_the_answer_drops_the_connection(self) -> None:
        sim = self.sim()
        sim.latency_seconds = 2.0
        call = asyncio.create_task(self.lean(self.client(sim.url)).request(b"POST", "/v1/chat/completions", JSON, b"{}"))
        self.assertTrue(await asyncio.to_thread(sim.wait_for_requests, 1, 2.0))
        call.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await call
        self.assertTrue(await asyncio.to_thread(sim.wait_for_cancellation, 2.0), "the simulator did not see the client leave")


class PoolTests(unittest.IsolatedAsyncioTestCase):
    async def test_one_client_per_base_url_and_loop(self) -> None:
        first = client_for("http://127.0.0.1:9/v1")
        self.assertIs(client_for("http://127.0.0.1:9/v1"), first)
        self.assertIsNot(client_for("http://127.0.0.1:9/other"), first)

        other_loop = await asyncio.to_thread(asyncio.run, self._client_in_a_new_loop())
        self.assertIsNot(other_loop, first)

    async def _client_in_a_new_loop(self) -> httpx.AsyncClient:
        client = client_for("http://127.0.0.1:9/v1")
        await client.aclose()
        return client

    async def asyncTearDown(self) -> None:
        await close_all()
