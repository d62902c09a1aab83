"""Generated bad input for every declared route, and what every answer to it must be.

What a route takes is read from its declarations, not listed here: the input spec an action
declares (or, until the registry declares them, the request specs its handler's module holds: any
object with `validate` and `json_schema`), and the DRF serializers of the installed apps. Their field
names and the string values their schemas name (roles, part types) seed the generated bodies, so
that wrong types land on fields the routes know, at any depth.

Hypothesis runs derandomized with no example database: CI sees the same examples on every run.
"""

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from django.apps import apps
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework import serializers

from city.inputs import input_spec
from city.registry import Action, registry
from city.testing import assert_route_error, route_error_response

FUZZ_SETTINGS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
# Routes that answer a person's browser with a page (the OAuth provider's redirect lands there): no
# 5xx, but their refusals are HTML pages rather than the API's JSON error.
BROWSER_PAGES = frozenset({"/v1/accounts/oauth/callback", "/v1/accounts/oauth/confirm"})


def routes() -> list[tuple[str, Action]]:
    """Every declared route (`/v1/{service}/{action}` and the aliases) with its action."""
    found = [(f"/v1/{service}/{name}", action) for (service, name), action in registry().actions.items()]
    found += [(f"/v1/{alias}", registry().actions[target]) for alias, target in registry().aliases.items()]
    return sorted(found, key=lambda pair: pair[0])


def input_specs(action: Action) -> Iterator[Any]:
    """The action's declared input as an InputSpec (a serializer is wrapped); nothing when it declares none."""
    if action.input is not None:
        yield input_spec(action.input)


def schema_words(schema: Any, names: set[str], values: set[str]) -> None:
    """The property names and the const/enum strings of a JSON Schema, at any depth."""
    if isinstance(schema, dict):
        names.update(schema.get("properties", {}))
        if isinstance(schema.get("const"), str):
            values.add(schema["const"])
        values.update(v for v in schema.get("enum", ()) if isinstance(v, str))
        for child in schema.values():
            schema_words(child, names, values)
    elif isinstance(schema, list):
        for child in schema:
            schema_words(child, names, values)


def serializer_fields(app: str | None = None) -> set[str]:
    """The fields of the DRF serializers the installed apps declare (today's action inputs), or only
    of those one app declares (a handler's own)."""
    app_modules = tuple(config.name + "." for config in apps.get_app_configs())
    names: set[str] = set()
    pending: list[type] = [serializers.Serializer]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith(app_modules) and (app is None or cls.__module__.startswith(app + ".")):
            try:
                names.update(cls().fields)
            except Exception:  # a serializer that needs arguments to build: its fields are not ours to guess
                continue
    return names


def route_words(action: Action) -> tuple[list[str], list[str]]:
    """The field names and named values an action takes: its input specs' and the serializers of its
    handler's app (empty when neither says)."""
    names, values = serializer_fields(action.handler.__module__.split(".")[0]), set[str]()
    for spec in input_specs(action):
        schema_words(spec.json_schema(), names, values)
    return sorted(names), sorted(values)


