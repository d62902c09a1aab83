from city.testing import ApiTestCase


class ServicesRouteTests(ApiTestCase):
    def test_guest_sees_services_without_actions(self) -> None:
        body = self.assertOk(self.get("/v1/services"))
        ids = [item["id"] for item in body["items"]]
        self.assertIn("studios", ids)
        self.assertIn("env", ids)
        for item in body["items"]:
            self.assertEqual(set(item), {"id", "name", "env"})

    def test_the_ai_service_names_the_provider_keys_that_make_models_callable(self) -> None:
        body = self.assertOk(self.get("/v1/services"))
        ai = next(item for item in body["items"] if item["id"] == "ai")
        keys = {entry["key"]: entry for entry in ai["env"]}
        self.assertLessEqual(
            {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY", "LOCAL_OPENAI_BASE_URL"}, set(keys)
        )
        self.assertFalse(any(entry["required"] for entry in keys.values()))  # any one provider is enough

    def test_admin_sees_actions_with_methods_and_allow(self) -> None:
        body = self.assertOk(self.admin_get("/v1/services"))
        studios = next(item for item in body["items"] if item["id"] == "studios")
        pause = next(a for a in studios["actions"] if a["name"] == "pause")
        self.assertEqual(pause["methods"], ["POST"])
        self.assertEqual(pause["allow"], ["admin"])

    def test_post_is_405_with_allow(self) -> None:
        response = self.post("/v1/services", {})
        self.assertError(response, 405, "invalid_request_error", "method_not_allowed")
        self.assertEqual(response["Allow"], "GET")
