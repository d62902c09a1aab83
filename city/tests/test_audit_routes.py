from studios.testing import CityTestCase


class AuditListTests(CityTestCase):
    def test_it_lists_newest_first_and_filters(self) -> None:
        studio = self.assertOk(self.admin_post("/v1/studios/create", {"name": "Audited"}))
        self.assertOk(self.admin_post("/v1/studios/pause", {"studio_id": studio["id"]}))
        body = self.assertOk(self.admin_get("/v1/audit/list", {"target": studio["id"]}))
        self.assertEqual([e["action"] for e in body["items"]], ["studios/pause", "studios/create"])
        entry = body["items"][0]
        self.assertEqual(set(entry), {"id", "actor", "action", "target", "outcome", "detail", "created_at"})
        self.assertEqual((entry["actor"], entry["outcome"]), ("admin", "ok"))
        only = self.assertOk(self.admin_get("/v1/audit/list", {"action": "studios/create", "limit": 1}))
        self.assertEqual(len(only["items"]), 1)
        self.assertTrue(only["has_more"])  # the cast's two studios were created too

    def test_a_bad_cursor_is_400(self) -> None:
        for cursor in ["abc", "-5", "0", "1.5", "99999999999999999999", "\u0661\u0662"]:  # the last: Arabic-Indic digits
            with self.subTest(cursor=cursor):
                self.assertError(self.admin_get("/v1/audit/list", {"cursor": cursor}), 400, "invalid_request_error", "invalid_cursor")

    def test_it_is_admin_only(self) -> None:
        self.assertError(self.get("/v1/audit/list", token=self.bob_token), 403, "permission_error")
