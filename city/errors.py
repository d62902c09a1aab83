"""The one error shape of every non-2xx answer: {"error": {"message", "type", "code", "param"}}."""

from collections.abc import Callable
from typing import Any

import orjson
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


class ApiError(Exception):
    """Raised anywhere under a handler; the dispatcher answers it as an OpenAI-shaped error."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type or TYPE_BY_STATUS.get(status, "api_error")
        self.headers = headers or {}
        self.details = details

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, code=self.code, param=self.param, details=self.details)

    def response(self) -> HttpResponse:
        response = json_response(self.body(), status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        return response


def error_body(message: str, type: str, *, code: str | None = None, param: str | None = None, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": type, "code": code, "param": param}
    if details is not None:
        error["details"] = details
    return {"error": error}


def json_response(payload: Any, *, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(payload), status=status, content_type="application/json")


def error_response(status: int, message: str, *, code: str | None = None, param: str | None = None) -> HttpResponse:
    return ApiError(status, message, code=code, param=param).response()


# PostgreSQL's "try again" states: serialization_failure, deadlock_detected, lock_not_available.
RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03"}
# Seconds a client is told to wait after database_busy; writers hold locks for milliseconds.
DATABASE_BUSY_RETRY_AFTER_SECONDS = 1


def database_busy(exc: BaseException) -> ApiError | None:
    """503 `database_busy` for a write that lost a lock wait (SQLite "database is locked" past its
    timeout, a PostgreSQL deadlock or lock timeout): the request changed nothing and may be repeated.
    None for any other error."""
    if not isinstance(exc, DatabaseError):
        return None
    locked = "database is locked" in str(exc) or "database table is locked" in str(exc)  # SQLite
    if not locked and getattr(exc.__cause__, "sqlstate", None) not in RETRYABLE_SQLSTATES:
        return None
    return ApiError(
        503,
        "City's database is busy with other writes and this request timed out waiting; nothing was changed. Try again.",
        code="database_busy",
        headers={"Retry-After": str(DATABASE_BUSY_RETRY_AFTER_SECONDS)},
    )


# Django's last-resort handlers (urls.py): JSON, never an HTML page or a stack trace.
def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(400, "The request could not be understood; check its host header and syntax.", code="bad_request")


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(403, "You are not allowed to do this.", code="forbidden")


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(
        404, f"No route {request.path}. Routes are /v1/{{service}}/{{action}}; GET /v1/services lists them.", code="unknown_route"
    )


class DatabaseBusyMiddleware:
    """The pages' (admin, dashboard) database_busy: 503 with Retry-After, not handler500's 500.
    (/v1/ answers it in city/dispatch.py.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        busy = database_busy(exception)
        return busy.response() if busy is not None else None


def handler500(request: HttpRequest) -> HttpResponse:
    return error_response(500, "City failed to handle this request; the error is logged. Try again later.", code="internal_error")