def known_words() -> tuple[list[str], list[str]]:
    """Every route's words together."""
    names, values = serializer_fields(), set[str]()
    for _, action in routes():
        for spec in input_specs(action):
            schema_words(spec.json_schema(), names, values)
    return sorted(names), sorted(values)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each as often as its weight (one_of would draw each alike)."""
    return st.sampled_from([strategy for weight, strategy in choices for _ in range(weight)]).flatmap(lambda strategy: strategy)


NUL_TEXT = st.sampled_from(["\x00", "a\x00b", "studio_\x00", "\x00" * 3])
AWKWARD_TEXT = st.sampled_from(["", " ", "null", "true", "0", "-1", "1e400", "x" * 5000, "é", "💥", "\ufeff", "../..", "%00", "'; --"])


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


# Deeper than orjson writes (254 levels), though it parses it.
DEEP = _nested(300)


def json_values(names: list[str], values: list[str]) -> st.SearchStrategy[Any]:
    """Any JSON value, more often a single one than a container: NUL and awkward text, huge and negative
    numbers, nesting, objects keyed by known names."""
    text = weighted(
        (2, st.text(max_size=12)),
        (3, NUL_TEXT),
        (1, AWKWARD_TEXT),
        (1, st.sampled_from(values or ["x"])),
        (1, st.sampled_from(names or ["x"])),
    )
    scalars = weighted(
        (1, st.none()),
        (1, st.booleans()),
        (1, st.integers(min_value=-(2**70), max_value=2**70)),
        (1, st.sampled_from([0, -1, 1, 2**63, -(2**63) - 1, 2**64])),
        (1, st.floats(allow_nan=False, allow_infinity=False)),
        (4, text),
        (1, st.just(DEEP)),
    )
    keys = st.one_of(st.sampled_from(names or ["x"]), st.text(max_size=8), NUL_TEXT)
    nested = st.recursive(
        scalars,
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)),
        max_leaves=12,
    )
    return weighted((3, scalars), (1, nested))


def json_bytes(value: Any) -> bytes:
    """JSON text for any generated value (orjson cannot write integers past 64 bits; the stdlib can)."""
    import json

    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def bodies(names: list[str], values: list[str]) -> st.SearchStrategy[bytes]:
    """Mostly objects with known field names; sometimes not an object, not JSON, or nested past every limit."""
    value = json_values(names, values)
    # The route's own fields, each present or not, plus a few others.
    fields = st.fixed_dictionaries({}, optional={name: value for name in names[:40]})
    others = st.dictionaries(st.one_of(st.sampled_from(names or ["x"]), st.text(max_size=8), NUL_TEXT), value, max_size=3)
    objects = st.builds(lambda known, more: {**more, **known}, fields, others)
    return weighted(
        (12, objects.map(json_bytes)),
        (1, value.map(json_bytes)),
        (1, st.binary(max_size=40)),
        (1, st.sampled_from([b"[" * 3000, b'{"a":' * 600 + b"1" + b"}" * 600, b'{"a": 1e400}', b'"\\ud800"', b"\xff\xfe"])),
    )


def query_strings(names: list[str], values: list[str]) -> st.SearchStrategy[str]:
    text = weighted((2, st.text(max_size=10)), (2, NUL_TEXT), (1, AWKWARD_TEXT), (1, st.sampled_from(values or ["x"])))
    pairs = st.lists(st.tuples(weighted((3, st.sampled_from(names or ["x"])), (1, text)), text), max_size=5)
    return weighted(
        (6, pairs.map(lambda items: "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in items))),
        (1, st.text(max_size=30).map(lambda raw: quote(raw, safe="=&%"))),
    )


def assert_contract(test: Any, route: str, response: Any) -> None:
    """No 5xx; every non-2xx answer (browser pages aside) is the OpenAI error shape, or the route's
    own where its action declares one (Anthropic's on /v1/messages): what that renders for its status."""
    label = f"{response.status_code} on {route}: {response.content[:300]!r}"
    test.assertLess(response.status_code, 500, label)
    if 200 <= response.status_code < 300 or (route in BROWSER_PAGES and response["Content-Type"].startswith("text/html")):
        return
    test.assertEqual(response["Content-Type"], "application/json", label)
    body = response.json()
    render = route_error_response(route)
    if render is not None:
        test.assertEqual(set(body), {"type", "error"}, label)
        assert_route_error(test, body, render, response.status_code, "")
        return
    test.assertEqual(set(body), {"error"}, label)
    error = body["error"]
    test.assertEqual(set(error) - {"details"}, {"message", "type", "code", "param"}, label)
    test.assertIsInstance(error["message"], str, label)
    test.assertTrue(error["message"], label)
    test.assertIsInstance(error["type"], str, label)
