"""Django's ASGI handler for `/v1/`, without the browser middleware and without thread hops per request.

Django's stock ASGI handler costs an async API three things per request (bench/README.md measures them):

1. each `MiddlewareMixin` middleware (sessions, CSRF, auth, messages, …) runs each of its hooks
   through `sync_to_async`: a hop to another thread and back, per hook;
2. `ASGIHandler.__call__` opens a fresh `ThreadSensitiveContext`, so each request starts (and at
   its end joins) a new thread, which opens a database connection of its own if it queries;
3. the `request_started` and `request_finished` signals hop to that thread too, only to run
   Django's database hygiene there (`close_old_connections`, `reset_queries`).

The `/v1/` API authenticates with bearer tokens: it reads no session, cookie, CSRF token, user or
message. So `ApiHandler`

1. keeps only the middleware whose hooks are pure header work (Host check, security headers,
   frame options) and runs them inline on the event loop;
2. gives each request one of a few long-lived threads (round robin) for its thread-sensitive
   calls. Django's contract still holds: one request's sync calls run on one thread, one at a time;
   threads, and so database connections, are reused across requests;
3. skips the two signals while their only receivers are Django's own hygiene, which has nothing
   to do on the event loop's thread, and has each pool thread run that hygiene itself before its
   first job after a request starts on it. Any other receiver connected to the signals makes the
   handler send them the stock way.
"""

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, cast

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.cache import close_caches
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import reset_urlconf
from django.core.handlers.exception import convert_exception_to_response
from django.db import close_old_connections, connections, reset_queries
from django.http import HttpRequest, HttpResponseBase
from django.urls import set_script_prefix
from django.utils.module_loading import import_string

# Middleware of settings.MIDDLEWARE kept on /v1/. Their hooks only read the request and set
# headers (no I/O), so they run inline. They answer exactly as before: Host validation (400),
# X-Content-Type-Options, Referrer-Policy, Cross-Origin-Opener-Policy, X-Frame-Options, and HSTS
# and SSL redirects when configured.
API_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)

# Django's own receivers of request_started / request_finished, which have nothing to do on the
# event loop's thread: the database ones look after that thread's connections (Django keeps them
# per thread; the loop's has none, and the pool threads run this hygiene themselves: RequestThread);
# close_caches closes nothing for City's backends (locmem, Redis); reset_urlconf resets a value
# that lives in the request's own context. While they are the only receivers, /v1/ skips sending.
LOOP_SAFE_RECEIVERS = {reset_queries, close_old_connections, close_caches, reset_urlconf}

GetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


def inline(middleware_class: type, get_response: GetResponse) -> GetResponse:
    """An async callable running a MiddlewareMixin's request and response hooks on the event loop."""
    middleware = middleware_class(get_response)
    for hook in ("process_view", "process_exception", "process_template_response"):
        if hasattr(middleware, hook):  # these need Django's full chain; none of API_MIDDLEWARE has them
            raise TypeError(f"{middleware_class.__name__} has {hook}; it cannot run inline on /v1/")
    process_request = getattr(middleware, "process_request", None)
    process_response = getattr(middleware, "process_response", None)

    async def run(request: HttpRequest) -> HttpResponseBase:
        response = process_request(request) if process_request else None
        if response is None:
            response = await get_response(request)
        if process_response:
            response = process_response(request, response)
        return response

    return run


def signal_is_loop_safe(signal: Any, sender: type) -> bool:
    sync_receivers, async_receivers = signal._live_receivers(sender)  # Django 5.2 (pinned)
    return not async_receivers and all(receiver in LOOP_SAFE_RECEIVERS for receiver in sync_receivers)


def closers_are_loop_safe(response: HttpResponseBase) -> bool:
    # Django adds the request's close(): it closes the body's buffer, which CITY_MAX_BODY_BYTES keeps
    # in memory (under FILE_UPLOAD_MAX_MEMORY_SIZE); any other closer (a file, a stream) gets a thread.
    closers = response._resource_closers  # type: ignore[attr-defined]  # Django 5.2 internal (pinned), not in django-stubs
    return all(isinstance(getattr(closer, "__self__", None), HttpRequest) for closer in closers)


