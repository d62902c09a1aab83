"""Services and their actions, declared by each app in a module of its own as `SERVICE = Service(...)`
(or `SERVICES = [...]`).

`settings.CITY_SERVICES` lists those modules; City names no app. Adding an action is one entry in
the app's own declaration: its name, methods, who may call it, its input and its handler.
"""

import importlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

from django.conf import settings

from city.inputs import NO_INPUT, InputDeclaration, InputSpec, input_spec

if TYPE_CHECKING:
    from django.http import HttpResponse

    from city.errors import ApiError

GUEST = "guest"
USER = "user"
ADMIN = "admin"


@dataclass(frozen=True)
class EnvRequirement:
    key: str
    description: str = ""
    required: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "description": self.description, "required": self.required}


@dataclass(frozen=True)
class Action:
    """One `/v1/{service}/{name}` route.

    `allow` lists identities (`"user"`, `"admin"`); empty means anyone, guest included; admin passes
    every check. `handler(call)` returns a JSON-able object or an HttpResponse, may be sync (run in
    a worker thread as one unit) or async, and raises ApiError for anything but success. `audit`
    records failed admin calls in the audit log (successes are recorded by the operation itself,
    in its transaction). `json_body=False` hands the raw body to the handler unparsed.

    `input` is what the action takes (a GET's query parameters, a POST's JSON object): a DRF
    serializer class or an InputSpec (city/inputs.py). The dispatcher validates it before the
    handler, which receives the validated data as `call.data`; the default takes nothing.
    """

    name: str
    handler: Callable[..., Any]
    methods: tuple[str, ...] = ("POST",)
    allow: tuple[str, ...] = (USER,)
    audit: bool = False
    description: str = ""
    json_body: bool = True
    # Also serve /…/{name}/{rest}, handing `rest` to the handler as `call.subpath` (e.g. /v1/models/{id}).
    subpaths: bool = False
    input: InputDeclaration = NO_INPUT
    # Media types of a successful answer, for the OpenAPI document (e.g. "text/event-stream" for streams).
    responds: tuple[str, ...] = ("application/json",)
    # Also takes multipart/form-data (its files in `call.files`), and bodies up to CITY_MAX_UPLOAD_BYTES
    # rather than CITY_MAX_BODY_BYTES (JSON included: audio may come as base64).
    upload: bool = False
    # Takes JSON bodies up to CITY_MAX_UPLOAD_BYTES too (no multipart): a coding agent sends its whole
    # conversation, images and files included, on every turn.
    large_body: bool = False
    # Also takes the credential in `x-api-key` (as Anthropic's SDKs send it) when no Authorization is sent.
    api_key_header: bool = False
    # How this route answers an error, for routes that speak another API's error shape (Anthropic's);
    # None: City's (OpenAI's) {"error": {message, type, code, param}}.
    error_response: "Callable[[ApiError], HttpResponse] | None" = None
    # Another header every answer of this route carries the request id in, besides X-Request-Id: the
    # one its own SDKs read it from (Anthropic's `request-id`, their `_request_id`), errors included.
    request_id_header: str = ""
    # The JSON Schema of what `error_response` renders, for the OpenAPI document (None: City's Error).
    error_schema: dict[str, Any] | None = None

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)

    @cached_property
    def input_spec(self) -> InputSpec:
        return input_spec(self.input)


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    actions: tuple[Action, ...]
    env: tuple[EnvRequirement, ...] = ()
    description: str = ""
    # Extra routes served by this service's actions: {"chat/completions": "chat/completions"} makes
    # /v1/chat/completions the twin of /v1/{id}/chat/completions (OpenAI SDKs with base URL /v1).
    aliases: dict[str, str] = field(default_factory=dict)
    # Other consumers of env keys this service owns, e.g. its models: () -> [("model", id, requirement)].
    env_consumers: Callable[[], list[tuple[str, str, EnvRequirement]]] | None = None

    def action(self, name: str) -> Action | None:
        return self._actions_by_name().get(name)

    def _actions_by_name(self) -> dict[str, Action]:
        return {action.name: action for action in self.actions}


@dataclass(frozen=True)
class Registry:
    services: dict[str, Service]
    actions: dict[tuple[str, str], Action]
    aliases: dict[str, tuple[str, str]]

    def resolve(self, route: str) -> "Resolution":
        """Map a path below /v1/ to its service and action; either is None when unknown."""
        if route in self.aliases:
            return Resolution(*self._known(*self.aliases[route]))
        service_id, _, action_name = route.partition("/")
        service, action, _, _ = self._known(service_id, action_name)
        if action is None:
            for target, subpath in self._subpath_candidates(route, service_id, action_name):
                candidate_service, candidate, _, _ = self._known(*target)
                if candidate is not None and candidate.subpaths:
                    return Resolution(candidate_service, candidate, *target, subpath=subpath)
        return Resolution(service, action, service_id, action_name)

    def _known(self, service_id: str, action_name: str) -> tuple[Service | None, Action | None, str, str]:
        return self.services.get(service_id), self.actions.get((service_id, action_name)), service_id, action_name

    def _subpath_candidates(self, route: str, service_id: str, action_name: str) -> Iterator[tuple[tuple[str, str], str]]:
        """(service, action) pairs an action with subpaths could be, longest name first, with the rest."""
        for head, _, rest in _splits(route):
            if head in self.aliases and rest:
                yield self.aliases[head], rest
        for head, _, rest in _splits(action_name):
            if rest:
                yield (service_id, head), rest


def _splits(path: str) -> Iterator[tuple[str, str, str]]:
    """ "a/b/c" → ("a/b", "/", "c"), ("a", "/", "b/c")."""
    parts = path.split("/")
    for cut in range(len(parts) - 1, 0, -1):
        yield "/".join(parts[:cut]), "/", "/".join(parts[cut:])


@dataclass(frozen=True)
class Resolution:
    service: Service | None
    action: Action | None
    service_id: str
    action_name: str
    subpath: str = ""


@cache
def registry() -> Registry:
    """The services of the modules `settings.CITY_SERVICES` names, in that order."""
    services: dict[str, Service] = {}
    for module_path in settings.CITY_SERVICES:
        module = importlib.import_module(module_path)
        declared = getattr(module, "SERVICES", None) or [getattr(module, "SERVICE", None)]
        for service in declared:
            if not isinstance(service, Service):
                raise RuntimeError(f"{module_path} (CITY_SERVICES) declares no SERVICE or SERVICES of city.registry.Service.")
            if service.id in services:
                raise RuntimeError(f"Service id {service.id!r} is declared twice.")
            for action in service.actions:
                action.input_spec  # noqa: B018  (a declaration that is neither a serializer nor an InputSpec fails at start-up)
            services[service.id] = service
    actions = {(s.id, a.name): a for s in services.values() for a in s.actions}
    aliases: dict[str, tuple[str, str]] = {}
    for service in services.values():
        for route, action_name in service.aliases.items():
            if (service.id, action_name) not in actions:
                raise RuntimeError(f"Alias /v1/{route} names unknown action {service.id}/{action_name}.")
            aliases[route] = (service.id, action_name)
    return Registry(services=services, actions=actions, aliases=aliases)


def env_consumers() -> list[tuple[str, str, EnvRequirement]]:
    """Everything that declares an env key, as (kind, id, requirement): services, then their models."""
    found: list[tuple[str, str, EnvRequirement]] = []
    for service in registry().services.values():
        found.extend(("service", service.id, req) for req in service.env)
        if service.env_consumers is not None:
            found.extend(service.env_consumers())
    return found
