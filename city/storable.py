"""Refuse input City cannot store or pass on, before any action sees it.

PostgreSQL's text and jsonb refuse the NUL character (U+0000): a NUL that reaches a query is a
DataError (a 500), while SQLite stores it. City refuses it on every database alike, in any string of
the input, keys included, at any depth, as a 400 naming the field. Lone surrogates, the other
characters PostgreSQL refuses, never get this far: orjson refuses them in JSON and Django decodes
query strings and forms with replacement characters.

JSON nested deeper than MAX_DEPTH is refused too: orjson parses up to 1024 levels but writes at most
254, so a deeper body (an extension field passed to a provider) failed when City sent it on.
"""

from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpRequest, HttpResponseBase

from city.errors import ApiError

NUL = "\x00"
# In JSON text a NUL can only be written as this escape (a raw control character is invalid JSON):
# a body without these six bytes holds no NUL, which a byte search tells at memchr speed.
JSON_NUL_ESCAPE = b"\\u0000"
# Deep enough for any real request (OpenAI's deepest shapes are JSON Schemas in tools), well under the
# 254 levels orjson writes, leaving room for the envelope an adapter wraps a request in.
MAX_DEPTH = 64
ADMIN_PATH = "/admin/"
FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def check_json_body(body: bytes, data: Any) -> None:
    """Raise a 400 naming the first string of `data` (parsed from `body`) that holds a NUL, or the
    first value nested deeper than MAX_DEPTH."""
    if JSON_NUL_ESCAPE in body:  # else none can be there; when found it may still be an escaped backslash
        check_value(data, "")
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH:  # else it cannot be that deep (brackets in strings count too)
        check_depth(data)


def check_depth(value: Any) -> None:
    stack = [(value, 0, "")]
    while stack:
        item, depth, where = stack.pop()
        if depth > MAX_DEPTH:
            raise ApiError(
                400,
                f"{where[:200]} is nested deeper than {MAX_DEPTH} levels; City takes JSON up to that depth.",
                param=where[:200],
                code="too_deep",
            )
        if isinstance(item, dict):
            stack.extend(
                (child, depth + 1, f"{where}.{key}" if where else key) for key, child in item.items() if isinstance(child, (dict, list))
            )
        elif isinstance(item, list):
            stack.extend((child, depth + 1, f"{where}[{index}]") for index, child in enumerate(item) if isinstance(child, (dict, list)))


def check_query(lists: Iterable[tuple[str, list[str]]]) -> None:
    """Raise a 400 naming the first query parameter whose name or any value holds a NUL."""
    for key, values in lists:
        if NUL in key:
            raise refusal(f"The query parameter name {_escaped(key)!r}", _escaped(key))
        if any(NUL in value for value in values):
            raise refusal(f"The query parameter {key}", key)


def check_value(value: Any, path: str) -> None:
    """Walk a parsed JSON value; raise a 400 at the first string (value or key) holding a NUL. The walk
    keeps its own stack: JSON nested deeper than Python's recursion limit is still walked to its end."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                raise refusal(where or "The body", where or None)
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                if NUL in key:
                    named = f"{where}.{_escaped(key)}" if where else _escaped(key)
                    raise refusal(f"The field name {named!r}", named)
                stack.append((child, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{index}]") for index, child in reversed(list(enumerate(item))))


def refusal(what: str, param: str | None) -> ApiError:
    return ApiError(
        400,
        f"{what} contains a NUL character (\\u0000), which City cannot store; remove it.",
        param=param,
        code="invalid_characters",
    )


def _escaped(key: str) -> str:
    return key.replace(NUL, "\\u0000")[:100]


class RefuseNulMiddleware:
    """The same refusal for the browser pages. Django's forms refuse NUL in their CharFields, but the
    admin also puts the URL's object id, its list filters' values and a bulk action's selected ids
    straight into queries. A NUL in the path or the query, or in a form posted to the admin, answers
    400 before any view runs. The dashboard's own forms refuse it field by field on their page; /v1/
    is left to its dispatcher (its production handler runs without this middleware; the test client
    runs it)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path.startswith("/v1/"):
            return self.get_response(request)
        try:
            if NUL in request.path:
                raise refusal("The URL path", None)
            query = request.META.get("QUERY_STRING", "")
            if "%00" in query or NUL in query:
                check_query(request.GET.lists())
            if request.method == "POST" and request.path.startswith(ADMIN_PATH) and request.content_type in FORM_CONTENT_TYPES:
                check_query(request.POST.lists())
        except ApiError as exc:
            return exc.response()
        return self.get_response(request)
