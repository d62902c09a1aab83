"""plan_scopes: which plans apply to a call, read from per-process caches without a query on the hot path."""

from typing import Any

from asgiref.sync import async_to_sync
from django.test import SimpleTestCase, override_settings

from city.errors import ApiError
from city.identity import ADMIN_IDENTITY, Identity
from studios import plan_operations
from studios.credentials import resolve_user_token, token_cache
from studios.models import Studio
from studios.operations import set_studio_status
from studios.plans import PlanLimits, PlanScopes, plan_cache, plan_scopes, studio_cache
from studios.testing import ADMIN_ACTOR, CityTestCase


def limits(models: tuple[str, ...] | None) -> PlanLimits:
    return PlanLimits(
        id="plan_x", name="x", models=models, max_cost_per_request=None, monthly_budget=None, rpm=None, tpm=None, max_concurrency=None
    )


class AllowsTests(SimpleTestCase):
    def test_ids_and_glob_patterns_case_sensitive(self) -> None:
        plan = limits(("gpt-5*", "deepseek-v4-flash", "claude-?aiku-4-5"))
        for model in ("gpt-5", "gpt-5-mini", "deepseek-v4-flash", "claude-haiku-4-5"):
            self.assertTrue(plan.allows(model), model)
        for model in ("GPT-5", "deepseek-v4-pro", "gpt-4.1", "claude-sonnet-4-6", "x-gpt-5"):
            self.assertFalse(plan.allows(model), model)

    def test_none_allows_every_model_and_empty_none(self) -> None:
        self.assertTrue(limits(None).allows("anything"))
        self.assertFalse(limits(()).allows("gpt-5"))

    def test_the_token_plan_wins(self) -> None:
        studio, token = limits(None), limits(())
        self.assertIs(PlanScopes("studio_a", "tok_a", studio, token).effective, token)
        self.assertIs(PlanScopes("studio_a", "tok_a", studio, None).effective, studio)
        self.assertIsNone(PlanScopes("studio_a", None, None, None).effective)


class PlanScopesTests(CityTestCase):
    def setUp(self) -> None:
        super().setUp()
        plan_cache.forget()
        studio_cache.clear()
        self.gold = plan_operations.create_plan("Gold", {"models": ["gpt-5*"], "monthly_budget": 5_000_000, "rpm": 60}, actor=ADMIN_ACTOR)
        self.solo = plan_operations.create_plan("Solo", {"max_cost_per_request": 10_000, "max_concurrency": 2}, actor=ADMIN_ACTOR)

    def scopes(self, identity: Identity, studio_id: str) -> PlanScopes:
        return async_to_sync(plan_scopes)(identity, studio_id)

    def identity(self, raw: str) -> Identity:
        return async_to_sync(resolve_user_token)(raw)

    def assign(self, plan_id: str | None, **holder: Any) -> None:
        with self.captureOnCommitCallbacks(execute=True):
            plan_operations.assign_plan(plan_id, actor=ADMIN_ACTOR, **holder)

    def test_a_token_carries_its_plan_and_its_studios(self) -> None:
        self.assign(self.gold.id, studio_id=self.alice_studio.id)
        self.assign(self.solo.id, token_id=self.bob.id)
        bob = self.identity(self.bob_token)
        self.assertEqual((bob.plan_id, bob.studio_plan_id), (self.solo.id, self.gold.id))
        scopes = self.scopes(bob, self.alice_studio.id)
        self.assertEqual((scopes.studio_id, scopes.token_id), (self.alice_studio.id, self.bob.id))
        assert scopes.studio_plan is not None and scopes.token_plan is not None
        self.assertEqual(scopes.studio_plan, PlanLimits.of(self.gold))
        self.assertEqual(
            (scopes.studio_plan.models, scopes.studio_plan.monthly_budget, scopes.studio_plan.rpm), (("gpt-5*",), 5_000_000, 60)
        )
        self.assertEqual((scopes.token_plan.name, scopes.token_plan.max_cost_per_request), ("Solo", 10_000))
        self.assertIs(scopes.effective, scopes.token_plan)
        self.assertTrue(scopes.token_plan.allows("deepseek-v4-flash"))  # Solo allows every model

    def test_no_plan_anywhere(self) -> None:
        charlie = self.identity(self.charlie_token)
        with self.assertNumQueries(0):  # no plan id: the plans are not even read
            scopes = self.scopes(charlie, self.charlie_studio.id)
        self.assertEqual((scopes.studio_plan, scopes.token_plan, scopes.effective), (None, None, None))

    def test_the_hot_path_makes_no_query_and_an_invalidation_drops_the_plans(self) -> None:
        self.assign(self.gold.id, studio_id=self.alice_studio.id)
        bob = self.identity(self.bob_token)
        with self.assertNumQueries(1):  # every plan, in one query
            self.scopes(bob, self.alice_studio.id)
        with self.assertNumQueries(0):
            self.assertEqual(self.scopes(bob, self.alice_studio.id).studio_plan.rpm, 60)  # type: ignore[union-attr]
        with self.captureOnCommitCallbacks(execute=True):
            plan_operations.update_plan(self.gold.id, {"rpm": 5}, actor=ADMIN_ACTOR)  # publishes ("plan", id)
        self.assertIsNone(plan_cache.current())
        with self.assertNumQueries(1):
            self.assertEqual(self.scopes(bob, self.alice_studio.id).studio_plan.rpm, 5)  # type: ignore[union-attr]
        with self.assertNumQueries(0):
            self.scopes(bob, self.alice_studio.id)

    def test_the_plans_are_read_again_after_the_ttl(self) -> None:
        self.assign(self.solo.id, token_id=self.bob.id)
        bob = self.identity(self.bob_token)
        now = [1000.0]
        plan_cache.clock = lambda: now[0]
        self.addCleanup(delattr, plan_cache, "clock")
        with override_settings(CITY_TOKEN_CACHE_SECONDS=2.0):
            with self.assertNumQueries(1):
                self.scopes(bob, self.alice_studio.id)
            now[0] += 1.9
            with self.assertNumQueries(0):
                self.scopes(bob, self.alice_studio.id)
            now[0] += 0.2
            with self.assertNumQueries(1):
                self.scopes(bob, self.alice_studio.id)

    def test_a_plan_assigned_after_the_cache_was_read_is_found(self) -> None:
        self.assign(self.gold.id, studio_id=self.alice_studio.id)
        self.scopes(self.identity(self.bob_token), self.alice_studio.id)  # the plans, cached
        newer = plan_operations.create_plan("Newer", {"rpm": 3}, actor=ADMIN_ACTOR)  # its broadcast lost: no on-commit run
        plan_operations.assign_plan(newer.id, token_id=self.bob.id, actor=ADMIN_ACTOR)
        token_cache.clear()
        self.assertIsNotNone(plan_cache.current())
        scopes = self.scopes(self.identity(self.bob_token), self.alice_studio.id)
        self.assertEqual(scopes.token_plan.rpm, 3)  # type: ignore[union-attr]

    def test_assigning_reaches_the_tokens_identity(self) -> None:
        self.assertIsNone(self.identity(self.bob_token).plan_id)
        self.assign(self.solo.id, token_id=self.bob.id)
        self.assertEqual(self.identity(self.bob_token).plan_id, self.solo.id)
        self.assign(self.gold.id, studio_id=self.alice_studio.id)
        self.assertEqual(self.identity(self.bob_token).studio_plan_id, self.gold.id)
        self.assign(None, studio_id=self.alice_studio.id)
        self.assertIsNone(self.identity(self.bob_token).studio_plan_id)

    def test_a_token_of_another_studio_is_refused(self) -> None:
        with self.assertRaises(ApiError) as refused:
            self.scopes(self.identity(self.bob_token), self.charlie_studio.id)
        self.assertEqual((refused.exception.status, refused.exception.code), (403, "studio_mismatch"))


