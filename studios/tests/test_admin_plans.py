"""The plans admin, and the plan and this month's spend on the studio and token pages."""

from datetime import UTC, datetime
from typing import Any

from django.test import override_settings
from django.utils import timezone

from city.tests.test_admin_pages import AdminPages
from studios import plan_operations
from studios.credentials import token_cache
from studios.models import Plan, Studio, UserToken
from studios.spend import _month_cost, month_key, usd_text
from studios.testing import ADMIN_ACTOR, CityTestCase

PLANS = "/admin/studios/plan/"
STUDIOS = "/admin/studios/studio/"
TOKENS = "/admin/studios/usertoken/"

asked: list[tuple[str, str, str]] = []


def month_cost_of_the_test(kind: str, scope_id: str, month: str) -> int:
    """STUDIOS_MONTH_SPEND for these tests: 12.345678901234 dollars for anyone, noting who asked."""
    asked.append((kind, scope_id, month))
    return 12_345_678_901_234


def plan_form(**fields: Any) -> dict[str, Any]:
    return {
        "name": "Gold",
        "models_allowed": "all",
        "model_patterns": "",
        "max_cost_per_request_usd": "",
        "monthly_budget_usd": "",
        "rpm": "",
        "tpm": "",
        "max_concurrency": "",
        **fields,
    }


class PlanAdminTests(AdminPages, CityTestCase):
    def test_the_add_form_takes_dollars_and_stores_micro_dollars(self) -> None:
        self.page(f"{PLANS}add/")
        form = plan_form(
            models_allowed="listed",
            model_patterns="gpt-5*\r\ndeepseek-v4-flash\r\n",
            max_cost_per_request_usd="0.000001",
            monthly_budget_usd="12345.678901",
            rpm="60",
            max_concurrency="3",
        )
        response = self.submit(f"{PLANS}add/", form)
        self.assertEqual(response.status_code, 302, response.content[:2000])
        plan = Plan.objects.get()
        self.assertEqual(plan.models, ["gpt-5*", "deepseek-v4-flash"])
        self.assertEqual((plan.max_cost_per_request, plan.monthly_budget), (1, 12_345_678_901))
        self.assertEqual((plan.rpm, plan.tpm, plan.max_concurrency), (60, None, 3))
        entry = self.audit("studios/plans/create")[0]
        self.assertEqual((entry.target, entry.actor), (plan.id, "admin:root"))

    def test_the_list_shows_limits_in_dollars_and_who_holds_each_plan(self) -> None:
        gold = plan_operations.create_plan("Gold", {"models": ["gpt-5*"], "monthly_budget": 2_500_000, "rpm": 9}, actor=ADMIN_ACTOR)
        plan_operations.create_plan("Free", {"models": []}, actor=ADMIN_ACTOR)
        plan_operations.assign_plan(gold.id, studio_id=self.alice_studio.id, actor=ADMIN_ACTOR)
        plan_operations.assign_plan(gold.id, token_id=self.bob.id, actor=ADMIN_ACTOR)
        plan_operations.assign_plan(gold.id, token_id=self.charlie.id, actor=ADMIN_ACTOR)
        response = self.page(PLANS)
        for text in ("Gold", "gpt-5*", "$2.50", "no cap", "none", f"plan__id__exact={gold.id}"):
            self.assertContains(response, text)
        rows = {row.name: row for row in response.context["cl"].result_list}
        self.assertEqual((rows["Gold"].studios_count, rows["Gold"].tokens_count), (1, 2))
        self.assertEqual((rows["Free"].studios_count, rows["Free"].tokens_count), (0, 0))
        held = self.page(TOKENS, {"plan__id__exact": gold.id})
        self.assertEqual({t.id for t in held.context["cl"].result_list}, {self.bob.id, self.charlie.id})

    def test_the_change_form_shows_dollars_and_null_clears(self) -> None:
        gold = plan_operations.create_plan("Gold", {"max_cost_per_request": 1_500_000, "models": ["gpt-5"]}, actor=ADMIN_ACTOR)
        page = self.page(f"{PLANS}{gold.id}/change/")
        self.assertContains(page, 'value="1.500000"')
        self.assertContains(page, "gpt-5</textarea>")
        response = self.submit(f"{PLANS}{gold.id}/change/", plan_form(name="Gold", monthly_budget_usd="7"))
        self.assertEqual(response.status_code, 302, response.content[:2000])
        gold.refresh_from_db()
        self.assertEqual((gold.models, gold.max_cost_per_request, gold.monthly_budget), (None, None, 7_000_000))
        self.assertEqual(self.audit("studios/plans/update")[0].detail["changed"], ["max_cost_per_request", "models", "monthly_budget"])

    def test_bad_amounts_are_refused_beside_their_field(self) -> None:
        for field, value in (("monthly_budget_usd", "-1"), ("monthly_budget_usd", "0.0000001"), ("max_cost_per_request_usd", "ten")):
            with self.subTest(field=field, value=value):
                response = self.submit(f"{PLANS}add/", plan_form(**{field: value}))
                self.assertEqual(response.status_code, 200)
                self.assertIn(field, response.context["adminform"].form.errors)
        response = self.submit(f"{PLANS}add/", plan_form(models_allowed="listed", model_patterns="gpt 5"))
        self.assertIn("model_patterns", response.context["adminform"].form.errors)
        self.assertFalse(Plan.objects.exists())

    def test_a_plan_in_use_is_not_deleted(self) -> None:
        gold = plan_operations.create_plan("Gold", {}, actor=ADMIN_ACTOR)
        plan_operations.assign_plan(gold.id, studio_id=self.alice_studio.id, actor=ADMIN_ACTOR)
        response = self.client.get(f"{PLANS}{gold.id}/delete/", follow=True)
        self.assertIn("assigned to 1 studio(s) and 0 token(s)", " ".join(self.messages_of(response)))
        response = self.submit(f"{PLANS}{gold.id}/delete/", {"post": "yes"})
        self.assertEqual(response.status_code, 302)
        self.assertTrue(Plan.objects.filter(id=gold.id).exists())

    def test_a_plan_only_dead_holders_hold_is_deleted_through_remove_plan(self) -> None:
        gold = plan_operations.create_plan("Gold", {}, actor=ADMIN_ACTOR)
        plan_operations.assign_plan(gold.id, studio_id=self.charlie_studio.id, actor=ADMIN_ACTOR)
        Studio.objects.filter(id=self.charlie_studio.id).update(status=Studio.Status.REMOVED)
        self.page(f"{PLANS}{gold.id}/delete/")
        response = self.submit(f"{PLANS}{gold.id}/delete/", {"post": "yes"})
        self.assertEqual(response.status_code, 302)
        self.assertFalse(Plan.objects.exists())
        self.assertEqual([e.target for e in self.audit("studios/plans/remove")], [gold.id])


