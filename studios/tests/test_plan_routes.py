"""studios/plans/*: create, update, remove, assign and list, money in exact dollars, and tokens/apply's plan_id."""

from datetime import timedelta
from typing import Any

import orjson
from django.utils import timezone

from city.models import AuditEntry
from studios import operations
from studios.credentials import token_cache
from studios.models import Plan, Studio, UserToken
from studios.testing import ADMIN_ACTOR, CityTestCase


class PlanRoutesTestCase(CityTestCase):
    def create(self, **fields: Any) -> dict[str, Any]:
        return self.assertOk(self.admin_post("/v1/studios/plans/create", {"name": "Gold", **fields}))

    def assign(self, **body: Any) -> Any:
        return self.admin_post("/v1/studios/plans/assign", body)


class CreatePlanTests(PlanRoutesTestCase):
    def test_a_plan_keeps_every_field_and_money_exactly(self) -> None:
        plan = self.create(
            models=["gpt-5*", "deepseek-v4-flash"],
            max_cost_per_request=0.000001,
            monthly_budget=12345.678901,
            rpm=60,
            tpm=100_000,
            max_concurrency=4,
        )
        self.assertTrue(plan["id"].startswith("plan_"))
        self.assertEqual(plan["object"], "plan")
        self.assertEqual(plan["models"], ["gpt-5*", "deepseek-v4-flash"])
        stored = Plan.objects.get(id=plan["id"])
        self.assertEqual((stored.max_cost_per_request, stored.monthly_budget), (1, 12_345_678_901))
        self.assertEqual((stored.rpm, stored.tpm, stored.max_concurrency), (60, 100_000, 4))
        # The JSON text itself reads as given, not as a binary neighbour (0.000001 → 1e-06 is the same number).
        listed = self.admin_get("/v1/studios/plans/list").content
        self.assertIn(b'"monthly_budget":12345.678901', listed)
        self.assertEqual(orjson.loads(listed)["items"][0]["max_cost_per_request"], 0.000001)
        self.assertEqual((plan["studios"], plan["tokens"]), (0, 0))
        entry = AuditEntry.objects.get(action="studios/plans/create")
        self.assertEqual((entry.target, entry.actor, entry.outcome), (plan["id"], "admin", "ok"))

    def test_limits_left_out_are_none_and_whole_dollars_are_integers(self) -> None:
        plan = self.create(monthly_budget=50)
        self.assertEqual(plan["monthly_budget"], 50)
        self.assertIsInstance(plan["monthly_budget"], int)
        for field in ("models", "max_cost_per_request", "rpm", "tpm", "max_concurrency"):
            self.assertIsNone(plan[field], field)

    def test_bad_money_is_refused_naming_the_field(self) -> None:
        for value in (True, "5", -0.01, 0.0000001, 0.1 + 0.2, 1e12, [1], {"usd": 1}):
            with self.subTest(value=value):
                error = self.assertError(
                    self.admin_post("/v1/studios/plans/create", {"name": "Bad", "monthly_budget": value}),
                    400,
                    "invalid_request_error",
                    "invalid_field",
                    "monthly_budget",
                )
                self.assertIn("monthly_budget", error["message"])
        self.assertFalse(Plan.objects.exists())

    def test_nan_and_infinity_are_not_json(self) -> None:
        for raw in (b'{"name": "x", "max_cost_per_request": NaN}', b'{"name": "x", "max_cost_per_request": 1e400}'):
            with self.subTest(raw=raw):
                response = self.admin_post("/v1/studios/plans/create", raw=raw)
                self.assertEqual(response.status_code, 400)
                self.assertEqual(response.json()["error"]["type"], "invalid_request_error")

    def test_bad_fields_are_refused_by_name(self) -> None:
        cases = [
            ({"name": ""}, "name"),
            ({"name": "x" * 101}, "name"),
            ({"name": "x", "rpm": 0}, "rpm"),
            ({"name": "x", "max_concurrency": 0}, "max_concurrency"),
            ({"name": "x", "tpm": 1.5}, "tpm"),
            ({"name": "x", "models": "gpt-5"}, "models"),
            ({"name": "x", "models": ["gpt 5"]}, "models.0"),
            ({"name": "x", "models": ["gpt-5", ""]}, "models.1"),
            ({"name": "x", "models": [7]}, "models.0"),
        ]
        for body, param in cases:
            with self.subTest(body=body):
                self.assertError(self.admin_post("/v1/studios/plans/create", body), 400, "invalid_request_error", param=param)
        self.assertError(
            self.admin_post("/v1/studios/plans/create", {"name": "x", "budget": 5}), 400, "invalid_request_error", "unknown_field", "budget"
        )

    def test_names_are_unique_whatever_their_case(self) -> None:
        self.create()
        error = self.assertError(
            self.admin_post("/v1/studios/plans/create", {"name": "GOLD"}), 409, "invalid_request_error", "plan_name_taken", "name"
        )
        self.assertIn("Gold", error["message"])

    def test_only_the_admin_manages_plans(self) -> None:
        for route in ("plans/create", "plans/update", "plans/remove", "plans/assign"):
            with self.subTest(route=route):
                self.assertError(self.post(f"/v1/studios/{route}", {"name": "x"}, token=self.bob_token), 403, "permission_error")
        self.assertError(self.get("/v1/studios/plans/list", token=self.bob_token), 403, "permission_error")
        self.assertError(self.get("/v1/studios/plans/list"), 401, "authentication_error")


