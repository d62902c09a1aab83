"""Bad requests to /v1/ under both servers City runs on, as real processes: the same answer in City's error shape.

Daphne (`manage.py serve`, city/daphne_server.py) and uvicorn (`make serve-prod`) each parse HTTP
themselves before City sees a request; Twisted, under Daphne, also parsed form bodies and answered a
multipart body it could not parse with a bare 400. Requests go over raw sockets, byte for byte.
"""

import socket

import orjson
from django.conf import settings
from django.test import TransactionTestCase

from city.livecity import LiveCity

MULTIPART = b'--XyZ\r\nContent-Disposition: form-data; name="name"\r\n\r\nAcme\r\n--XyZ--\r\n'


def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `request` as is; (status, headers with lower-case names, body) of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return int(status_line.split()[1]), headers, body


def dechunk(body: bytes) -> bytes:
    whole = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        whole, body = whole + body[:size], body[size + 2 :]
    return whole


def request(
    method: bytes, target: bytes, headers: tuple[tuple[bytes, bytes], ...] = (), body: bytes = b"", host: bytes = b"127.0.0.1"
) -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: " + host, b"Connection: close", b"Content-Length: %d" % len(body)]
    lines.extend(name + b": " + value for name, value in headers)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class ErrorShapeUnderBothServersTests(TransactionTestCase):
    cities: dict[str, LiveCity]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        servers = ("daphne", "uvicorn")
        cls.cities = dict(zip(servers, LiveCity.many(*({"server": server} for server in servers)), strict=True))

    @classmethod
    def tearDownClass(cls) -> None:
        for city in cls.cities.values():
            city.stop()
        super().tearDownClass()

    def assertErrorShape(self, server: str, raw: bytes, status: int, code: str) -> dict:
        got_status, headers, body = exchange(self.cities[server].port, raw)
        self.assertEqual((got_status, headers.get("content-type")), (status, "application/json"), body[:300])
        error = orjson.loads(body)["error"]
        self.assertEqual(set(error) - {"details"}, {"message", "type", "code", "param"})
        self.assertEqual(error["code"], code)
        return error

    def test_form_bodies_are_415_under_both_servers(self) -> None:
        admin = (b"Authorization", b"Bearer " + settings.ADMIN_SECRET_KEY.encode())
        bodies = {
            "multipart": (b"multipart/form-data; boundary=XyZ", MULTIPART),
            "multipart without a boundary": (b"multipart/form-data", MULTIPART),
            "multipart with a boundary the body lacks": (b"multipart/form-data; boundary=abc", b"not multipart at all"),
            "multipart with a bad boundary": (b'multipart/form-data; boundary="', MULTIPART),
            "urlencoded": (b"application/x-www-form-urlencoded", b"name=Acme"),
        }
        for server in self.cities:
            for name, (content_type, body) in bodies.items():
                with self.subTest(server=server, body=name):
                    raw = request(b"POST", b"/v1/studios/create", (admin, (b"Content-Type", content_type)), body)
                    error = self.assertErrorShape(server, raw, 415, "unsupported_media_type")
                    self.assertIn("application/json", error["message"])

    def test_hosts_paths_and_headers_city_cannot_serve_are_answered_in_its_error_shape(self) -> None:
        for server in self.cities:
            with self.subTest(server=server, case="unknown host"):
                self.assertErrorShape(server, request(b"GET", b"/v1/services", host=b"evil.example"), 400, "bad_request")
            with self.subTest(server=server, case="host not ASCII"):
                self.assertErrorShape(server, request(b"GET", b"/v1/services", host=b"\xff\xfe"), 400, "bad_request")
            with self.subTest(server=server, case="path percent-encoding no UTF-8"):
                self.assertErrorShape(server, request(b"GET", b"/v1/%ff"), 404, "unknown_route")

    def test_header_values_that_are_not_utf8_are_read_as_latin1(self) -> None:
        for server in self.cities:
            with self.subTest(server=server):
                status, headers, _ = exchange(self.cities[server].port, request(b"GET", b"/v1/services", ((b"X-Thing", b"\xff\xfe"),)))
                self.assertEqual((status, headers["content-type"]), (200, "application/json"))

    def test_daphne_refusals_of_its_own_are_in_citys_error_shape(self) -> None:
        # uvicorn's HTTP parser refuses this header value itself (a plain 400, before any app); Daphne
        # lets its parser pass it and refuses it in its own code, which City words.
        raw = request(b"GET", b"/v1/services", ((b"X-Thing", b"a\x0bb"),))
        self.assertErrorShape("daphne", raw, 400, "invalid_header")

    def test_requests_that_are_not_http_are_refused_by_the_servers_parser_with_a_400(self) -> None:
        # Not HTTP/1.1 (raw non-ASCII bytes in the request line, a header name with parentheses): both
        # servers' parsers refuse them before any app runs; never a 5xx.
        for server in self.cities:
            for name, raw in (
                ("query not ASCII", request(b"GET", b"/v1/services?q=\xff")),
                ("path not ASCII", request(b"GET", b"/v1/\xff")),
                ("header name", request(b"GET", b"/v1/services", ((b"X(Thing)", b"a"),))),
            ):
                with self.subTest(server=server, case=name):
                    self.assertEqual(exchange(self.cities[server].port, raw)[0], 400)
