"""The registry comes from settings.CITY_SERVICES, and the dispatcher validates each action's declared
input before its handler, which receives the validated data."""

import pytest
from django.test import TestCase, override_settings

from city.inputs import InputSpec
from city.models import EnvVar
from city.registry import Action, Service, registry
from city.testing import ApiTestMixin
from city.tests import declared_service

WITH_GARDEN = ["city.services", "studios.services", "aihub.services", "accounts.services", "city.tests.declared_service"]


class RegistryFromSettingsTests(ApiTestMixin, TestCase):
    def tearDown(self) -> None:
        registry.cache_clear()
        super().tearDown()

    def test_only_the_listed_modules_are_services(self) -> None:
        with override_settings(CITY_SERVICES=["city.services", "studios.services"]):
            registry.cache_clear()
            self.assertEqual(list(registry().services), ["env", "system", "audit", "studios"])
            # accounts is an installed app with a services module, but not listed: not served
            self.assertError(self.post("/v1/accounts/login", {}), 404, "not_found_error", "unknown_service")
        registry.cache_clear()
        self.assertEqual(list(registry().services), ["env", "system", "audit", "studios", "ai", "accounts"])

    def test_a_module_without_a_service_stops_startup_naming_it(self) -> None:
        with override_settings(CITY_SERVICES=["city.services", "city.inputs"]):
            registry.cache_clear()
            with self.assertRaisesRegex(RuntimeError, r"city\.inputs \(CITY_SERVICES\) declares no SERVICE"):
                registry()

    def test_an_input_that_is_neither_a_serializer_nor_an_input_spec_is_refused(self) -> None:
        action = Action("bad", declared_service.record, input=dict)  # type: ignore[arg-type]
        with self.assertRaisesRegex(TypeError, "DRF serializer class or an InputSpec"):
            action.input_spec  # noqa: B018

    def test_every_declared_action_has_an_input_spec_with_an_object_schema(self) -> None:
        for service in registry().services.values():
            for action in service.actions:
                with self.subTest(action=f"{service.id}/{action.name}"):
                    self.assertIsInstance(action.input_spec, InputSpec)
                    schema = action.input_spec.json_schema()
                    self.assertEqual(schema["type"], "object")
                    self.assertIsInstance(schema["properties"], dict)


@override_settings(CITY_SERVICES=WITH_GARDEN)
class DispatcherValidatesDeclaredInputTests(ApiTestMixin, TestCase):
    def setUp(self) -> None:
        super().setUp()
        registry.cache_clear()
        self.addCleanup(registry.cache_clear)
        declared_service.RECEIVED.clear()

    def test_the_handler_receives_the_validated_data_with_defaults(self) -> None:
        body = self.assertOk(self.post("/v1/garden/plant", {"name": "Ivy", "wet": True}))
        self.assertEqual(body["received"], {"name": "Ivy", "height": 10, "wet": True})

    def test_query_strings_are_converted_as_the_fields_say(self) -> None:
        body = self.assertOk(self.get("/v1/garden/plants", {"name": "Ivy", "height": "42", "wet": "1", "kind": "moss"}))
        self.assertEqual(body["received"], {"name": "Ivy", "height": 42, "wet": True, "kind": "moss"})
        head = self.client.head("/v1/garden/plants?name=Ivy")
        self.assertEqual((head.status_code, head.content), (200, b""))

    def test_bad_input_never_reaches_the_handler(self) -> None:
        cases = [
            ("POST", "/v1/garden/plant", {"name": "Ivy", "colour": "green"}, "colour", "unknown_field"),
            ("POST", "/v1/garden/plant", {}, "name", "invalid_field"),
            ("POST", "/v1/garden/plant", {"name": 7}, "name", "invalid_field"),
            ("POST", "/v1/garden/plant", {"name": "Ivy", "height": 101}, "height", "invalid_field"),
            ("GET", "/v1/garden/plants", {"name": "Ivy", "height": "tall"}, "height", "invalid_field"),
            ("GET", "/v1/garden/plants", {"name": "Ivy", "kind": "tree"}, "kind", "invalid_field"),
            ("POST", "/v1/garden/even", {"n": 3}, "n", "invalid_value"),
            ("GET", "/v1/garden/nothing", {"x": "1"}, "x", "unknown_field"),
        ]
        for method, route, data, param, code in cases:
            with self.subTest(route=route, data=data):
                self.assertError(self.call(method, route, data), 400, "invalid_request_error", code, param)
        self.assertEqual(declared_service.RECEIVED, [])

    def test_the_unknown_field_message_names_the_accepted_ones(self) -> None:
        error = self.assertError(self.post("/v1/garden/plant", {"name": "Ivy", "colour": "green"}), 400, "invalid_request_error")
        self.assertEqual(error["message"], "Unknown field 'colour'. Accepted fields: height, kind, name, wet.")
        error = self.assertError(self.get("/v1/garden/nothing", {"x": "1"}), 400, "invalid_request_error")
        self.assertEqual(error["message"], "Unknown field 'x'. Accepted fields: none.")

    def test_an_input_spec_object_gives_the_handler_what_it_returns(self) -> None:
        self.assertEqual(self.assertOk(self.post("/v1/garden/even", {"n": 8}))["received"], {"n": 8, "half": 4})

    def test_a_sync_action_s_validators_may_query_the_database(self) -> None:
        self.assertEqual(self.assertOk(self.post("/v1/garden/claim", {"key": "FREE"}))["received"], {"key": "FREE"})
        EnvVar.objects.create(key="TAKEN", ciphertext="not read here")
        self.assertError(self.post("/v1/garden/claim", {"key": "TAKEN"}), 400, "invalid_request_error", "invalid_field", "key")

    def test_a_raw_body_reaches_its_handler_unparsed(self) -> None:
        response = self.post("/v1/garden/upload", raw=b"\x00\x01 not json", content_type="application/octet-stream")
        self.assertEqual(self.assertOk(response), {"bytes": 11, "data": {}})

    def test_the_openapi_document_shows_each_declaration(self) -> None:
        paths = self.assertOk(self.get("/v1/openapi.json"))["paths"]
        even = paths["/v1/garden/even"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        self.assertEqual(even, declared_service.EvenInput().json_schema())
        query = {p["name"]: p for p in paths["/v1/garden/plants"]["get"]["parameters"]}
        self.assertEqual(set(query), {"name", "height", "kind", "wet"})
        self.assertTrue(query["name"]["required"])
        self.assertEqual(set(paths["/v1/garden/plants"]), {"get", "head"})
        self.assertNotIn("parameters", paths["/v1/garden/nothing"]["get"])
        self.assertEqual(list(paths["/v1/garden/upload"]["post"]["requestBody"]["content"]), ["application/octet-stream"])


@pytest.mark.parametrize("declared", [declared_service.PlantInput, declared_service.EvenInput()])
def test_an_action_wraps_its_declaration_once(declared) -> None:
    action = Action("x", declared_service.record, input=declared)
    assert action.input_spec is action.input_spec
    assert Service(id="s", name="S", actions=(action,)).action("x") is action
