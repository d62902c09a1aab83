import os
from unittest import mock

from city.models import AuditEntry, EnvVar
from city.runtime_env import runtime_env
from studios.testing import CityTestCase

SECRET = "sk-live-0123456789abcdefWXYZ"


class EnvUpsertTests(CityTestCase):
    def test_it_sets_a_value_masked(self) -> None:
        body = self.assertOk(self.admin_post("/v1/env/upsert", {"key": "DEEPSEEK_API_KEY", "value": SECRET, "description": "prod key"}))
        self.assertEqual(body["value"], "sk-…WXYZ")
        self.assertEqual((body["key"], body["source"], body["changed"]), ("DEEPSEEK_API_KEY", "db", True))
        self.assertNotIn(SECRET, str(body))
        self.assertEqual(runtime_env.get("DEEPSEEK_API_KEY"), SECRET)

    def test_values_are_encrypted_at_rest(self) -> None:
        self.admin_post("/v1/env/upsert", {"key": "DEEPSEEK_API_KEY", "value": SECRET})
        row = EnvVar.objects.get(key="DEEPSEEK_API_KEY")
        self.assertNotIn(SECRET, row.ciphertext)
        self.assertNotIn("0123456789", row.ciphertext)

    def test_the_same_value_again_changes_nothing(self) -> None:
        self.admin_post("/v1/env/upsert", {"key": "DEEPSEEK_API_KEY", "value": SECRET})
        body = self.assertOk(self.admin_post("/v1/env/upsert", {"key": "DEEPSEEK_API_KEY", "value": SECRET}))
        self.assertFalse(body["changed"])
        self.assertEqual(AuditEntry.objects.filter(action="env/upsert").count(), 1)

    def test_the_database_value_wins_over_the_process(self) -> None:
        os.environ["TEST_ONLY_KEY_X"] = "from-process"
        self.addCleanup(os.environ.pop, "TEST_ONLY_KEY_X")
        self.assertEqual(runtime_env.get("TEST_ONLY_KEY_X"), "from-process")
        listed = self.assertOk(self.admin_get("/v1/env/list"))
        self.assertNotIn("TEST_ONLY_KEY_X", [i["key"] for i in listed["items"]])  # undeclared process keys stay private
        self.admin_post("/v1/env/upsert", {"key": "TEST_ONLY_KEY_X", "value": "from-db"})
        self.assertEqual(runtime_env.get("TEST_ONLY_KEY_X"), "from-db")
        body = self.assertOk(self.admin_post("/v1/env/remove", {"key": "TEST_ONLY_KEY_X"}))
        self.assertEqual((body["source"], body["value"]), ("process", "fro…cess"))
        self.assertEqual(runtime_env.get("TEST_ONLY_KEY_X"), "from-process")

    def test_bad_keys_are_refused(self) -> None:
        for key, code in (
            ("lower", "invalid_key"),
            ("1ABC", "invalid_key"),
            ("A-B", "invalid_key"),
            ("", "invalid_field"),
            ("A" * 200, "invalid_field"),
        ):
            self.assertError(self.admin_post("/v1/env/upsert", {"key": key, "value": "v"}), 400, "invalid_request_error", code, "key")
        self.assertEqual(EnvVar.objects.count(), 0)

    def test_startup_only_keys_are_refused(self) -> None:
        for key in ("ADMIN_SECRET_KEY", "CITY_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CITY_MAX_BODY_BYTES"):
            error = self.assertError(
                self.admin_post("/v1/env/upsert", {"key": key, "value": "v"}), 400, "invalid_request_error", "invalid_key", "key"
            )
            self.assertIn("start-up", error["message"])
        self.assertEqual(EnvVar.objects.count(), 0)

    def test_bad_values_are_refused(self) -> None:
        for value in (1, None, True, ["x"], "a\x00b"):
            self.assertError(
                self.admin_post("/v1/env/upsert", {"key": "X_KEY", "value": value}), 400, "invalid_request_error", param="value"
            )
        self.assertEqual(EnvVar.objects.count(), 0)

    def test_it_is_admin_only(self) -> None:
        self.assertError(self.post("/v1/env/upsert", {"key": "X_KEY", "value": "v"}, token=self.bob_token), 403, "permission_error")
        self.assertError(self.post("/v1/env/upsert", {"key": "X_KEY", "value": "v"}), 401, "authentication_error")

    def test_the_audit_entry_names_the_key_never_the_value(self) -> None:
        self.admin_post("/v1/env/upsert", {"key": "DEEPSEEK_API_KEY", "value": SECRET})
        entry = AuditEntry.objects.get(action="env/upsert")
        self.assertEqual(entry.target, "DEEPSEEK_API_KEY")
        self.assertNotIn(SECRET, str(entry.detail))


