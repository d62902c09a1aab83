"""The ASGI entry (city/asgi.py) as servers call it: /v1/ on City's API app, the rest on Django's full stack.

Django's test client runs settings.MIDDLEWARE, not city.asgi, so these requests go through the
ASGI application itself (httpx's ASGI transport), as Daphne and uvicorn call it.
"""

import asyncio
import json
import threading
import traceback
from collections.abc import MutableMapping
from typing import Any
from unittest import mock

import httpx
from django.conf import settings
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.db import connection
from django.db.backends.signals import connection_created
from django.test import SimpleTestCase, TransactionTestCase

from city.apiapp import ApiApp
from city.asgi import api_app, application

HOST = "http://127.0.0.1"


async def call(method: str, path: str, **kwargs) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url=HOST) as client:
        return await client.request(method, path, **kwargs)


class ApiStackTests(SimpleTestCase):
    def assertJsonError(self, response: httpx.Response, status: int, code: str) -> dict:
        self.assertEqual(response.status_code, status, response.text[:300])
        self.assertEqual(response.headers["content-type"], "application/json")
        error = response.json()["error"]
        self.assertEqual(set(error), {"message", "type", "code", "param"})
        self.assertEqual(error["code"], code)
        return error

    async def test_api_answers_keep_the_security_headers(self) -> None:
        response = await call("GET", "/v1/services")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.headers["x-frame-options"], "DENY")
        self.assertEqual(response.headers["x-content-type-options"], "nosniff")
        self.assertEqual(response.headers["referrer-policy"], "same-origin")
        self.assertEqual(response.headers["cross-origin-opener-policy"], "same-origin")

    async def test_api_answers_set_no_cookie(self) -> None:
        response = await call("GET", "/v1/services")
        self.assertNotIn("set-cookie", response.headers)
        self.assertNotIn("Cookie", response.headers.get("vary", ""))

    async def test_a_post_to_a_get_route_is_a_json_405_not_a_csrf_page(self) -> None:
        self.assertJsonError(await call("POST", "/v1/services"), 405, "method_not_allowed")

    async def test_unknown_routes_are_json_404s_on_every_method(self) -> None:
        for method, path, code in (
            ("POST", "/v1/nope/x", "unknown_service"),
            ("DELETE", "/v1/studios/nope", "unknown_action"),
            ("GET", "/v1", "unknown_route"),
            ("POST", "/v1/", "unknown_route"),
            ("GET", "/v1/a%0Ab", "unknown_route"),  # a newline: no /v1 pattern matches (Resolver404)
        ):
            self.assertJsonError(await call(method, path), 404, code)

    async def test_an_unknown_host_is_a_json_400(self) -> None:
        self.assertJsonError(await call("GET", "/v1/services", headers={"Host": "evil.example"}), 400, "bad_request")

    async def test_a_body_over_the_limit_is_413_before_it_is_read(self) -> None:
        body = b'{"name": "' + b"x" * settings.CITY_MAX_BODY_BYTES + b'"}'
        response = await call("POST", "/v1/studios/create", content=body, headers={"Content-Type": "application/json"})
        self.assertJsonError(response, 413, "body_too_large")

    async def test_https_settings_apply_to_the_api_as_to_the_browser_pages(self) -> None:
        # SecurityMiddleware reads its settings when built: a new app under the overridden settings.
        with self.settings(SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=3600, SECURE_HSTS_INCLUDE_SUBDOMAINS=True):
            app = ApiApp(sync_threads=1)
        for base in ("http://127.0.0.1", "https://127.0.0.1"):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base) as client:
                response = await client.get("/v1/services?x=1")
            if base.startswith("http:"):
                self.assertEqual((response.status_code, response.headers["location"]), (301, "https://127.0.0.1/v1/services?x=1"))
            else:
                self.assertEqual(response.status_code, 200)
                self.assertEqual(response.headers["strict-transport-security"], "max-age=3600; includeSubDomains")
            self.assertEqual(response.headers["x-frame-options"], "DENY")

    async def test_a_query_string_that_is_not_utf8_is_a_json_400(self) -> None:
        # Daphne and uvicorn refuse raw non-ASCII bytes themselves; another server may pass them on.
        messages = [{"type": "http.request", "body": b"", "more_body": False}]
        sent: list[dict] = []

        async def receive() -> dict:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(dict(message))

        scope = {"type": "http", "method": "GET", "path": "/v1/services", "query_string": b"q=\xff", "headers": [(b"host", b"127.0.0.1")]}
        await application(scope, receive, send)
        self.assertEqual(sent[0]["status"], 400)
        self.assertEqual({name.lower(): value for name, value in sent[0]["headers"]}[b"content-type"], b"application/json")
        body = b"".join(message.get("body", b"") for message in sent[1:])
        self.assertEqual(json.loads(body)["error"]["code"], "invalid_query_string")

    async def test_the_api_sends_no_request_signals_and_the_browser_pages_do(self) -> None:
        # Documented in city/apiapp.py: each send would cost a thread hop; the DB hygiene they carry
        # runs on the pool threads themselves (SyncThreadTests).
        seen: list[str] = []

        def started(sender, scope=None, **kwargs) -> None:
            seen.append(f"started {scope['path']}")

        def finished(sender, **kwargs) -> None:
            seen.append("finished")

        signals.request_started.connect(started)
        signals.request_finished.connect(finished)
        try:
            self.assertEqual((await call("GET", "/v1/services")).status_code, 200)
            self.assertEqual(seen, [])
            self.assertEqual((await call("GET", "/admin/login/")).status_code, 200)
        finally:
            signals.request_started.disconnect(started)
            signals.request_finished.disconnect(finished)
        self.assertEqual(seen, ["started /admin/login/", "finished"])


