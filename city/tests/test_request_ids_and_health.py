"""Every /v1/ answer carries X-Request-Id; system/health answers HEAD, and 503 when a backing service is down."""

import re

import httpx

from city.livecity import LiveCityTestCase
from city.testing import ApiTestCase

GENERATED = re.compile(r"req_[0-9a-z]{26}")


class RequestIdTests(ApiTestCase):
    def test_each_answer_gets_a_new_request_id(self) -> None:
        first = self.get("/v1/system/health")["X-Request-Id"]
        second = self.get("/v1/system/health")["X-Request-Id"]
        self.assertRegex(first, GENERATED)
        self.assertRegex(second, GENERATED)
        self.assertNotEqual(first, second)

    def test_errors_and_the_routes_outside_the_dispatcher_carry_one_too(self) -> None:
        for response in (
            self.get("/v1/nope/x"),  # unknown service
            self.get("/v1/studios/me", token="ub_" + "x" * 43),  # unknown token
            self.post("/v1/system/health"),  # wrong method
            self.admin_post("/v1/studios/create", {"name": 5}),  # bad field
            self.get("/v1/services"),
            self.get("/v1/nope/"),  # no such route at all
        ):
            with self.subTest(response.request["PATH_INFO"]):
                self.assertRegex(response["X-Request-Id"], GENERATED)

    def test_a_client_request_id_that_looks_like_an_id_is_kept(self) -> None:
        response = self.get("/v1/system/health", headers={"X-Request-Id": "trace-42.a:b_C"})
        self.assertEqual(response["X-Request-Id"], "trace-42.a:b_C")

    def test_any_other_client_request_id_is_replaced_not_echoed(self) -> None:
        for given in ("two words", "x" * 65, "<script>", "id\u00e9"):
            with self.subTest(given):
                response = self.get("/v1/system/health", headers={"X-Request-Id": given})
                self.assertRegex(response["X-Request-Id"], GENERATED)


class HeadTests(ApiTestCase):
    def test_health_answers_head_with_the_get_status_and_no_body(self) -> None:
        response = self.client.head("/v1/system/health")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.content, b"")
        self.assertEqual(response["Content-Type"], "application/json")

    def test_head_on_an_action_that_does_not_allow_it_is_405(self) -> None:
        response = self.client.head("/v1/studios/list", HTTP_AUTHORIZATION=f"Bearer {self.admin_key}")
        self.assertEqual(response.status_code, 405)
        self.assertEqual(response["Allow"], "GET")


class HealthWhenBackingServicesAreDownTests(LiveCityTestCase):
    def assert_unhealthy(self, extra_env: dict[str, str], code: str, named: str) -> None:
        city = self.start_city(extra_env=extra_env)
        response = httpx.get(f"{city.url}/v1/system/health", timeout=30)
        self.assertEqual(response.status_code, 503, response.text)
        error = response.json()["error"]
        self.assertEqual((error["type"], error["code"]), ("api_error", code))
        self.assertIn(named, error["message"])
        self.assertNotIn("127.0.0.1:9", error["message"])  # no connection detail leaks

    def test_a_database_that_does_not_answer_is_503(self) -> None:
        self.assert_unhealthy({"DATABASE_URL": "postgres://postgres@127.0.0.1:9/city"}, "database_unavailable", "database")

    def test_a_redis_that_does_not_answer_is_503(self) -> None:
        self.assert_unhealthy({"REDIS_URL": "redis://127.0.0.1:9/0"}, "cache_unavailable", "REDIS_URL")