class UpdatePlanTests(PlanRoutesTestCase):
    def test_a_field_given_replaces_and_null_clears(self) -> None:
        plan = self.create(models=["gpt-5*"], rpm=10, monthly_budget=5)
        created = Plan.objects.get(id=plan["id"]).updated_at
        body = self.assertOk(self.admin_post("/v1/studios/plans/update", {"plan_id": plan["id"], "rpm": None, "models": None, "tpm": 7}))
        self.assertEqual((body["rpm"], body["models"], body["tpm"], body["monthly_budget"]), (None, None, 7, 5))
        body = self.assertOk(self.admin_post("/v1/studios/plans/update", {"plan_id": plan["id"], "models": [], "name": "Silver"}))
        self.assertEqual((body["models"], body["name"]), ([], "Silver"))
        self.assertGreater(Plan.objects.get(id=plan["id"]).updated_at, created)
        entries = AuditEntry.objects.filter(action="studios/plans/update").order_by("id")
        self.assertEqual([e.detail["changed"] for e in entries], [["models", "rpm", "tpm"], ["models", "name"]])

    def test_an_update_that_changes_nothing_is_not_audited(self) -> None:
        plan = self.create(rpm=10)
        self.assertOk(self.admin_post("/v1/studios/plans/update", {"plan_id": plan["id"], "rpm": 10}))
        self.assertFalse(AuditEntry.objects.filter(action="studios/plans/update").exists())

    def test_unknown_plan_and_taken_name(self) -> None:
        plan = self.create()
        self.create(name="Silver")
        self.assertError(
            self.admin_post("/v1/studios/plans/update", {"plan_id": "plan_nope", "rpm": 1}),
            404,
            "not_found_error",
            "plan_not_found",
            "plan_id",
        )
        self.assertError(
            self.admin_post("/v1/studios/plans/update", {"plan_id": plan["id"], "name": "silver"}),
            409,
            "invalid_request_error",
            "plan_name_taken",
        )
        failed = AuditEntry.objects.filter(action="studios/plans/update").latest("id")
        self.assertEqual(failed.outcome, "409 plan_name_taken")


