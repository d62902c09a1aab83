"""City's OpenAPI 3.1 document, built from the registry's declarations (GET /v1/openapi.json).

Every action is an operation per method, at its route and at each alias: who may call it (bearer
credential, or guest), its input as JSON Schema (a POST's body, a GET's query parameters), what a
success answers, and City's error responses. Nothing here is written by hand per route.
"""

import re
from typing import Any

from city.calls import Call
from city.registry import ADMIN, USER, Action, Registry, Service, registry

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every non-2xx answer on /v1/, OpenAI's error shape.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string", "description": "What went wrong and what to do, for a person"},
                "type": {"type": "string", "examples": ["invalid_request_error", "authentication_error", "permission_error"]},
                "code": {"type": ["string", "null"], "description": "A stable name for the error, such as unknown_field"},
                "param": {"type": ["string", "null"], "description": "The field at fault, if one is"},
                "details": {"description": "More, for some errors"},
            },
            "required": ["message", "type", "code", "param"],
        }
    },
    "required": ["error"],
}

# (status, component name, description): the error answers every route may give.
ERRORS = (
    ("400", "BadRequest", "Malformed JSON, or a missing, invalid or unknown field (named in `param`)"),
    ("401", "Unauthorized", "A credential is needed, or the one sent is unknown, revoked or expired"),
    ("403", "Forbidden", "This identity may not do this, or its studio is paused"),
    ("404", "NotFound", "Unknown service, action or object"),
    ("405", "MethodNotAllowed", "Another method; `Allow` lists this route's methods"),
)
BODY_ERRORS = (
    ("413", "BodyTooLarge", "The body is over CITY_MAX_BODY_BYTES"),
    ("415", "UnsupportedMediaType", "The body is not JSON"),
)
DEFAULT_ERROR = ("default", "Error", "Any other failure (402, 409, 429, 5xx …), in the same shape")


def document(registry: Registry) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {"/v1/services": {"get": services_operation()}}
    for service in registry.services.values():
        for action in service.actions:
            routes = [(f"/v1/{service.id}/{action.name}", f"{service.id}_{action.name}")]
            routes += [(f"/v1/{alias}", alias) for alias, target in service.aliases.items() if target == action.name]
            for route, operation_name in routes:
                paths[route] = path_item(service, action, operation_name, with_subpath=False)
                if action.subpaths:
                    paths[route + "/{subpath}"] = path_item(service, action, operation_name + "_one", with_subpath=True)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "City",
            "version": "v1",
            "description": "Routes are `/v1/{service}/{action}`; the OpenAI-compatible routes also answer at `/v1/chat/completions`, "
            "`/v1/completions`, `/v1/embeddings` and `/v1/models`. Send `Authorization: Bearer <user token or admin key>`.",
        },
        "tags": [{"name": s.id, "description": s.description or s.name} for s in registry.services.values()],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A user token (`ub_…`) or the admin key (ADMIN_SECRET_KEY)"},
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-api-key",
                    "description": "The same credential, as Anthropic's SDKs send it (on the routes that take it)",
                },
            },
            "schemas": {"Error": ERROR_SCHEMA},
            "responses": {
                name: {
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    **({"headers": {"Allow": {"schema": {"type": "string"}}}} if status == "405" else {}),
                }
                for status, name, description in (*ERRORS, *BODY_ERRORS, DEFAULT_ERROR)
            },
        },
    }