class EnvListTests(CityTestCase):
    def test_it_lists_masked_values_with_source(self) -> None:
        self.admin_post("/v1/env/upsert", {"key": "ZED_API_KEY", "value": SECRET, "description": "zed"})
        body = self.assertOk(self.admin_get("/v1/env/list"))
        item = next(i for i in body["items"] if i["key"] == "ZED_API_KEY")
        self.assertEqual(item["value"], "sk-…WXYZ")
        self.assertEqual((item["source"], item["is_set"], item["description"]), ("db", True, "zed"))
        self.assertNotIn(SECRET, str(body))

    def test_short_values_are_fully_masked(self) -> None:
        self.admin_post("/v1/env/upsert", {"key": "SHORT_KEY", "value": "abc123"})
        item = next(i for i in self.assertOk(self.admin_get("/v1/env/list"))["items"] if i["key"] == "SHORT_KEY")
        self.assertEqual(item["value"], "…")

    def test_urls_are_shown_but_for_their_credentials(self) -> None:
        self.admin_post("/v1/env/upsert", {"key": "DEEPSEEK_BASE_URL", "value": "http://127.0.0.1:8000/v1"})
        # Credentials can only come from the process environment now (env/upsert refuses them): still hidden.
        process = {
            "OPENAI_BASE_URL": "https://bob:hunter2-secret@proxy.example/v1?key=sk-query-secret",
            "GITHUB_API_BASE_URL": "not a url, maybe a secret",
        }
        with mock.patch.dict(os.environ, process):
            items = {i["key"]: i["value"] for i in self.assertOk(self.admin_get("/v1/env/list"))["items"]}
        self.assertEqual(items["DEEPSEEK_BASE_URL"], "http://127.0.0.1:8000/v1")
        self.assertEqual(items["OPENAI_BASE_URL"], "https://…@proxy.example/v1?…")
        self.assertEqual(items["GITHUB_API_BASE_URL"], "not…cret")
        upserted = self.assertOk(self.admin_post("/v1/env/upsert", {"key": "ZAI_BASE_URL", "value": "https://gw.example/api/paas/v4"}))
        self.assertEqual(upserted["value"], "https://gw.example/api/paas/v4")

    def test_a_url_city_cannot_call_is_refused_by_name_and_changes_nothing(self) -> None:
        cases = {
            "http://user:hunter2@proxy.example/v1": "user name or password",
            "127.0.0.1:8000/v1": "http:// or https://",
            "ftp://files.example/": "http:// or https://",
            "http://127.0.0.1:notaport/v1": "not a URL",
            "http:///v1": "name a host",
        }
        for value, problem in cases.items():
            with self.subTest(value=value):
                error = self.assertError(
                    self.admin_post("/v1/env/upsert", {"key": "DEEPSEEK_BASE_URL", "value": value}),
                    400,
                    "invalid_request_error",
                    "invalid_value",
                )
                self.assertIn(problem, error["message"])
                self.assertNotIn("hunter2", error["message"])
        self.assertFalse(EnvVar.objects.filter(key="DEEPSEEK_BASE_URL").exists())
        response = self.admin_post("/v1/env/import", {"content": "DEEPSEEK_API_KEY=sk-x\nDEEPSEEK_BASE_URL=localhost:8000\n"})
        error = self.assertError(response, 400, "invalid_request_error", "env_import_rejected")
        self.assertEqual([r["key"] for r in error["details"]["rejected"]], ["DEEPSEEK_BASE_URL"])
        self.assertFalse(EnvVar.objects.filter(key__startswith="DEEPSEEK_").exists())  # all or nothing

    def test_it_is_admin_only(self) -> None:
        self.assertError(self.get("/v1/env/list", token=self.bob_token), 403, "permission_error")