class BrowserStackTests(SimpleTestCase):
    async def test_admin_pages_keep_csrf_and_the_csrf_cookie(self) -> None:
        page = await call("GET", "/admin/login/")
        self.assertEqual(page.status_code, 200)
        self.assertIn("csrftoken", page.cookies)
        refused = await call("POST", "/admin/login/", data={"username": "a", "password": "b"})
        self.assertEqual(refused.status_code, 403)


def threads_started_per_request(app, requests: int) -> list[str]:
    """Threads the event loop's thread starts while `app` answers `requests` queries, after a warm-up.

    The requests run on a loop of their own in a plain thread, as under a server: Django's async
    tests run inside async_to_sync, where sync calls would go to the test's own thread instead.
    """
    started: list[str] = []

    async def unknown_token_request(index: int) -> None:  # each costs one query in a sync thread
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=HOST) as client:
            response = await client.get("/v1/studios/me", headers={"Authorization": f"Bearer ub_{index:03d}{'x' * 40}"})
        assert response.status_code == 401, response.text[:300]

    async def serve() -> None:
        for index in range(len(getattr(app, "threads", api_app.threads))):  # every pool thread has started once
            await unknown_token_request(index)
        loop_thread = threading.current_thread()
        real_start = threading.Thread.start

        def counting_start(thread: threading.Thread) -> None:
            # Other tests' leftover loops may start threads of their own: only this loop's count.
            if threading.current_thread() is loop_thread:
                started.append(f"{thread.name}, started by:\n{''.join(traceback.format_stack(limit=15))}")
            real_start(thread)

        with mock.patch.object(threading.Thread, "start", counting_start):
            for index in range(100, 100 + requests):
                await unknown_token_request(index)

    failures: list[BaseException] = []
    runner = threading.Thread(target=lambda: _run_catching(serve, failures))
    runner.start()
    runner.join(timeout=60)
    if failures:
        raise failures[0]
    return started


def _run_catching(coroutine_function, failures: list[BaseException]) -> None:
    try:
        asyncio.run(coroutine_function())
    except BaseException as exc:
        failures.append(exc)


class SyncThreadTests(TransactionTestCase):
    def tearDown(self) -> None:
        api_app.close_connections()  # the pool threads outlive the test; their connections must not
        super().tearDown()

    def test_requests_that_query_reuse_the_pool_threads(self) -> None:
        started = threads_started_per_request(api_app, 20)
        self.assertEqual(started, [], "\n".join(started))

    def test_the_stock_handler_starts_a_thread_per_request(self) -> None:
        # The yardstick: what the test above would see without City's API app.
        self.assertGreaterEqual(len(threads_started_per_request(ASGIHandler(), 20)), 20)

    def test_each_request_runs_djangos_connection_hygiene_on_its_thread(self) -> None:
        # With CONN_MAX_AGE 0 a connection is obsolete once its request ends: close_old_connections,
        # run by the pool thread before the next request's first query, closes it, so each request
        # opens a connection of its own. Without the hygiene, a thread would keep its first one.
        app = ApiApp(sync_threads=2)
        opened: list[str] = []

        def count(sender, connection, **kwargs) -> None:
            opened.append(threading.current_thread().name)

        settings_dict = connection.settings_dict
        max_age = settings_dict["CONN_MAX_AGE"]
        settings_dict["CONN_MAX_AGE"] = 0
        connection_created.connect(count)
        try:
            threads_started_per_request(app, 6)
        finally:
            connection_created.disconnect(count)
            settings_dict["CONN_MAX_AGE"] = max_age
            app.close_connections()
        self.assertEqual(len(opened), 2 + 6, opened)  # the warm-up's request per thread, then one per request
        self.assertTrue(all(name.startswith("city-sync") for name in opened), opened)
