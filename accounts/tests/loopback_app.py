"""A native app's side of the RFC 8252 loopback sign-in, for tests: a real HTTP listener on 127.0.0.1
(a free port) that receives City's redirect, and the app's PKCE pair."""

from __future__ import annotations

import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from accounts.tests.oauth_simulator import s256


class LoopbackListener:
    """Serves http://127.0.0.1:{port}/callback; `received` holds the query of each request, in order."""

    def __init__(self, path: str = "/callback") -> None:
        self.path = path
        self.received: list[dict[str, str]] = []
        self.arrived = threading.Event()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != listener.path:
                    self.send_error(404)
                    return
                listener.received.append({k: v[0] for k, v in parse_qs(parts.query).items()})
                listener.arrived.set()
                body = b"<p>You can close this window and return to the app.</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"

    def start(self) -> LoopbackListener:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def wait(self, timeout: float = 15.0) -> dict[str, str]:
        """The first redirect received (waits for it up to `timeout` seconds)."""
        if not self.arrived.wait(timeout):
            raise AssertionError(f"no redirect reached {self.redirect_uri} within {timeout} s")
        return self.received[0]


class Pkce:
    def __init__(self) -> None:
        self.verifier = secrets.token_urlsafe(48)  # 64 characters of [A-Za-z0-9_-]
        self.challenge = s256(self.verifier)
