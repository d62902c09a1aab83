"""Daphne as `manage.py serve` runs it: Daphne's own command line, with an access log that writes no
query-string values, and answers in City's error shape for requests Daphne refuses itself.

Query strings carry secrets on some routes (`/v1/accounts/oauth/result?flow_id=…` is a sign-in's pickup
secret, worth a user token until it is picked up; the OAuth callback carries the provider's code and
state), and an access log is read by more people, and kept longer, than the credentials it would hold.
Each entry keeps the path and the parameters' names: `GET /v1/accounts/oauth/result?flow_id=***`.

Daphne (on Twisted) answers some requests before City sees them, with an HTML page or nothing at
all. Twisted parses every POST form body itself (`application/x-www-form-urlencoded` and
`multipart/form-data`) into `request.args`, which Daphne never reads, and answers a multipart body it
cannot parse (no boundary, a bad one, a body that is not multipart) with a bare
`400 Bad Request` and no body; City's `CityWebRequest` turns that parsing off, so such a body
reaches City, which answers 415 (`unsupported_media_type`) as it does under uvicorn. Daphne's own
refusals (a path or query string that is not ASCII, a header name or value HTTP forbids, a timeout)
come in City's error shape instead of Daphne's HTML page. These seams are Daphne's and Twisted's
internals (`WebRequest`, `HTTPFactory`, `basic_error`, `parsePOSTFormSubmission`): requirements.txt
pins both, and city/tests/test_server_errors.py fails if they change under City.
"""

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server
from twisted.internet import defer

from city import background
from city.errors import TYPE_BY_STATUS, error_body

REDACTED = "***"
# Daphne's reasons for its own refusals, as City words them.
DAPHNE_REFUSALS = {
    "Invalid characters in path": ("The path is not ASCII; percent-encode it.", "invalid_path"),
    "Invalid query string": ("The query string is not ASCII; percent-encode it.", "invalid_query_string"),
    "Invalid header name": ("A header name holds a character HTTP does not allow in one.", "invalid_header"),
    "Invalid header value": ("A header value holds a character HTTP does not allow in one.", "invalid_header"),
}
CODE_BY_STATUS = {400: "bad_request", 500: "internal_error", 503: "timeout"}


def redact_query(uri: str) -> str:
    path, sep, query = uri.partition("?")
    if not sep:
        return uri
    names = [part.partition("=")[0] for part in query.split("&") if part]
    return f"{path}?" + "&".join(f"{name}={REDACTED}" for name in names)


class RedactedAccessLog:
    """Wraps Daphne's access logger: the same entries, with query values replaced by ***."""

    def __init__(self, log: Callable[[str, str, dict[str, Any]], None]) -> None:
        self.log = log

    def __call__(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        if isinstance(details.get("path"), str):
            details = {**details, "path": redact_query(details["path"])}
        self.log(protocol, action, details)


class CityWebRequest(WebRequest):
    """Daphne's request, without Twisted's form parsing and with City's error shape on Daphne's refusals."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)

    def basic_error(self, status: int, status_text: bytes, body: str) -> None:
        if self._response_started:
            # The app failed mid-body (a stream whose upstream broke): no error page can follow the
            # headers, and Daphne's would raise and leave the client waiting. Cutting the connection
            # before the last chunk tells the client the body is incomplete.
            self.channel.transport.abortConnection()
            return
        message, code = DAPHNE_REFUSALS.get(body, (f"{body}.", CODE_BY_STATUS.get(status)))
        content = orjson.dumps(error_body(message, TYPE_BY_STATUS.get(status, "api_error"), code=code))
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
        self.handle_reply({"type": "http.response.start", "status": status, "headers": headers})
        self.handle_reply({"type": "http.response.body", "body": content})


class CityHTTPFactory(HTTPFactory):
    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = CityWebRequest
        return protocol


class CityServer(Server):
    def __init__(self, *args: Any, action_logger: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, action_logger=RedactedAccessLog(action_logger) if action_logger else None, **kwargs)

    def kill_all_applications(self) -> defer.Deferred:
        """Daphne's step before its reactor stops (it cancels the requests still running), then the work
        requests left running (city/background.py): Daphne sends no ASGI lifespan to do it at."""
        killed = super().kill_all_applications()
        killed.addCallback(lambda _: defer.Deferred.fromFuture(asyncio.ensure_future(background.drain())))
        return killed

    # Server.run() builds Daphne's HTTPFactory and has no hook to name another: City's takes its place.
    @property
    def http_factory(self) -> HTTPFactory:
        return self._city_http_factory

    @http_factory.setter
    def http_factory(self, daphne_factory: HTTPFactory) -> None:
        self._city_http_factory = CityHTTPFactory(self)


class CityCommandLine(CommandLineInterface):
    server_class = CityServer


if __name__ == "__main__":
    CityCommandLine.entrypoint()
