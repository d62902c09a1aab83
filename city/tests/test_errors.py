from city.models import AuditEntry
from studios.models import Studio
from studios.testing import CityTestCase


class RouteErrorTests(CityTestCase):
    def test_unknown_service_is_404(self) -> None:
        error = self.assertError(self.admin_get("/v1/nope/list"), 404, "not_found_error", "unknown_service")
        self.assertIn("/v1/services", error["message"])

    def test_unknown_action_is_404_and_lists_the_actions(self) -> None:
        error = self.assertError(self.admin_post("/v1/studios/explode", {}), 404, "not_found_error", "unknown_action")
        self.assertIn("tokens/apply", error["message"])

    def test_a_service_without_an_action_is_404_and_says_how_to_name_one(self) -> None:
        error = self.assertError(self.admin_get("/v1/studios"), 404, "not_found_error", "unknown_action")
        self.assertIn("/v1/studios/{action}", error["message"])
        self.assertIn("tokens/apply", error["message"])

    def test_paths_outside_the_route_space_are_json_404s(self) -> None:
        for path in ("/v1", "/v1/", "/v1/Studios/List", "/nowhere", "/v1/studios/list/"):
            self.assertError(self.get(path), 404, "not_found_error")

    def test_wrong_method_is_405_with_allow(self) -> None:
        for method in ("PUT", "DELETE", "PATCH"):
            response = self.call(method, "/v1/studios/create", {"name": "x"}, token=self.admin_key)
            self.assertError(response, 405, "invalid_request_error", "method_not_allowed")
            self.assertEqual(response["Allow"], "POST")
        self.assertEqual(Studio.objects.count(), 2)


class BodyErrorTests(CityTestCase):
    def test_malformed_json_is_400(self) -> None:
        error = self.assertError(self.admin_post("/v1/studios/create", raw=b'{"name": '), 400, "invalid_request_error", "invalid_json")
        self.assertIn("not valid JSON", error["message"])

    def test_invalid_utf8_is_400(self) -> None:
        error = self.assertError(
            self.admin_post("/v1/studios/create", raw=b'{"name": "\xff\xfe"}'), 400, "invalid_request_error", "invalid_json"
        )
        self.assertIn("UTF-8", error["message"])

    def test_a_json_array_is_400(self) -> None:
        self.assertError(self.admin_post("/v1/studios/create", raw=b'[{"name": "x"}]'), 400, "invalid_request_error", "invalid_json")

    def test_a_wrong_content_type_is_415(self) -> None:
        response = self.admin_post("/v1/studios/create", raw=b"name=x", content_type="application/x-www-form-urlencoded")
        self.assertError(response, 415, "invalid_request_error", "unsupported_media_type")

    def test_an_empty_body_is_an_empty_object(self) -> None:
        self.assertError(self.admin_post("/v1/studios/create", raw=b""), 400, "invalid_request_error", param="name")

    def test_a_body_over_the_limit_is_413(self) -> None:
        with self.settings(CITY_MAX_BODY_BYTES=1000, DATA_UPLOAD_MAX_MEMORY_SIZE=1000):
            response = self.admin_post("/v1/studios/create", {"name": "x" * 2000})
        self.assertError(response, 413, "invalid_request_error", "body_too_large")
        self.assertEqual(Studio.objects.count(), 2)

    def test_bad_input_changes_nothing_on_any_admin_route(self) -> None:
        bad_bodies = [b"{", b"\xff", b"[]", b'"text"', b"null", b'{"studio_id": 1}', b'{"studio_id": ["x"]}', b'{"zzz": 1}']
        routes = [
            "/v1/studios/create",
            "/v1/studios/pause",
            "/v1/studios/activate",
            "/v1/studios/remove",
            "/v1/studios/tokens/apply",
            "/v1/studios/tokens/revoke",
            "/v1/studios/tokens/rotate",
            "/v1/env/upsert",
            "/v1/env/remove",
            "/v1/env/import",
        ]
        before = (Studio.objects.count(), list(Studio.objects.values_list("id", "status")), self.alice_studio.tokens.count())
        for route in routes:
            for body in bad_bodies:
                response = self.admin_post(route, raw=body)
                self.assertIn(response.status_code, {400, 404}, (route, body, response.content))
                self.assertIn("error", response.json())
        after = (Studio.objects.count(), list(Studio.objects.values_list("id", "status")), self.alice_studio.tokens.count())
        self.assertEqual(before, after)

    def test_failed_admin_calls_are_audited_with_their_outcome(self) -> None:
        self.admin_post("/v1/studios/create", raw=b"{")
        entry = AuditEntry.objects.filter(action="studios/create").latest("id")
        self.assertEqual(entry.outcome, "400 invalid_json")


class HostErrorTests(CityTestCase):
    def test_an_unserved_host_is_a_json_400_logged_in_one_line(self) -> None:
        with self.assertLogs("django.security.DisallowedHost", "WARNING") as logs:
            response = self.admin_post("/v1/studios/create", {"name": "x"}, headers={"Host": "evil.example"})
        self.assertError(response, 400, "invalid_request_error", "bad_request")
        self.assertEqual(Studio.objects.count(), 2)
        self.assertEqual(len(logs.records), 1)
        self.assertIn("evil.example", logs.records[0].getMessage())
        self.assertIsNone(logs.records[0].exc_info)
        self.assertNotIn("Traceback", logs.output[0])


class CredentialErrorTests(CityTestCase):
    def test_a_non_bearer_header_is_401(self) -> None:
        response = self.get("/v1/studios/me", headers={"Authorization": "Basic Ym9iOnNlY3JldA=="})
        self.assertError(response, 401, "authentication_error", "invalid_authorization_header")

    def test_an_unknown_token_is_401(self) -> None:
        self.assertError(self.get("/v1/studios/me", token="ub_" + "x" * 43), 401, "authentication_error", "invalid_api_key")

    def test_a_wrong_admin_key_is_401_not_admin(self) -> None:
        self.assertError(self.get("/v1/studios/list", token=self.admin_key + "x"), 401, "authentication_error")

    def test_errors_never_echo_the_credential(self) -> None:
        secret = "ub_" + "s3cr3t" * 7
        response = self.get("/v1/studios/me", token=secret)
        self.assertNotIn(b"s3cr3t", response.content)