class EnvRemoveTests(CityTestCase):
    def test_it_removes_and_falls_back_to_the_process(self) -> None:
        self.admin_post("/v1/env/upsert", {"key": "ZED_API_KEY", "value": SECRET})
        body = self.assertOk(self.admin_post("/v1/env/remove", {"key": "ZED_API_KEY"}))
        self.assertEqual((body["removed"], body["source"]), (True, None))
        self.assertFalse(EnvVar.objects.filter(key="ZED_API_KEY").exists())
        self.assertIsNone(runtime_env.get("ZED_API_KEY"))

    def test_an_unset_key_is_404(self) -> None:
        self.assertError(self.admin_post("/v1/env/remove", {"key": "NEVER_SET"}), 404, "not_found_error", "env_not_found", "key")


class EnvImportTests(CityTestCase):
    def test_it_imports_and_reports(self) -> None:
        self.admin_post("/v1/env/upsert", {"key": "KEEP_KEY", "value": "same"})
        content = "# comment\nexport A_KEY=1\nB_KEY=\"two words\"\nKEEP_KEY=same\n\nC_KEY='x=y'\n"
        body = self.assertOk(self.admin_post("/v1/env/import", {"content": content}))
        self.assertEqual(body, {"set": ["A_KEY", "B_KEY", "C_KEY"], "unchanged": ["KEEP_KEY"], "rejected": []})
        self.assertEqual(runtime_env.get("B_KEY"), "two words")
        self.assertEqual(runtime_env.get("C_KEY"), "x=y")

    def test_one_bad_line_imports_nothing(self) -> None:
        content = "A_KEY=1\nthis is not a pair\nCITY_PORT=1\nlower=2\nA_KEY=3\n"
        error = self.assertError(
            self.admin_post("/v1/env/import", {"content": content}), 400, "invalid_request_error", "env_import_rejected", "content"
        )
        rejected = error["details"]["rejected"]
        self.assertEqual([r["line"] for r in rejected], [2, 3, 4, 5])
        self.assertIn("start-up", rejected[1]["reason"])
        self.assertIn("line 1", rejected[3]["reason"])
        self.assertEqual(EnvVar.objects.count(), 0)

    def test_empty_content_is_400(self) -> None:
        self.assertError(self.admin_post("/v1/env/import", {"content": "# nothing\n"}), 400, "invalid_request_error", "env_import_empty")
        self.assertError(self.admin_post("/v1/env/import", {}), 400, "invalid_request_error", param="content")

    def test_values_never_come_back(self) -> None:
        body = self.admin_post("/v1/env/import", {"content": f"A_KEY={SECRET}\nbad line"})
        self.assertNotIn(SECRET, body.content.decode())


class UnreadableEnvTests(CityTestCase):
    """A value stored under a CITY_SECRET_KEY that City no longer has (rotated without a fallback)."""

    def setUp(self) -> None:
        super().setUp()
        from cryptography.fernet import Fernet

        foreign = Fernet(Fernet.generate_key()).encrypt(b"sk-old-value-123456").decode()
        EnvVar.objects.create(key="OLD_API_KEY", ciphertext=foreign)
        runtime_env.invalidate()

    def test_it_reads_as_unset_and_other_keys_still_work(self) -> None:
        self.admin_post("/v1/env/upsert", {"key": "NEW_API_KEY", "value": "fine"})
        self.assertIsNone(runtime_env.get("OLD_API_KEY"))
        self.assertEqual(runtime_env.get("NEW_API_KEY"), "fine")

    def test_the_list_flags_it(self) -> None:
        item = next(i for i in self.assertOk(self.admin_get("/v1/env/list"))["items"] if i["key"] == "OLD_API_KEY")
        self.assertEqual((item["source"], item["is_set"], item["readable"]), ("db", False, False))

    def test_upsert_replaces_it(self) -> None:
        body = self.assertOk(self.admin_post("/v1/env/upsert", {"key": "OLD_API_KEY", "value": "sk-new-value-123456"}))
        self.assertTrue(body["changed"])
        self.assertEqual(runtime_env.get("OLD_API_KEY"), "sk-new-value-123456")

    def test_import_replaces_it(self) -> None:
        body = self.assertOk(self.admin_post("/v1/env/import", {"content": "OLD_API_KEY=sk-imported-1234567"}))
        self.assertEqual(body["set"], ["OLD_API_KEY"])
