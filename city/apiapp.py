"""The ASGI app behind `/v1/`, on public Django and asgiref APIs only, with sync calls on reused threads.

Django's stock ASGI handler costs a bearer-token API three things per request (bench/README.md):
each `MiddlewareMixin` middleware runs its hooks through `sync_to_async` (a thread hop per hook);
each request starts, and at its end joins, a thread of its own for its sync calls (and that thread
opens a database connection of its own); and the `request_started` / `request_finished` signals
hop to that thread only to run Django's database hygiene there. `/v1/` reads no session, cookie,
CSRF token, user or message, so `ApiApp` does only what the API needs:

1. reads the body (BodyLimitMiddleware has already refused one over CITY_MAX_BODY_BYTES) and builds
   an `ASGIRequest`; checks the host against ALLOWED_HOSTS (`request.get_host()`), answering 400 in
   City's error shape;
2. runs the hooks of `SecurityMiddleware` and `XFrameOptionsMiddleware` inline (pure header work:
   X-Content-Type-Options, Referrer-Policy, Cross-Origin-Opener-Policy, X-Frame-Options, and HSTS
   and the SSL redirect when configured), so /v1/ answers carry what the browser pages carry;
3. resolves the path with City's URLconf (`django.urls.resolve`: the routes Django's test client
   also takes) and awaits the view, in an asgiref `ThreadSensitiveContext` whose executor is one
   of `sync_threads` long-lived threads (round robin): one request's sync calls run on one thread,
   one at a time, and threads, and so database connections, are reused across requests;
4. sends the response (streams from their async iterator) while it listens for the client leaving,
   which cancels the view (an AI stream cancels its upstream request). `/v1/` views answer an
   `HttpResponse` or a `StreamingHttpResponse` over an async generator, which `aclosing` closes;
   `response.close()` is not called, since it would send `request_finished` (below).

Signals: `/v1/` sends neither `request_started` nor `request_finished`. Their only receivers in
City are Django's own (database hygiene, cache and URLconf resets), and sending them the public
way (`Signal.asend`, which runs sync receivers through `sync_to_async`) costs two thread hops per
request: bench/handler.py measured 590 µs of CPU per request with them, 125 µs without. Skipping
them only while no one else listens would need the signal's private receiver list (`has_listeners()`
is always true: Django's own receivers listen). The hygiene they exist for runs
on the thread that owns the connections: each pool thread runs `reset_queries()` and
`close_old_connections()` before its first job of every request (`RequestThread`). Code that must
see every API request belongs in the dispatcher (city/dispatch.py), not in a receiver of these
signals; the browser pages (Django's own handler) still send them.
"""

import asyncio
import io
import itertools
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, MutableMapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import aclosing
from typing import Any, cast

from asgiref.sync import ThreadSensitiveContext
from django.core.exceptions import DisallowedHost, PermissionDenied, SuspiciousOperation
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections, connections, reset_queries
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import resolve, set_script_prefix

from city import server_tuning
from city.errors import error_response, handler400, handler403, handler404, handler500

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("city.apiapp")
host_log = logging.getLogger("django.security.DisallowedHost")  # where Django's own stack logs it

# Body messages are at most this large (as Django's handler chunks them).
CHUNK_BYTES = 2**16


def _thread_hygiene() -> None:
    # What request_started / request_finished do on a stock Django thread, for this thread's connections.
    reset_queries()
    close_old_connections()


class RequestThread(ThreadPoolExecutor):
    """One long-lived thread for thread-sensitive calls; runs Django's per-request DB hygiene lazily.

    `request_started()` is called on the event loop when a request is given this thread; the next
    job submitted (from the event loop) first resets this thread's query log and closes its
    obsolete or broken connections, with no thread hop of its own.
    """

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="city-sync")
        self._hygiene_due = True

    def request_started(self) -> None:
        self._hygiene_due = True

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        if self._hygiene_due:
            self._hygiene_due = False
            return super().submit(_after_hygiene, fn, args, kwargs)
        return super().submit(fn, *args, **kwargs)