class HolderPagesTests(AdminPages, CityTestCase):
    def setUp(self) -> None:
        super().setUp()
        asked.clear()
        self.gold = plan_operations.create_plan("Gold", {}, actor=ADMIN_ACTOR)

    @override_settings(STUDIOS_MONTH_SPEND="studios.tests.test_admin_plans.month_cost_of_the_test")
    def test_the_studio_and_token_pages_show_their_plan_and_this_months_spend(self) -> None:
        _month_cost.cache_clear()
        self.addCleanup(_month_cost.cache_clear)
        plan_operations.assign_plan(self.gold.id, studio_id=self.alice_studio.id, actor=ADMIN_ACTOR)
        month = month_key(timezone.now())
        studio_page = self.page(f"{STUDIOS}{self.alice_studio.id}/change/")
        self.assertContains(studio_page, "Gold")
        self.assertContains(studio_page, f"$12.345678901234 in {month} (UTC)")
        token_page = self.page(f"{TOKENS}{self.bob.id}/change/")
        self.assertContains(token_page, "Give it a plan")
        self.assertEqual(asked, [("studio", self.alice_studio.id, month), ("token", self.bob.id, month)])

    def test_the_default_hook_reads_the_usage_records(self) -> None:
        _month_cost.cache_clear()
        self.addCleanup(_month_cost.cache_clear)
        page = self.page(f"{TOKENS}{self.bob.id}/change/")
        self.assertContains(page, f"$0.00 in {month_key(timezone.now())} (UTC)")

    def test_a_studios_plan_is_changed_on_its_own_page_through_assign_plan(self) -> None:
        self.assertOk(self.get("/v1/studios/me", token=self.bob_token))
        url = f"{STUDIOS}{self.alice_studio.id}/plan/"
        self.assertContains(self.page(url), "No plan")
        response = self.submit(url, {"plan": self.gold.id})
        self.assertRedirects(response, f"{STUDIOS}{self.alice_studio.id}/change/", fetch_redirect_response=False)
        self.assertEqual(Studio.objects.get(id=self.alice_studio.id).plan_id, self.gold.id)
        self.assertEqual(token_cache._entries, {})  # the broadcast dropped the studio's tokens
        entry = self.audit("studios/plans/assign")[0]
        self.assertEqual((entry.actor, entry.target, entry.detail["plan_id"]), ("admin:root", self.alice_studio.id, self.gold.id))
        self.submit(url, {"plan": ""})
        self.assertIsNone(Studio.objects.get(id=self.alice_studio.id).plan_id)

    def test_a_refused_assignment_is_an_error_message_and_a_failed_audit_entry(self) -> None:
        UserToken.objects.filter(id=self.bob.id).update(revoked_at=datetime(2026, 1, 1, tzinfo=UTC))
        response = self.submit(f"{TOKENS}{self.bob.id}/plan/", {"plan": self.gold.id})
        self.assertEqual(response.status_code, 200)
        self.assertIn("revoked", " ".join(self.messages_of(response)))
        self.assertEqual(self.audit("studios/plans/assign")[0].outcome, "409 token_revoked")
        self.assertIsNone(UserToken.objects.get(id=self.bob.id).plan_id)

    def test_a_token_is_issued_with_a_plan(self) -> None:
        response = self.submit(f"{TOKENS}add/", {"studio": self.alice_studio.id, "name": "planned", "plan": self.gold.id})
        self.assertEqual(response.status_code, 200)
        token = UserToken.objects.get(name="planned")
        self.assertEqual(token.plan_id, self.gold.id)

    def test_unknown_holders_are_404(self) -> None:
        self.page(f"{STUDIOS}studio_nope/plan/", status=404)


class UsdTextTests(CityTestCase):
    def test_exact_with_at_least_cents(self) -> None:
        from decimal import Decimal

        for value, text in (("0", "$0.00"), ("12.5", "$12.50"), ("1234567.000000000001", "$1,234,567.000000000001"), ("10", "$10.00")):
            self.assertEqual(usd_text(Decimal(value)), text)
