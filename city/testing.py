"""Shared test helpers: requests through City's real routes, and each route's error shape checked field
by field (City's, OpenAI's, on most routes; the route's own where its action declares `error_response`).

Generic on purpose (city/ imports no app): the cast of studios and tokens is studios.testing.CityTestCase.
"""

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import orjson
from django.conf import settings
from django.http import HttpResponse
from django.test import TestCase, TransactionTestCase

from city.errors import ApiError
from city.registry import registry

if TYPE_CHECKING:
    # The mixin is only ever mixed into a TestCase or a TransactionTestCase: type-check it as one.
    _MixinBase = TransactionTestCase
else:
    _MixinBase = object


class ApiTestMixin(_MixinBase):
    if TYPE_CHECKING:
        # TestCase has it; LiveCityTestCase (a TransactionTestCase) supplies its own.
        @classmethod
        def captureOnCommitCallbacks(
            cls, *, using: str = "default", execute: bool = False
        ) -> AbstractContextManager[list[Callable[[], Any]]]: ...

    admin_key = property(lambda self: settings.ADMIN_SECRET_KEY)

    def call(
        self,
        method: str,
        route: str,
        data: Any = None,
        *,
        token: str | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ):
        """One request through the real routes; on-commit hooks run as they would in production."""
        extra: dict[str, Any] = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}
        if token is not None:
            extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        with self.captureOnCommitCallbacks(execute=True):
            if method == "GET":
                return self.client.get(route, data or {}, **extra)
            body = raw if raw is not None else (b"" if data is None else orjson.dumps(data))
            return self.client.generic(method, route, body, content_type=content_type, **extra)

    def get(self, route: str, params: dict[str, Any] | None = None, *, token: str | None = None, **kw):
        return self.call("GET", route, params, token=token, **kw)

    def post(self, route: str, data: Any = None, *, token: str | None = None, **kw):
        return self.call("POST", route, data, token=token, **kw)

    def admin_get(self, route: str, params: dict[str, Any] | None = None, **kw):
        return self.get(route, params, token=self.admin_key, **kw)

    def admin_post(self, route: str, data: Any = None, **kw):
        return self.post(route, data, token=self.admin_key, **kw)

    def assertOk(self, response) -> dict[str, Any]:
        self.assertEqual(response.status_code, 200, response.content[:500])
        self.assertEqual(response["Content-Type"], "application/json")
        return response.json()

    def assertError(self, response, status: int, type: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
        """The OpenAI error shape, field by field; on a route with its own shape (Anthropic's), what
        that route renders for the same error (its message taken from the answer)."""
        self.assertEqual(response.status_code, status, response.content[:500])
        self.assertEqual(response["Content-Type"], "application/json")
        request = getattr(response, "request", None)  # the test client's WSGI-style environ
        render = route_error_response(request.get("PATH_INFO", "") if isinstance(request, dict) else "")
        if render is not None:
            return assert_route_error(self, response.json(), render, status, type, code, param)
        error = response.json()["error"]
        self.assertEqual(set(error) - {"details"}, {"message", "type", "code", "param"})
        self.assertEqual(error["type"], type)
        self.assertIsInstance(error["message"], str)
        self.assertGreater(len(error["message"]), 10)
        if code is not None:
            self.assertEqual(error["code"], code)
        if param is not None:
            self.assertEqual(error["param"], param)
        self.assertNotIn("Traceback", error["message"])
        return error


def route_error_response(path: str) -> Callable[[ApiError], HttpResponse] | None:
    """The error renderer of the action at `path` (`/v1/messages`, …) when it has its own, else None."""
    if not path.startswith("/v1/"):
        return None
    action = registry().resolve(path.removeprefix("/v1/")).action
    return action.error_response if action is not None else None


def assert_route_error(
    test: Any,
    body: Any,
    render: Callable[[ApiError], HttpResponse],
    status: int,
    type: str,
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    """`body` is exactly what `render` makes of the error (status, type, code, param) with the
    answer's own message, which must read as one. Returns the body's `error`."""
    test.assertIsInstance(body, dict, body)
    error = body.get("error")
    test.assertIsInstance(error, dict, body)
    message = error.get("message")
    test.assertIsInstance(message, str, body)
    test.assertGreater(len(message), 10, body)
    test.assertNotIn("Traceback", message)
    expected = orjson.loads(render(ApiError(status, message, code=code, param=param, type=type)).content)
    test.assertEqual(body, expected)
    return error


class MovableClock:
    """A clock the test moves (`now`, seconds): for the caches' `clock` attributes."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ApiTestCase(ApiTestMixin, TestCase):
    """A TestCase that calls City's routes; nothing in the database beforehand."""
