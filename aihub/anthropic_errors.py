"""Errors in the Anthropic Messages API's shape, for City's Anthropic routes (`/v1/messages`, …):
`{"type": "error", "error": {"type", "message"}}` with Anthropic's statuses and error types, so the
`anthropic` SDKs raise their own exception classes (BadRequestError, AuthenticationError, …)."""

from typing import Any

import orjson
from django.http import HttpResponse

from city.errors import ApiError

# Anthropic's error type for each status it answers (docs.claude.com/en/api/errors); City's own
# upstream statuses (502, 503, 504) read as the nearest of Anthropic's.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


# The JSON Schema of Anthropic's error body, for the OpenAPI document of its routes.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every non-2xx answer on Anthropic's routes, in Anthropic's error shape.",
    "properties": {
        "type": {"type": "string", "const": "error"},
        "error": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "examples": ["invalid_request_error", "authentication_error", "not_found_error"]},
                "message": {"type": "string", "description": "What went wrong and what to do, for a person"},
            },
            "required": ["type", "message"],
        },
    },
    "required": ["type", "error"],
}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status) or ("invalid_request_error" if 400 <= status < 500 else "api_error")


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(status), "message": message}}


def anthropic_error_response(exc: ApiError) -> HttpResponse:
    """An ApiError as Anthropic answers one; its headers (Retry-After, rate limits) kept."""
    response = HttpResponse(orjson.dumps(error_body(exc.status, exc.message)), status=exc.status, content_type="application/json")
    for name, value in exc.headers.items():
        response[name] = value
    return response
