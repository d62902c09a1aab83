"""The one view behind /v1/: route → identity → allow check → declared input validated → handler → response."""

import logging
import re
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt

from city import metrics, storable
from city.calls import Call
from city.errors import ApiError, database_busy, error_response, json_response
from city.identity import Identity, check_allowed, resolve_identity
from city.ids import new_id
from city.registry import Action, Resolution, registry
from city.runtime_env import runtime_env

log = logging.getLogger("city.dispatch")

JSON_CONTENT_TYPES = {"application/json", ""}
# A client's own X-Request-Id is kept when it looks like an id; anything else is replaced, never echoed.
CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,64}")


def request_id_of(request: HttpRequest) -> str:
    given = request.META.get("HTTP_X_REQUEST_ID", "")
    return given if CLIENT_REQUEST_ID.fullmatch(given) else new_id("req")


@csrf_exempt  # bearer credentials, not cookies: no CSRF exposure on /v1/
async def dispatch(request: HttpRequest, route: str) -> HttpResponseBase:
    """Every answer carries X-Request-Id (as OpenAI's do): the client's own, or a new `req_…` id."""
    request_id = request_id_of(request)
    found = registry().resolve(route)
    try:
        response = await _dispatch(request, found, request_id)
    except ApiError as exc:
        response = _error_answer(found.action, exc)
    except Exception as exc:
        if busy := database_busy(exc):
            log.warning("database busy on %s %s (request %s): %s", request.method, request.path, request_id, exc)
            response = _error_answer(found.action, busy)
        else:
            log.exception("unhandled error on %s %s (request %s)", request.method, request.path, request_id)
            response = _error_answer(
                found.action,
                ApiError(500, "City failed to handle this request; the error is logged. Try again later.", code="internal_error"),
            )
    response["X-Request-Id"] = request_id
    if found.action is not None and found.action.request_id_header:
        response[found.action.request_id_header] = request_id
    if request.method == "HEAD" and isinstance(response, HttpResponse):  # not a stream
        response.content = b""  # the GET's status and headers only (actions that allow HEAD: load-balancer checks)
    # By the action's name, never the raw path: a client cannot grow the metric's label sets.
    metrics.count_http(f"{found.service_id}/{found.action.name}" if found.action else "unknown", response.status_code)
    return response


def _error_answer(action: Action | None, exc: ApiError) -> HttpResponse:
    """The error in the route's own shape (Anthropic's on Anthropic's routes), else City's."""
    if action is not None and action.error_response is not None:
        return action.error_response(exc)
    return exc.response()


async def _dispatch(request: HttpRequest, found: Resolution, request_id: str) -> HttpResponseBase:
    service, action, service_id, action_name = found.service, found.action, found.service_id, found.action_name
    if service is None:
        raise ApiError(404, f"Unknown service '{service_id}'. GET /v1/services lists the services.", code="unknown_service")
    if action is None and not action_name:
        names = ", ".join(a.name for a in service.actions)
        raise ApiError(404, f"Name an action: /v1/{service_id}/{{action}}. The actions of '{service_id}': {names}.", code="unknown_action")
    if action is None:
        names = ", ".join(a.name for a in service.actions)
        raise ApiError(404, f"Unknown action '{action_name}' of service '{service_id}'. Its actions: {names}.", code="unknown_action")
    if request.method not in action.methods:
        allowed = ", ".join(action.methods)
        raise ApiError(
            405, f"{request.method} is not allowed on this route; use {allowed}.", code="method_not_allowed", headers={"Allow": allowed}
        )
    identity = await resolve_identity(request, api_key_header=action.api_key_header)
    check_allowed(identity, action)
    call = Call(request=request, identity=identity, action=action, data={}, subpath=found.subpath, request_id=request_id)
    try:
        if action.upload and is_multipart(request):
            call.data, call.files = await read_form(request)
        else:
            call.data = read_input(request, action)
        if action.is_async:
            call.data = action.input_spec.validate(call.data)
            result = await action.handler(call)
        else:
            result = await sync_to_async(_validated_then_handled)(action, call)
    except ApiError as exc:
        if action.audit and identity.is_admin:
            await sync_to_async(_audit_failure)(identity, f"{service_id}/{action_name}", call.data, exc)
        raise
    return result if isinstance(result, HttpResponseBase) else json_response(result)


def _validated_then_handled(action: Action, call: Call) -> Any:
    """A sync action's input check and handler, in one worker-thread job (a serializer's validator may query).

    The raw input stays on the call when it is refused: the audit of a failed admin call reads it.
    """
    call.data = action.input_spec.validate(call.data)
    return action.handler(call)


def body_too_large(action: Action | None) -> ApiError:
    if action is not None and (action.upload or action.large_body):
        limit, name = settings.CITY_MAX_UPLOAD_BYTES, "CITY_MAX_UPLOAD_BYTES"
    else:
        limit, name = settings.CITY_MAX_BODY_BYTES, "CITY_MAX_BODY_BYTES"
    return ApiError(413, f"The request body is over the limit of {limit} bytes ({name}).", code="body_too_large")