def _after_hygiene(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    _thread_hygiene()
    return fn(*args, **kwargs)


def _never_called(request: HttpRequest) -> HttpResponseBase:  # pragma: no cover - the hooks are called directly
    raise AssertionError("ApiApp calls the middleware's hooks, not the middleware")


class ApiApp:
    """Serves `/v1/` with `sync_threads` reused threads per process for the views' sync calls."""

    def __init__(self, sync_threads: int) -> None:
        self.threads = [RequestThread() for _ in range(max(1, sync_threads))]
        self._next_thread = itertools.cycle(self.threads)
        self.security = SecurityMiddleware(_never_called)
        self.frame_options = XFrameOptionsMiddleware(_never_called)
        self.served = 0

    def close_connections(self) -> None:
        """Close every pool thread's database connections (each on its own thread, as Django requires)."""
        for thread in self.threads:
            thread.submit(connections.close_all).result()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"City's API app serves HTTP only, not {scope['type']}.")
        body = await read_body(receive)
        if body is None:
            return  # the client left before its body arrived
        request = build_request(scope, body)
        if isinstance(request, HttpResponseBase):
            await send_response(request, send)
            return
        response = self.refusal(request)
        if response is not None:
            await send_response(response, send)
            return
        thread = next(self._next_thread)
        thread.request_started()
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self.respond(request, receive, send)
        finally:
            request.close()
            self.served += 1
            if self.served == server_tuning.WARM_REQUESTS:
                server_tuning.freeze_warm_heap()  # once, after the response went out

    def refusal(self, request: HttpRequest) -> HttpResponseBase | None:
        """The answer to a request City does not serve (unknown host), or the SSL redirect when configured."""
        try:
            request.get_host()
        except DisallowedHost as exc:
            host_log.warning("%s", exc)
            return handler400(request)
        redirect = self.security.process_request(request)
        return self.with_security_headers(request, redirect) if redirect is not None else None

    def with_security_headers(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        # django-stubs types these hooks for HttpResponse; Django's set headers on any response (streams too).
        response = self.security.process_response(request, response)  # type: ignore[arg-type]
        return self.frame_options.process_response(request, response)

    async def respond(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        """Produce and send the response; a client that leaves cancels both."""
        produce = asyncio.create_task(self.produce_and_send(request, send))
        listen = asyncio.create_task(wait_for_disconnect(receive))
        await asyncio.wait((produce, listen), return_when=asyncio.FIRST_COMPLETED)
        if not produce.done():  # the client left: cancel the view (and its upstream call)
            produce.cancel()
        listen.cancel()
        for task in (produce, listen):
            try:
                await task
            except (asyncio.CancelledError, OSError):  # OSError: a server that refuses sends after a disconnect
                pass

    async def produce_and_send(self, request: HttpRequest, send: Send) -> None:
        set_script_prefix(request.META["SCRIPT_NAME"] or "/")
        try:
            match = resolve(request.path_info)
            request.resolver_match = match
            response = await match.func(request, *match.args, **match.kwargs)
        except Http404:  # also a path no /v1 pattern matches, such as one with a newline
            response = handler404(request)
        except PermissionDenied:
            response = handler403(request)
        except SuspiciousOperation as exc:
            logging.getLogger(f"django.security.{exc.__class__.__name__}").warning("%s", exc)
            response = handler400(request)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = handler500(request)
        await send_response(self.with_security_headers(request, response), send)


async def read_body(receive: Receive) -> bytes | None:
    """The whole body, or None if the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def build_request(scope: Scope, body: bytes) -> HttpRequest | HttpResponseBase:
    """An ASGIRequest, or City's 400 for a request Django cannot decode."""
    try:
        return ASGIRequest(scope, io.BytesIO(body))
    except UnicodeDecodeError:  # the query string is not UTF-8
        return error_response(400, "The query string is not valid UTF-8; percent-encode its UTF-8 bytes.", code="invalid_query_string")


async def wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def send_response(response: HttpResponseBase, send: Send) -> None:
    headers = [(name.encode("ascii"), value.encode("latin1")) for name, value in response.items()]
    headers.extend((b"set-cookie", cookie.output(header="").encode("ascii").strip()) for cookie in response.cookies.values())
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    if isinstance(response, StreamingHttpResponse):
        # aclosing: a stream cut short (the client left) closes its generator, and so its upstream call.
        # StreamingHttpResponse.__aiter__ is an async generator (django-stubs says AsyncIterator).
        async with aclosing(cast(AsyncGenerator[bytes, None], aiter(response))) as parts:
            async for part in parts:
                await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    content = cast(HttpResponse, response).content  # Django's only other response class
    for start in range(0, max(len(content), 1), CHUNK_BYTES):
        end = start + CHUNK_BYTES
        await send({"type": "http.response.body", "body": content[start:end], "more_body": end < len(content)})