class AdminPlanScopesTests(CityTestCase):
    def setUp(self) -> None:
        super().setUp()
        plan_cache.forget()
        studio_cache.clear()
        self.gold = plan_operations.create_plan("Gold", {"rpm": 60}, actor=ADMIN_ACTOR)

    def scopes(self, studio_id: str) -> PlanScopes:
        return async_to_sync(plan_scopes)(ADMIN_IDENTITY, studio_id)

    def refusal(self, studio_id: str) -> tuple[int, str | None]:
        with self.assertRaises(ApiError) as refused:
            self.scopes(studio_id)
        return refused.exception.status, refused.exception.code

    def test_the_admin_gets_the_named_studios_plan_from_a_cache(self) -> None:
        with self.captureOnCommitCallbacks(execute=True):
            plan_operations.assign_plan(self.gold.id, studio_id=self.alice_studio.id, actor=ADMIN_ACTOR)
        with self.assertNumQueries(2):  # the studio, then every plan
            scopes = self.scopes(self.alice_studio.id)
        self.assertEqual((scopes.token_id, scopes.token_plan, scopes.studio_plan.name), (None, None, "Gold"))  # type: ignore[union-attr]
        with self.assertNumQueries(0):
            self.scopes(self.alice_studio.id)
        with self.captureOnCommitCallbacks(execute=True):
            plan_operations.assign_plan(None, studio_id=self.alice_studio.id, actor=ADMIN_ACTOR)  # publishes ("studio", id)
        with self.assertNumQueries(1):
            self.assertIsNone(self.scopes(self.alice_studio.id).studio_plan)

    def test_unknown_paused_and_removed_studios(self) -> None:
        self.assertEqual(self.refusal("studio_nope"), (404, "studio_not_found"))
        self.scopes(self.alice_studio.id)
        with self.captureOnCommitCallbacks(execute=True):
            set_studio_status(self.alice_studio.id, Studio.Status.PAUSED, actor=ADMIN_ACTOR)
        self.assertEqual(self.refusal(self.alice_studio.id), (403, "studio_paused"))
        with self.captureOnCommitCallbacks(execute=True):
            set_studio_status(self.alice_studio.id, Studio.Status.REMOVED, actor=ADMIN_ACTOR)
        self.assertEqual(self.refusal(self.alice_studio.id), (403, "studio_removed"))