def _thread_hygiene() -> None:
    # What request_started / request_finished do on a stock Django thread, for this thread's connections.
    reset_queries()
    close_old_connections()


class RequestThread(ThreadPoolExecutor):
    """One long-lived thread for thread-sensitive calls; runs Django's per-request DB hygiene lazily.

    `request_started()` is called on the event loop when a request is given this thread; the next
    job submitted (from the event loop) first closes this thread's obsolete or broken connections.
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


class ApiHandler(ASGIHandler):
    """Serves `/v1/` with `API_MIDDLEWARE` inline and `sync_threads` reused threads per process."""

    def __init__(self, sync_threads: int) -> None:
        self.threads = [RequestThread() for _ in range(max(1, sync_threads))]
        self._next_thread = itertools.cycle(self.threads)
        super().__init__()

    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler.load_middleware for an async stack, with API_MIDDLEWARE in place of settings.MIDDLEWARE.
        self._view_middleware: list[Callable[..., Any]] = []
        self._template_response_middleware: list[Callable[..., Any]] = []
        self._exception_middleware: list[Callable[..., Any]] = []
        # convert_exception_to_response keeps an async function async; its stub types both modes in one.
        get_response = self._get_response_async  # type: ignore[attr-defined]  # Django 5.2 internal (pinned), not in django-stubs
        handler = cast(GetResponse, convert_exception_to_response(get_response))
        for path in reversed(API_MIDDLEWARE):
            handler = cast(GetResponse, convert_exception_to_response(inline(import_string(path), handler)))
        self._middleware_chain = handler

    def close_connections(self) -> None:
        """Close every pool thread's database connections (each on its own thread, as Django requires)."""
        for thread in self.threads:
            thread.submit(connections.close_all).result()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"City's API handler serves HTTP only, not {scope['type']}.")
        thread = next(self._next_thread)
        thread.request_started()
        async with ThreadSensitiveContext(executor=thread):
            await self.handle(scope, receive, send)

    async def send_request_started(self, scope) -> None:
        # With only Django's own receivers, sending it on the event loop would do nothing (see
        # LOOP_SAFE_RECEIVERS); their work for the pool thread is RequestThread's.
        if not signal_is_loop_safe(signals.request_started, self.__class__):
            await signals.request_started.asend(sender=self.__class__, scope=scope)

    async def close_response(self, response: HttpResponseBase) -> None:
        if closers_are_loop_safe(response) and signal_is_loop_safe(signals.request_finished, self.__class__):
            # HttpResponseBase.close() without its request_finished, which would do nothing here.
            closers = response._resource_closers  # type: ignore[attr-defined]  # Django 5.2 internal (pinned), not in django-stubs
            for closer in closers:
                try:
                    closer()
                except Exception:  # noqa: S110 (as Django's close(): a closer's failure is not the client's)
                    pass
            closers.clear()
            response.closed = True
        else:
            await sync_to_async(response.close)()

    async def handle(self, scope, receive, send) -> None:
        """Django 5.2's ASGIHandler.handle, with the two signal hops replaced (marked CHANGED)."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        await self.send_request_started(scope)  # CHANGED: was signals.request_started.asend(…)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            assert error_response is not None  # create_request returns (None, response) or (request, None)
            body_file.close()
            await self.send_response(error_response, send)
            await self.close_response(error_response)  # CHANGED: was sync_to_async(error_response.close)()
            return

        async def process_request(request, send):
            response = await self.run_get_response(request)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client went away while the response was sent
            return response

        # Watch for a disconnect while the response is produced (streams are cancelled by it).
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request(request, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            await self.close_response(response)  # CHANGED: was sync_to_async(response.close)()
        body_file.close()