def path_item(service: Service, action: Action, operation_name: str, *, with_subpath: bool) -> dict[str, Any]:
    item: dict[str, Any] = {}
    schema = action.input_spec.json_schema()
    for method in action.methods:
        operation: dict[str, Any] = {
            "operationId": operation_id(operation_name, method, several=len(action.methods) > 1),
            "tags": [service.id],
            "summary": action.description or f"{service.id}/{action.name}",
            "description": f"`{service.id}/{action.name}`. Who may call it: {who(action.allow)}",
            "security": security(action),
            "x-city-allow": list(action.allow) or ["guest"],
        }
        parameters = [subpath_parameter()] if with_subpath else []
        if method in ("GET", "HEAD"):
            parameters += query_parameters(schema)
        elif action.json_body:
            content = {"application/json": {"schema": schema}}
            if action.upload:  # the same fields as a form, and the files the route names in its description
                content["multipart/form-data"] = {"schema": {**schema, "additionalProperties": True}}
            operation["requestBody"] = {"required": bool(schema.get("required")), "content": content}
        else:
            operation["requestBody"] = {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
        if parameters:
            operation["parameters"] = parameters
        operation["responses"] = responses(action, method)
        item[method.lower()] = operation
    return item


def responses(action: Action, method: str) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "Success"}
    if method != "HEAD":
        success["content"] = {media_type: {"schema": success_schema(media_type)} for media_type in action.responds}
    answers = {"200": success}
    for status, name, description in (*ERRORS, *(BODY_ERRORS if method not in ("GET", "HEAD") else ()), DEFAULT_ERROR):
        if action.error_schema is not None:  # a route that speaks another API's error shape (Anthropic's)
            answers[status] = {"description": description, "content": {"application/json": {"schema": action.error_schema}}}
        else:
            answers[status] = {"$ref": f"#/components/responses/{name}"}
    return answers


def success_schema(media_type: str) -> dict[str, Any]:
    if media_type == "application/json":
        return {"type": "object"}
    if media_type.startswith(("audio/", "video/", "image/")):
        return {"type": "string", "format": "binary"}
    return {"type": "string"}  # a stream of server-sent events, a page, a CSV or a transcript's text


def query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """An input's properties as query parameters (their values arrive as strings and are converted by the input)."""
    required = set(schema.get("required", ()))
    parameters = []
    for name, property_schema in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": property_schema}
        if "description" in property_schema:
            parameter["description"] = property_schema["description"]
        parameters.append(parameter)
    return parameters


def subpath_parameter() -> dict[str, Any]:
    return {
        "name": "subpath",
        "in": "path",
        "required": True,
        "description": "The rest of the route, handed to the action (such as a model id)",
        "schema": {"type": "string", "minLength": 1},
    }


def services_operation() -> dict[str, Any]:
    return {
        "operationId": "services",
        "tags": ["system"],
        "summary": "Every service with its env requirements; the admin also sees each action",
        "description": f"Who may call it: {who(())}",
        "security": [{}, {"bearer": []}],
        "x-city-allow": ["guest"],
        "responses": {
            "200": {"description": "Success", "content": {"application/json": {"schema": {"type": "object"}}}},
            "401": {"$ref": "#/components/responses/Unauthorized"},
            "403": {"$ref": "#/components/responses/Forbidden"},
            "405": {"$ref": "#/components/responses/MethodNotAllowed"},
            "default": {"$ref": "#/components/responses/Error"},
        },
    }


def security(action: Action) -> list[dict[str, list[str]]]:
    """Bearer credentials; also `x-api-key` where the action takes it; none needed for guest actions."""
    schemes: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}] if action.api_key_header else [{"bearer": []}]
    return schemes if action.allow else [{}, *schemes]


def who(allow: tuple[str, ...]) -> str:
    if not allow:
        return "anyone: no credential is needed, but one that is sent must be valid."
    if USER in allow:
        return "a user token (`ub_…`), or the admin."  # the admin passes every check
    if allow == (ADMIN,):
        return "the admin (`ADMIN_SECRET_KEY`)."
    return ", ".join(allow) + ", or the admin."


# The document of the registry it was built from: built once per process (it takes milliseconds), not per request.
_built: list[tuple[Registry, dict[str, Any]]] = []


def openapi_json(call: Call) -> dict[str, Any]:
    """GET /v1/openapi.json (and /v1/system/openapi)."""
    current = registry()
    if not _built or _built[0][0] is not current:
        _built[:] = [(current, document(current))]
    return _built[0][1]


def operation_id(name: str, method: str, *, several: bool) -> str:
    base = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
    return f"{base}_{method.lower()}" if several else base