class AssignPlanTests(PlanRoutesTestCase):
    def test_a_studio_and_a_token_get_a_plan_and_lose_it(self) -> None:
        plan = self.create()
        studio = self.assertOk(self.assign(plan_id=plan["id"], studio_id=self.alice_studio.id))
        self.assertEqual((studio["object"], studio["plan_id"]), ("studio", plan["id"]))
        token = self.assertOk(self.assign(plan_id=plan["id"], token_id=self.bob.id))
        self.assertEqual((token["object"], token["plan_id"]), ("user_token", plan["id"]))
        self.assertNotIn("token", token)
        listed = self.assertOk(self.admin_get("/v1/studios/plans/list"))["items"][0]
        self.assertEqual((listed["studios"], listed["tokens"]), (1, 1))
        me = self.assertOk(self.get("/v1/studios/me", token=self.bob_token))
        self.assertEqual((me["studio"]["plan_id"], me["token"]["plan_id"]), (plan["id"], plan["id"]))
        self.assertIsNone(self.assertOk(self.assign(plan_id=None, token_id=self.bob.id))["plan_id"])
        self.assertIsNone(UserToken.objects.get(id=self.bob.id).plan_id)
        entries = AuditEntry.objects.filter(action="studios/plans/assign").order_by("id")
        self.assertEqual(
            [(e.target, e.detail["plan_id"]) for e in entries],
            [(self.alice_studio.id, plan["id"]), (self.bob.id, plan["id"]), (self.bob.id, None)],
        )

    def test_exactly_one_holder_is_named(self) -> None:
        plan = self.create()
        error = self.assertError(self.assign(plan_id=plan["id"]), 400, "invalid_request_error", "invalid_field", "studio_id")
        self.assertIn("neither", error["message"])
        error = self.assertError(
            self.assign(plan_id=plan["id"], studio_id=self.alice_studio.id, token_id=self.bob.id),
            400,
            "invalid_request_error",
            param="token_id",
        )
        self.assertIn("both", error["message"])
        self.assertError(self.assign(studio_id=self.alice_studio.id), 400, "invalid_request_error", "invalid_field", "plan_id")
        self.assertIsNone(Studio.objects.get(id=self.alice_studio.id).plan_id)

    def test_unknown_ids_are_404(self) -> None:
        plan = self.create()
        self.assertError(
            self.assign(plan_id="plan_nope", studio_id=self.alice_studio.id), 404, "not_found_error", "plan_not_found", "plan_id"
        )
        self.assertError(self.assign(plan_id=plan["id"], studio_id="studio_nope"), 404, "not_found_error", "studio_not_found", "studio_id")
        self.assertError(self.assign(plan_id=plan["id"], token_id="tok_nope"), 404, "not_found_error", "token_not_found", "token_id")

    def test_removed_studios_and_revoked_tokens_get_no_plan(self) -> None:
        plan = self.create()
        operations.revoke_token(self.bob.id, actor=ADMIN_ACTOR)
        operations.set_studio_status(self.charlie_studio.id, Studio.Status.REMOVED, actor=ADMIN_ACTOR)
        self.assertError(self.assign(plan_id=plan["id"], token_id=self.bob.id), 409, "invalid_request_error", "token_revoked")
        self.assertError(self.assign(plan_id=plan["id"], studio_id=self.charlie_studio.id), 409, "invalid_request_error", "studio_removed")

    def test_assigning_drops_the_cached_tokens_of_that_studio_and_that_token(self) -> None:
        plan = self.create()
        self.assertOk(self.get("/v1/studios/me", token=self.bob_token))
        self.assertOk(self.get("/v1/studios/me", token=self.charlie_token))
        self.assertEqual(len(token_cache._entries), 2)
        self.assertOk(self.assign(plan_id=plan["id"], studio_id=self.alice_studio.id))
        self.assertEqual([e.token_id for e in token_cache._entries.values()], [self.charlie.id])
        self.assertOk(self.assign(plan_id=plan["id"], token_id=self.charlie.id))
        self.assertEqual(len(token_cache._entries), 0)


class RemovePlanTests(PlanRoutesTestCase):
    def test_a_plan_in_use_is_not_removed(self) -> None:
        plan = self.create()
        self.assertOk(self.assign(plan_id=plan["id"], studio_id=self.alice_studio.id))
        self.assertOk(self.assign(plan_id=plan["id"], token_id=self.bob.id))
        self.assertOk(self.assign(plan_id=plan["id"], token_id=self.charlie.id))
        error = self.assertError(
            self.admin_post("/v1/studios/plans/remove", {"plan_id": plan["id"]}), 409, "invalid_request_error", "plan_in_use", "plan_id"
        )
        self.assertIn("1 studio(s) and 2 token(s)", error["message"])
        self.assertIn("studios/plans/assign", error["message"])
        self.assertTrue(Plan.objects.filter(id=plan["id"]).exists())
        self.assertEqual(AuditEntry.objects.filter(action="studios/plans/remove").get().outcome, "409 plan_in_use")

    def test_dead_holders_let_go_and_the_plan_goes(self) -> None:
        plan = self.create()
        self.assertOk(self.assign(plan_id=plan["id"], studio_id=self.charlie_studio.id))
        self.assertOk(self.assign(plan_id=plan["id"], token_id=self.bob.id))
        operations.set_studio_status(self.charlie_studio.id, Studio.Status.REMOVED, actor=ADMIN_ACTOR)
        UserToken.objects.filter(id=self.bob.id).update(expires_at=timezone.now() - timedelta(seconds=1))
        body = self.assertOk(self.admin_post("/v1/studios/plans/remove", {"plan_id": plan["id"]}))
        self.assertEqual(body, {"id": plan["id"], "object": "plan", "name": "Gold", "removed": True})
        self.assertFalse(Plan.objects.exists())
        self.assertIsNone(Studio.objects.get(id=self.charlie_studio.id).plan_id)
        self.assertEqual(AuditEntry.objects.get(action="studios/plans/remove").target, plan["id"])
        self.assertError(self.admin_post("/v1/studios/plans/remove", {"plan_id": plan["id"]}), 404, "not_found_error", "plan_not_found")


