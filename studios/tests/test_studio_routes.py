from city.models import AuditEntry
from studios.models import Studio
from studios.testing import CityTestCase


class CreateStudioTests(CityTestCase):
    def test_it_creates_a_studio(self) -> None:
        body = self.assertOk(self.admin_post("/v1/studios/create", {"name": "  Delta Games  "}))
        self.assertRegex(body["id"], r"^studio_[0-9a-z]{26}$")
        self.assertEqual(body["object"], "studio")
        self.assertEqual(body["name"], "Delta Games")
        self.assertEqual(body["status"], "active")
        self.assertRegex(body["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertIsNone(body["paused_at"])
        self.assertIsNone(body["removed_at"])
        self.assertTrue(Studio.objects.filter(id=body["id"], name="Delta Games").exists())

    def test_it_records_an_audit_entry(self) -> None:
        body = self.assertOk(self.admin_post("/v1/studios/create", {"name": "Audited"}))
        entry = AuditEntry.objects.get(action="studios/create", target=body["id"])
        self.assertEqual((entry.actor, entry.outcome), ("admin", "ok"))

    def test_it_requires_a_name(self) -> None:
        self.assertError(self.admin_post("/v1/studios/create", {}), 400, "invalid_request_error", "invalid_field", "name")
        self.assertError(self.admin_post("/v1/studios/create", {"name": "   "}), 400, "invalid_request_error", "invalid_field", "name")

    def test_it_refuses_a_name_that_is_not_a_string(self) -> None:
        for name in (42, True, None, ["x"], {"x": 1}):
            self.assertError(self.admin_post("/v1/studios/create", {"name": name}), 400, "invalid_request_error", param="name")
        self.assertEqual(Studio.objects.count(), 2)

    def test_it_refuses_unknown_fields(self) -> None:
        error = self.assertError(
            self.admin_post("/v1/studios/create", {"name": "x", "plan": "gold"}), 400, "invalid_request_error", "unknown_field", "plan"
        )
        self.assertIn("name", error["message"])
        self.assertEqual(Studio.objects.count(), 2)

    def test_it_refuses_a_long_name(self) -> None:
        self.assertError(self.admin_post("/v1/studios/create", {"name": "x" * 201}), 400, "invalid_request_error", param="name")

    def test_sql_ish_names_are_stored_verbatim(self) -> None:
        name = "Robert'); DROP TABLE studios_studio;--"
        body = self.assertOk(self.admin_post("/v1/studios/create", {"name": name}))
        self.assertEqual(Studio.objects.get(id=body["id"]).name, name)
        self.assertEqual(Studio.objects.count(), 3)

    def test_a_user_token_is_refused(self) -> None:
        self.assertError(self.post("/v1/studios/create", {"name": "x"}, token=self.bob_token), 403, "permission_error", "not_allowed")

    def test_a_guest_is_refused(self) -> None:
        self.assertError(self.post("/v1/studios/create", {"name": "x"}), 401, "authentication_error", "missing_credential")

    def test_get_is_405(self) -> None:
        response = self.admin_get("/v1/studios/create")
        self.assertError(response, 405, "invalid_request_error", "method_not_allowed")
        self.assertEqual(response["Allow"], "POST")


class ListStudiosTests(CityTestCase):
    def test_it_lists_newest_first(self) -> None:
        body = self.assertOk(self.admin_get("/v1/studios/list"))
        self.assertEqual(body["object"], "list")
        self.assertEqual([s["id"] for s in body["items"]], [self.charlie_studio.id, self.alice_studio.id])
        self.assertFalse(body["has_more"])
        self.assertIsNone(body["next_cursor"])

    def test_it_pages_with_a_cursor(self) -> None:
        first = self.assertOk(self.admin_get("/v1/studios/list", {"limit": 1}))
        self.assertTrue(first["has_more"])
        second = self.assertOk(self.admin_get("/v1/studios/list", {"limit": 1, "cursor": first["next_cursor"]}))
        self.assertEqual([s["id"] for s in first["items"] + second["items"]], [self.charlie_studio.id, self.alice_studio.id])
        self.assertFalse(second["has_more"])

    def test_pages_stay_stable_while_studios_are_created(self) -> None:
        first = self.assertOk(self.admin_get("/v1/studios/list", {"limit": 1}))
        self.assertOk(self.admin_post("/v1/studios/create", {"name": "Created between two pages"}))
        second = self.assertOk(self.admin_get("/v1/studios/list", {"limit": 1, "cursor": first["next_cursor"]}))
        self.assertEqual([s["id"] for s in first["items"] + second["items"]], [self.charlie_studio.id, self.alice_studio.id])
        self.assertFalse(second["has_more"])

    def test_a_cursor_city_did_not_hand_out_is_400(self) -> None:
        for cursor in ["garbage", self.bob.id, self.alice_studio.id.upper(), "studio_" + "u" * 26, self.alice_studio.id + "x"]:
            with self.subTest(cursor=cursor):
                response = self.admin_get("/v1/studios/list", {"cursor": cursor})
                self.assertError(response, 400, "invalid_request_error", "invalid_cursor", "cursor")

    def test_it_filters_by_status(self) -> None:
        self.assertOk(self.admin_post("/v1/studios/pause", {"studio_id": self.alice_studio.id}))
        body = self.assertOk(self.admin_get("/v1/studios/list", {"status": "paused"}))
        self.assertEqual([s["id"] for s in body["items"]], [self.alice_studio.id])

    def test_it_searches_by_name(self) -> None:
        body = self.assertOk(self.admin_get("/v1/studios/list", {"search": "charl"}))
        self.assertEqual([s["name"] for s in body["items"]], ["Charlie Studio"])

    def test_it_finds_by_exact_id(self) -> None:
        body = self.assertOk(self.admin_get("/v1/studios/list", {"search": self.alice_studio.id}))
        self.assertEqual([s["id"] for s in body["items"]], [self.alice_studio.id])

    def test_bad_parameters_are_400(self) -> None:
        self.assertError(self.admin_get("/v1/studios/list", {"status": "sleeping"}), 400, "invalid_request_error", param="status")
        self.assertError(self.admin_get("/v1/studios/list", {"limit": "0"}), 400, "invalid_request_error", param="limit")
        self.assertError(self.admin_get("/v1/studios/list", {"limit": "lots"}), 400, "invalid_request_error", param="limit")
        self.assertError(self.admin_get("/v1/studios/list", {"colour": "red"}), 400, "invalid_request_error", "unknown_field", "colour")

    def test_it_is_admin_only(self) -> None:
        self.assertError(self.get("/v1/studios/list", token=self.bob_token), 403, "permission_error")
        self.assertError(self.get("/v1/studios/list"), 401, "authentication_error")

    def test_it_takes_a_fixed_number_of_queries(self) -> None:
        for n in range(10):
            self.admin_post("/v1/studios/create", {"name": f"S{n}"})
        with self.assertNumQueries(1):
            self.admin_get("/v1/studios/list")


class StudioStatusTests(CityTestCase):
    def test_pause_makes_its_tokens_403(self) -> None:
        self.assertOk(self.get("/v1/studios/me", token=self.bob_token))
        body = self.assertOk(self.admin_post("/v1/studios/pause", {"studio_id": self.alice_studio.id}))
        self.assertEqual(body["status"], "paused")
        self.assertIsNotNone(body["paused_at"])
        self.assertError(self.get("/v1/studios/me", token=self.bob_token), 403, "permission_error", "studio_paused")
        self.assertOk(self.get("/v1/studios/me", token=self.charlie_token))

    def test_activate_brings_its_tokens_back(self) -> None:
        self.admin_post("/v1/studios/pause", {"studio_id": self.alice_studio.id})
        body = self.assertOk(self.admin_post("/v1/studios/activate", {"studio_id": self.alice_studio.id}))
        self.assertEqual(body["status"], "active")
        self.assertOk(self.get("/v1/studios/me", token=self.bob_token))

    def test_remove_makes_its_tokens_401_and_keeps_history(self) -> None:
        body = self.assertOk(self.admin_post("/v1/studios/remove", {"studio_id": self.alice_studio.id}))
        self.assertEqual(body["status"], "removed")
        self.assertError(self.get("/v1/studios/me", token=self.bob_token), 401, "authentication_error", "studio_removed")
        self.assertTrue(Studio.objects.filter(id=self.alice_studio.id).exists())
        self.assertEqual(self.alice_studio.tokens.count(), 1)

    def test_removal_is_final(self) -> None:
        self.admin_post("/v1/studios/remove", {"studio_id": self.alice_studio.id})
        for verb in ("activate", "pause"):
            self.assertError(
                self.admin_post(f"/v1/studios/{verb}", {"studio_id": self.alice_studio.id}), 409, "invalid_request_error", "studio_removed"
            )
        self.assertEqual(Studio.objects.get(id=self.alice_studio.id).status, "removed")

    def test_repeating_a_transition_changes_nothing(self) -> None:
        self.admin_post("/v1/studios/pause", {"studio_id": self.alice_studio.id})
        first = Studio.objects.get(id=self.alice_studio.id).paused_at
        self.assertOk(self.admin_post("/v1/studios/pause", {"studio_id": self.alice_studio.id}))
        self.assertEqual(Studio.objects.get(id=self.alice_studio.id).paused_at, first)
        self.assertEqual(AuditEntry.objects.filter(action="studios/pause").count(), 1)

    def test_an_unknown_studio_is_404_and_audited(self) -> None:
        for verb in ("pause", "activate", "remove"):
            self.assertError(
                self.admin_post(f"/v1/studios/{verb}", {"studio_id": "studio_nope"}),
                404,
                "not_found_error",
                "studio_not_found",
                "studio_id",
            )
        entry = AuditEntry.objects.filter(action="studios/remove").latest("id")
        self.assertEqual((entry.target, entry.outcome), ("studio_nope", "404 studio_not_found"))

    def test_studio_id_is_required_and_a_string(self) -> None:
        self.assertError(self.admin_post("/v1/studios/pause", {}), 400, "invalid_request_error", param="studio_id")
        self.assertError(self.admin_post("/v1/studios/pause", {"studio_id": 7}), 400, "invalid_request_error", param="studio_id")

    def test_users_cannot_pause(self) -> None:
        self.assertError(self.post("/v1/studios/pause", {"studio_id": self.alice_studio.id}, token=self.bob_token), 403, "permission_error")
        self.assertEqual(Studio.objects.get(id=self.alice_studio.id).status, "active")


class StudioMeTests(CityTestCase):
    def test_a_user_sees_its_studio_and_token(self) -> None:
        body = self.assertOk(self.get("/v1/studios/me", token=self.bob_token))
        self.assertEqual(body["studio"]["id"], self.alice_studio.id)
        self.assertEqual(body["token"]["id"], self.bob.id)
        self.assertNotIn("token", body["token"])
        self.assertNotIn("digest", str(body))

    def test_another_studio_id_is_403(self) -> None:
        self.assertError(
            self.get("/v1/studios/me", {"studio_id": self.charlie_studio.id}, token=self.bob_token),
            403,
            "permission_error",
            "studio_mismatch",
        )

    def test_its_own_studio_id_is_fine(self) -> None:
        self.assertOk(self.get("/v1/studios/me", {"studio_id": self.alice_studio.id}, token=self.bob_token))
