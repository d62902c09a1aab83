"""GET /v1/openapi.json: an OpenAPI 3.1 document of every route, made from the actions' declarations."""

from typing import Any

import jsonschema
import schemathesis
from django.test import TestCase
from openapi_spec_validator import OpenAPIV31SpecValidator
from rest_framework import serializers
from schemathesis.core.result import Err, Ok

from city.field_schemas import serializer_schema
from city.openapi import ERROR_SCHEMA
from city.registry import registry
from city.testing import ApiTestMixin
from city.validation import StrictBooleanField, StrictCharField

METHODS = {"get", "post", "head", "delete"}


class OpenApiDocumentTests(ApiTestMixin, TestCase):
    def document(self) -> dict[str, Any]:
        response = self.get("/v1/openapi.json")  # a guest may read it
        return self.assertOk(response)

    def test_it_is_valid_openapi_3_1(self) -> None:
        document = self.document()
        self.assertEqual(document["openapi"], "3.1.0")
        OpenAPIV31SpecValidator(document).validate()  # raises naming the first problem

    def test_schemathesis_loads_every_operation(self) -> None:
        document = self.document()
        results = list(schemathesis.openapi.from_dict(document).get_all_operations())
        problems = [result.err() for result in results if isinstance(result, Err)]
        self.assertEqual(problems, [])
        operations = [result.ok() for result in results if isinstance(result, Ok)]
        expected = sum(len(set(item) & METHODS) for item in document["paths"].values())
        self.assertEqual(len(operations), expected)
        self.assertGreater(expected, 45)

    def test_every_action_and_alias_is_there_with_its_methods_and_who_may_call_it(self) -> None:
        paths = self.document()["paths"]
        self.assertEqual(set(paths["/v1/services"]), {"get"})
        seen_operation_ids: set[str] = set()
        for service in registry().services.values():
            for action in service.actions:
                routes = [f"/v1/{service.id}/{action.name}"]
                routes += [f"/v1/{alias}" for alias, name in service.aliases.items() if name == action.name]
                routes += [f"{route}/{{subpath}}" for route in routes if action.subpaths]
                for route in routes:
                    with self.subTest(route=route):
                        self.assertEqual(set(paths[route]), {m.lower() for m in action.methods})
                        for operation in paths[route].values():
                            self.assertNotIn(operation["operationId"], seen_operation_ids)
                            seen_operation_ids.add(operation["operationId"])
                            self.assertEqual(operation["x-city-allow"], list(action.allow) or ["guest"])
                            schemes: list[dict[str, list[str]]] = [{"bearer": []}]
                            if action.api_key_header:
                                schemes.append({"apiKey": []})
                            self.assertEqual(operation["security"], schemes if action.allow else [{}, *schemes])
                            if action.error_schema is None:
                                self.assertEqual(operation["responses"]["400"], {"$ref": "#/components/responses/BadRequest"})
                            else:  # the route's own error shape (Anthropic's on /v1/messages)
                                bad_request = operation["responses"]["400"]["content"]["application/json"]["schema"]
                                self.assertEqual(bad_request, action.error_schema)
        for alias in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/v1/models/{subpath}"):
            self.assertIn(alias, paths)
        self.assertEqual(paths["/v1/chat/completions"]["post"]["operationId"], "chat_completions")

    def test_bodies_and_query_parameters_come_from_the_serializers(self) -> None:
        paths = self.document()["paths"]
        body = paths["/v1/studios/tokens/apply"]["post"]["requestBody"]
        self.assertTrue(body["required"])
        schema = body["content"]["application/json"]["schema"]
        self.assertEqual(schema, declared_schema("studios", "tokens/apply"))
        self.assertEqual(schema["required"], ["name"])
        self.assertFalse(schema["additionalProperties"])
        self.assertEqual(schema["properties"]["name"]["maxLength"], 100)
        self.assertEqual(schema["properties"]["expires_at"], {"type": ["string", "null"], "format": "date-time"})
        parameters = {p["name"]: p for p in paths["/v1/studios/list"]["get"]["parameters"]}
        self.assertEqual(list(parameters), ["status", "search", "limit", "cursor"])
        self.assertEqual(parameters["limit"]["schema"], {"type": "integer", "minimum": 1, "maximum": 200, "default": 50})
        self.assertEqual(parameters["status"]["schema"], {"enum": ["active", "paused", "removed"], "type": "string"})
        self.assertTrue(all(p["in"] == "query" and not p["required"] for p in parameters.values()))
        register = paths["/v1/accounts/register"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        self.assertEqual(register["properties"]["email"]["format"], "email")
        self.assertEqual(register, declared_schema("accounts", "register"))
        self.assertEqual(register["required"], ["studio_id", "email", "password"])
        settings = paths["/v1/accounts/settings"]
        self.assertIn("requestBody", settings["post"])
        self.assertEqual({p["name"] for p in settings["get"]["parameters"]}, {"studio_id", "self_registration"})

    def test_the_ai_routes_show_their_openai_bodies_and_streams(self) -> None:
        paths = self.document()["paths"]
        chat = paths["/v1/ai/chat/completions"]["post"]
        schema = chat["requestBody"]["content"]["application/json"]["schema"]
        self.assertEqual(schema["required"], ["model", "messages"])
        self.assertTrue(schema["additionalProperties"])  # OpenAI fields pass through to the upstream
        self.assertEqual(set(chat["responses"]["200"]["content"]), {"application/json", "text/event-stream"})
        self.assertEqual(set(paths["/v1/ai/stream"]["post"]["responses"]["200"]["content"]), {"text/event-stream"})
        self.assertEqual(paths["/v1/models/{subpath}"]["get"]["parameters"][0]["in"], "path")

    def test_the_error_schema_describes_city_s_errors(self) -> None:
        document = self.document()
        error = self.get("/v1/system/whoami", {"nope": "1"})
        self.assertError(error, 400, "invalid_request_error", "unknown_field", "nope")
        jsonschema.validate(error.json(), ERROR_SCHEMA)
        self.assertEqual(document["components"]["schemas"]["Error"], ERROR_SCHEMA)
        self.assertEqual(document["components"]["securitySchemes"]["bearer"]["scheme"], "bearer")


def declared_schema(service_id: str, action_name: str) -> dict[str, Any]:
    return registry().actions[(service_id, action_name)].input_spec.json_schema()


class Leaf(serializers.Serializer):
    note = StrictCharField(max_length=5, help_text="A short note")
    weight = serializers.FloatField(min_value=0, required=False)


class Tree(serializers.Serializer):
    name = serializers.CharField(max_length=10)
    height = serializers.IntegerField(min_value=1, max_value=30, default=3)
    kind = serializers.ChoiceField(choices=["oak", "ash"], allow_null=True, required=False)
    evergreen = StrictBooleanField(required=False)
    planted = serializers.DateTimeField(required=False)
    tags = serializers.ListField(child=StrictCharField(max_length=8), max_length=3, required=False)
    crown = Leaf(required=False, allow_null=True)
    leaves = Leaf(many=True, required=False)
    extra = serializers.DictField(child=serializers.IntegerField(), required=False)
    anything = serializers.JSONField(required=False)


def test_the_field_converter_agrees_with_the_serializer() -> None:
    """Each sample: the JSON Schema accepts it exactly when the serializer does (and refuses unknown fields)."""
    schema = serializer_schema(Tree())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["crown"]["type"] == ["object", "null"]
    assert schema["properties"]["crown"]["properties"]["note"] == {
        "type": "string",
        "pattern": r"\S",
        "minLength": 1,
        "maxLength": 5,
        "description": "A short note",
    }
    assert schema["properties"]["kind"] == {"enum": ["oak", "ash", None], "type": ["string", "null"]}
    samples: list[dict[str, Any]] = [
        {"name": "elm"},
        {"name": "elm", "height": 30, "kind": None, "evergreen": True, "planted": "2026-01-02T03:04:05Z"},
        {"name": "elm", "tags": ["a", "b"], "crown": {"note": "top", "weight": 1.5}, "leaves": [{"note": "x"}], "extra": {"a": 1}},
        {"name": "elm", "anything": [1, {"b": None}]},
        {"name": "elm", "crown": None},
        {},
        {"name": ""},
        {"name": "elm", "height": 0},
        {"name": "elm", "height": 31},
        {"name": "elm", "kind": "pine"},
        {"name": "elm", "evergreen": "yes"},
        {"name": "elm", "tags": ["a", "b", "c", "d"]},
        {"name": "elm", "tags": ["far too long"]},
        {"name": "elm", "crown": {"note": "toolong"}},
        {"name": "elm", "crown": {"note": "x", "weight": -1}},
        {"name": "elm", "leaves": [{}]},
        {"name": "elm", "extra": {"a": "b"}},
        {"name": "elm", "colour": "green"},
        {"name": "elm", "leaves": None},
    ]
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    for sample in samples:
        serializer = Tree(data=sample)
        accepted = serializer.is_valid() and not set(sample) - set(serializer.fields)
        assert validator.is_valid(sample) == accepted, (sample, serializer.errors)