class ListPlansTests(PlanRoutesTestCase):
    def test_keyset_pages_newest_first_and_search(self) -> None:
        ids = [self.create(name=f"Plan {i}")["id"] for i in range(5)]
        first = self.assertOk(self.admin_get("/v1/studios/plans/list", {"limit": 2}))
        self.assertEqual([p["id"] for p in first["items"]], ids[::-1][:2])
        self.assertTrue(first["has_more"])
        rest = self.assertOk(self.admin_get("/v1/studios/plans/list", {"limit": 5, "cursor": first["next_cursor"]}))
        self.assertEqual([p["id"] for p in rest["items"]], ids[::-1][2:])
        self.assertFalse(rest["has_more"])
        found = self.assertOk(self.admin_get("/v1/studios/plans/list", {"search": "plan 3"}))
        self.assertEqual([p["id"] for p in found["items"]], [ids[3]])
        by_id = self.assertOk(self.admin_get("/v1/studios/plans/list", {"search": ids[1]}))
        self.assertEqual([p["id"] for p in by_id["items"]], [ids[1]])
        self.assertError(
            self.admin_get("/v1/studios/plans/list", {"cursor": "studio_nope"}), 400, "invalid_request_error", "invalid_cursor"
        )

    def test_counts_leave_out_dead_holders(self) -> None:
        plan = self.create()
        self.assertOk(self.assign(plan_id=plan["id"], token_id=self.bob.id))
        self.assertOk(self.assign(plan_id=plan["id"], token_id=self.charlie.id))
        operations.revoke_token(self.charlie.id, actor=ADMIN_ACTOR)
        listed = self.assertOk(self.admin_get("/v1/studios/plans/list"))["items"][0]
        self.assertEqual((listed["studios"], listed["tokens"]), (0, 1))


class TokenApplyPlanTests(PlanRoutesTestCase):
    def test_the_admin_issues_a_token_with_a_plan(self) -> None:
        plan = self.create()
        body = self.assertOk(
            self.admin_post("/v1/studios/tokens/apply", {"studio_id": self.alice_studio.id, "name": "planned", "plan_id": plan["id"]})
        )
        self.assertEqual(body["plan_id"], plan["id"])
        self.assertEqual(UserToken.objects.get(id=body["id"]).plan_id, plan["id"])
        self.assertEqual(AuditEntry.objects.get(action="studios/tokens/apply", target=body["id"]).detail["plan_id"], plan["id"])
        plain = self.assertOk(self.admin_post("/v1/studios/tokens/apply", {"studio_id": self.alice_studio.id, "name": "plain"}))
        self.assertIsNone(plain["plan_id"])

    def test_an_unknown_plan_is_404_and_issues_nothing(self) -> None:
        before = UserToken.objects.count()
        self.assertError(
            self.admin_post("/v1/studios/tokens/apply", {"studio_id": self.alice_studio.id, "name": "x", "plan_id": "plan_nope"}),
            404,
            "not_found_error",
            "plan_not_found",
            "plan_id",
        )
        self.assertEqual(UserToken.objects.count(), before)

    def test_an_accounts_own_token_cannot_give_itself_a_plan(self) -> None:
        plan = self.create()
        password = "a long passphrase 42"
        self.assertOk(
            self.admin_post("/v1/accounts/create", {"studio_id": self.alice_studio.id, "email": "erin@example.com", "password": password})
        )
        signed_in = self.assertOk(
            self.post("/v1/accounts/login", {"studio_id": self.alice_studio.id, "email": "erin@example.com", "password": password})
        )
        before = UserToken.objects.count()
        self.assertError(
            self.post("/v1/studios/tokens/apply", {"name": "own", "plan_id": plan["id"]}, token=signed_in["user_token"]),
            403,
            "permission_error",
            "not_allowed",
            "plan_id",
        )
        self.assertEqual(UserToken.objects.count(), before)
        own = self.assertOk(self.post("/v1/studios/tokens/apply", {"name": "own"}, token=signed_in["user_token"]))
        self.assertIsNone(own["plan_id"])
