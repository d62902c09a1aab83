"""city/safe_fetch.py against a real HTTP server on loopback: what it fetches, what it refuses and why.

Loopback is refused like any private address unless CITY_FETCH_ALLOWED_NETWORKS allows it, so the
fetches that must succeed allow 127.0.0.1/32; the refusals never connect (the network guard would
fail the test if one tried an address beyond loopback)."""

import asyncio
import gzip
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import override_settings

from city.safe_fetch import FetchFailed, FetchRefused, FetchTooLarge, allowed, fetch, resolve

LOOPBACK_ALLOWED = override_settings(CITY_FETCH_ALLOWED_NETWORKS=["127.0.0.1/32"])
LIMIT = 64 * 1024


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen_hosts: list[str] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        Handler.seen_hosts.append(self.headers.get("Host", ""))
        port = self.connection.getsockname()[1]
        if self.path == "/audio.wav":
            self._send(200, b"RIFF-audio", "audio/wav; charset=binary")
        elif self.path == "/hop":
            self._redirect("/audio.wav")
        elif self.path == "/to-metadata":
            self._redirect("http://169.254.169.254/latest/meta-data/")
        elif self.path == "/to-file":
            self._redirect("file:///etc/passwd")
        elif self.path == "/to-ipv6-loopback":
            self._redirect(f"http://[::1]:{port}/audio.wav")
        elif self.path.startswith("/loop"):
            self._redirect(f"/loop{len(self.path)}")
        elif self.path == "/declared-big":
            self._send(200, b"x" * (LIMIT + 1), "audio/wav")
        elif self.path == "/chunked-big":
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"y" * 8192
            try:
                for _ in range(LIMIT // len(chunk) + 4):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass  # the client stopped reading at the limit
        elif self.path in ("/gzip-if-asked", "/gzip-always"):
            # As a web server compressing what it serves whenever the client accepts it.
            asked = "gzip" in self.headers.get("Accept-Encoding", "")
            body = b"RIFF-audio"
            if asked or self.path == "/gzip-always":
                body = gzip.compress(body)
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            if asked or self.path == "/gzip-always":
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"z" * 10)
            self.wfile.flush()
            time.sleep(2)
        else:
            self._send(404, b"no", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that stops reading at a limit is what the tests do


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def run_fetch(url: str, **options: object) -> object:
    return asyncio.run(fetch(url, max_bytes=LIMIT, **options))  # type: ignore[arg-type]


def test_it_fetches_from_an_allowed_network_with_the_name_in_the_host_header(server: str) -> None:
    with LOOPBACK_ALLOWED:
        fetched = run_fetch(server + "/hop")
    assert fetched.data == b"RIFF-audio"  # type: ignore[attr-defined]
    assert fetched.content_type == "audio/wav"  # type: ignore[attr-defined]
    assert fetched.url == server + "/audio.wav"  # type: ignore[attr-defined]
    assert Handler.seen_hosts[-1] == server.removeprefix("http://")


def test_the_connection_goes_to_the_address_checked_not_to_a_second_lookup(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the name answers loopback (allowed here) once, then a private address. A second
    lookup by the HTTP client would connect to 10.0.0.1, which the network guard fails the test for."""
    port = int(server.rsplit(":", 1)[1])
    answers = iter(["127.0.0.1", "10.0.0.1", "10.0.0.1"])
    lookups: list[object] = []
    real = socket.getaddrinfo

    def rebinding(host: object, *args: object, **kwargs: object) -> object:
        if host in ("rebind.test", b"rebind.test"):
            lookups.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with LOOPBACK_ALLOWED:
        fetched = run_fetch(f"http://rebind.test:{port}/audio.wav")
    assert fetched.data == b"RIFF-audio"  # type: ignore[attr-defined]
    assert Handler.seen_hosts[-1] == f"rebind.test:{port}"
    assert len(lookups) == 1


def test_a_lookup_does_not_wait_for_the_loops_default_executor(server: str) -> None:
    """A user's name whose DNS hangs must not hold the threads City's own connections resolve on (nor
    wait for them): with the loop's default executor busy, the fetch still resolves and answers."""
    port = server.rsplit(":", 1)[1]
    release = threading.Event()

    async def fetch_while_the_default_executor_is_busy() -> object:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
        busy = loop.run_in_executor(None, release.wait, 5)
        try:
            return await fetch(f"http://localhost:{port}/audio.wav", max_bytes=LIMIT, timeout_seconds=1)
        finally:
            release.set()
            await busy

    with LOOPBACK_ALLOWED:
        fetched = asyncio.run(fetch_while_the_default_executor_is_busy())
    assert fetched.data == b"RIFF-audio"  # type: ignore[attr-defined]


def test_a_unicode_host_name_goes_on_the_wire_in_its_ascii_form(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    with LOOPBACK_ALLOWED:
        fetched = run_fetch(f"http://ｌｏｃａｌｈｏｓｔ:{port}/audio.wav")  # fullwidth letters: IDNA makes it "localhost"
    assert fetched.data == b"RIFF-audio"  # type: ignore[attr-defined]
    assert Handler.seen_hosts[-1] == f"localhost:{port}"
    with pytest.raises(FetchRefused, match="not a valid host name"):
        run_fetch("http://a..b/a.wav")


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/a.wav",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/a.wav",
        "http://[::ffff:127.0.0.1]/a.wav",
        "http://[::ffff:10.0.0.1]/a.wav",
        "http://[2002:a00:1::]/a.wav",  # 6to4 of 10.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/a.wav",  # NAT64 of 169.254.169.254
        "http://[fec0::1]/a.wav",  # IPv6 site-local
        "http://0.0.0.0/a.wav",
        "http://100.64.1.1/a.wav",
        "http://224.0.0.1/a.wav",
        "http://2130706433/a.wav",
        "http://0x7f000001/a.wav",
        "http://017700000001/a.wav",
        "http://127.1/a.wav",
        "http://localhost/a.wav",
    ],
)
def test_private_loopback_and_reserved_addresses_are_refused_in_every_spelling(url: str) -> None:
    with pytest.raises(FetchRefused) as refused:
        run_fetch(url)
    message = str(refused.value)
    assert "private, loopback, link-local or reserved" in message
    assert "127.0.0.1" not in message or "127.0.0.1" in url  # a resolved address is never shown


def test_allowing_loopback_allows_neither_its_ipv6_forms_nor_other_private_networks() -> None:
    with LOOPBACK_ALLOWED:
        for url in ("http://[::ffff:127.0.0.1]/", "http://10.0.0.1/", "http://127.0.0.2/"):
            with pytest.raises(FetchRefused):
                run_fetch(url)


def test_a_public_address_is_allowed_and_names_are_resolved_once() -> None:
    import ipaddress

    assert allowed(ipaddress.ip_address("93.184.215.14"))
    assert allowed(ipaddress.ip_address("2606:4700::1111"))
    assert not allowed(ipaddress.ip_address("fd00::1"))
    assert not allowed(ipaddress.ip_address("fe80::1"))
    addresses = asyncio.run(resolve("localhost", 80))
    assert addresses and all(a.is_loopback for a in addresses)


@pytest.mark.parametrize("url", ["ftp://example.com/a.wav", "file:///etc/passwd", "http:///a.wav", "http://user:pw@example.com/a.wav"])
def test_other_schemes_credentials_and_missing_hosts_are_refused(url: str) -> None:
    with pytest.raises(FetchRefused):
        run_fetch(url)


def test_a_redirect_to_a_private_address_is_checked_and_refused(server: str) -> None:
    with LOOPBACK_ALLOWED:
        with pytest.raises(FetchRefused):
            run_fetch(server + "/to-metadata")
        with pytest.raises(FetchRefused):
            run_fetch(server + "/to-ipv6-loopback")  # the same server, but not through the allowed network
        with pytest.raises(FetchRefused, match="http:// or https://"):
            run_fetch(server + "/to-file")  # a redirect's scheme is checked as the first URL's


def test_redirects_are_limited(server: str) -> None:
    with LOOPBACK_ALLOWED, pytest.raises(FetchRefused, match=r"redirects more than 2 times"):
        run_fetch(server + "/loop", max_redirects=2)


def test_a_body_over_the_limit_is_refused_declared_or_not(server: str) -> None:
    with LOOPBACK_ALLOWED:
        with pytest.raises(FetchTooLarge, match="65,536 bytes"):
            run_fetch(server + "/declared-big")
        with pytest.raises(FetchTooLarge):
            run_fetch(server + "/chunked-big")


def test_the_body_is_the_file_as_served_never_a_compressed_copy(server: str) -> None:
    with LOOPBACK_ALLOWED:
        assert run_fetch(server + "/gzip-if-asked").data == b"RIFF-audio"  # type: ignore[attr-defined]
        with pytest.raises(FetchFailed, match=r"compressed body \(gzip\)"):
            run_fetch(server + "/gzip-always")


def test_a_slow_server_runs_into_the_time_limit(server: str) -> None:
    started = time.monotonic()
    with LOOPBACK_ALLOWED, pytest.raises(FetchFailed, match=r"within 0\.3 seconds"):
        run_fetch(server + "/slow", timeout_seconds=0.3)
    assert time.monotonic() - started < 1.5


def test_failures_say_what_happened(server: str) -> None:
    with LOOPBACK_ALLOWED:
        with pytest.raises(FetchFailed, match="status 404"):
            run_fetch(server + "/missing")
        port = server.rsplit(":", 1)[1]
        with pytest.raises(FetchFailed, match="Could not connect"):
            run_fetch(f"http://127.0.0.1:{int(port) + 1 if port != '65535' else 1}/x")