def read_input(request: HttpRequest, action: Action) -> dict[str, Any]:
    """A GET's query parameters, or a POST's JSON object (an empty body is an empty object)."""
    if request.method in ("GET", "HEAD"):
        storable.check_query(request.GET.lists())
        return {key: request.GET[key] for key in request.GET}
    try:
        body = request.body
    except RequestDataTooBig:
        raise body_too_large(action) from None
    if len(body) > settings.CITY_MAX_BODY_BYTES and not (
        action.upload or action.large_body
    ):  # Django's own limit is the larger upload limit
        raise body_too_large(action)
    if not action.json_body:
        return {}
    content_type = request.content_type or ""
    if not body.strip():
        return {}
    if content_type not in JSON_CONTENT_TYPES:
        raise ApiError(
            415, f"Send the body as JSON with 'Content-Type: application/json' (got '{content_type}').", code="unsupported_media_type"
        )
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        reason = "it is not UTF-8" if _not_utf8(body) else f"it is not valid JSON ({exc.msg})"
        raise ApiError(400, f"Could not parse the body: {reason}.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, 'The body must be a JSON object, such as {"name": "…"}.', code="invalid_json")
    storable.check_json_body(body, data)
    return data


def is_multipart(request: HttpRequest) -> bool:
    return request.method == "POST" and (request.content_type or "") == "multipart/form-data"


async def read_form(request: HttpRequest) -> tuple[dict[str, Any], dict[str, list[UploadedFile]]]:
    """A multipart body as (fields, files), as OpenAI's SDKs send uploads: a field sent once is a
    string, one sent more than once (or named `name[]`, as the SDKs send arrays) a list of strings;
    files by field name, `[]` removed. Django spools files over FILE_UPLOAD_MAX_MEMORY_SIZE to disk,
    so the parse runs on a worker thread."""
    try:
        fields, files = await sync_to_async(_parse_form)(request)
    except RequestDataTooBig:
        raise body_too_large(None) from None  # the form's fields (not its files) over DATA_UPLOAD_MAX_MEMORY_SIZE
    except (MultiPartParserError, TooManyFilesSent, TooManyFieldsSent) as exc:
        raise ApiError(400, f"Could not parse the multipart body: {exc}.", code="invalid_multipart") from None
    data: dict[str, Any] = {}
    for key, values in fields:
        name, as_list = (key[:-2], True) if key.endswith("[]") else (key, False)
        if name in data:
            previous = data[name]
            data[name] = [*previous, *values] if isinstance(previous, list) else [previous, *values]
        else:
            data[name] = list(values) if as_list or len(values) > 1 else values[0]
    uploads: dict[str, list[UploadedFile]] = {}
    for key, found in files:
        uploads.setdefault(key.removesuffix("[]"), []).extend(found)
    return data, uploads


def _parse_form(request: HttpRequest) -> tuple[list[tuple[str, list[str]]], list[tuple[str, list[UploadedFile]]]]:
    return list(request.POST.lists()), list(request.FILES.lists())


def _not_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _audit_failure(identity: Identity, action: str, data: dict[str, Any], exc: ApiError) -> None:
    from city.audit import record

    target = next((str(data[k])[:200] for k in ("account_id", "token_id", "key", "studio_id") if isinstance(data.get(k), str)), "")
    record(identity, action, target=target, outcome=f"{exc.status} {exc.code or exc.type}")


async def services(request: HttpRequest) -> HttpResponse:
    """GET /v1/services: every service with its env; an admin also sees each action."""
    response = await _services(request)
    response["X-Request-Id"] = request_id_of(request)
    metrics.count_http("services", response.status_code)
    return response


async def _services(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return ApiError(
            405, f"{request.method} is not allowed on this route; use GET.", code="method_not_allowed", headers={"Allow": "GET"}
        ).response()
    try:
        identity = await resolve_identity(request)
    except ApiError as exc:
        return exc.response()
    items = []
    for service in registry().services.values():
        item: dict[str, Any] = {"id": service.id, "name": service.name, "env": [req.as_dict() for req in service.env]}
        if identity.is_admin:
            for entry in item["env"]:
                entry["is_set"] = bool(await runtime_env.aget(entry["key"]))
            item["description"] = service.description
            item["actions"] = [
                {"name": a.name, "methods": list(a.methods), "allow": list(a.allow), "description": a.description} for a in service.actions
            ]
        items.append(item)
    return json_response({"items": items})


async def not_found(request: HttpRequest, route: str = "") -> HttpResponse:
    response = error_response(
        404, f"No route {request.path}. Routes are /v1/{{service}}/{{action}}; GET /v1/services lists them.", code="unknown_route"
    )
    response["X-Request-Id"] = request_id_of(request)
    metrics.count_http("unknown", 404)
    return response
