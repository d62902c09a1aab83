"""The usage dashboard and the model board in the Django admin, through Django's test client.

The browser run (charts drawn, the test button against a simulator) is test_admin_pages_browser.py.
"""

from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from aihub.catalog import models_by_id
from aihub.metering import insert_records
from aihub.tests.test_rollups import record
from aihub.usage_query import UsageFilter, totals
from studios.testing import CityTestCase

DASHBOARD = "/admin/usage/"
BOARD = "/admin/models/"
TEST = "/admin/models/test/"


class AdminPagesTestCase(CityTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.browser = Client()
        self.browser.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "a long passphrase"))


class UsageDashboardTests(AdminPagesTestCase):
    def setUp(self) -> None:
        super().setUp()
        now = timezone.now()
        alice, charlie = self.alice_studio.id, self.charlie_studio.id
        insert_records(
            [
                record("c1", alice, at=now - timedelta(hours=2), token_id=self.bob.id),  # cost 123_456_789 each (1e-12 USD)
                record("c2", alice, at=now - timedelta(days=2), token_id=self.bob.id, status=502),
                record("c3", alice, at=now - timedelta(days=3), model="gpt-5-mini"),
                record("c4", charlie, at=now - timedelta(days=1), token_id=self.charlie.id, model="gpt-5-mini"),
                record("c5", charlie, at=now - timedelta(days=20)),  # outside the default 7 days
            ]
        )

    def test_it_shows_totals_charts_and_the_top_studios_and_tokens(self) -> None:
        # session, user; day × model, top studios, top tokens (each: the whole days' daily rollups and
        # the ragged ends' hourly ones), their names (2)
        with self.assertNumQueries(10):
            page = self.browser.get(DASHBOARD)
        self.assertEqual(page.status_code, 200)
        start, end = page.context["start"], page.context["end"]
        expected = totals(UsageFilter(start=start, end=end))
        self.assertEqual(page.context["totals"], {k: v for k, v in expected.items() if k != "latency_ms"})  # the sums ai/usage gives
        self.assertEqual(page.context["totals"]["requests"], 4)
        self.assertEqual(page.context["totals"]["errors"], 1)
        self.assertContains(page, '<td id="total-spend">$0.000493827156</td>', html=True)  # 4 × 123,456,789e-12, exact
        self.assertContains(page, '<td id="error-rate">25.00%</td>', html=True)
        self.assertContains(page, '<svg xmlns="http://www.w3.org/2000/svg" viewBox', count=2)
        self.assertContains(page, "deepseek-v4-flash: $0.000246913578")  # the legend
        self.assertContains(page, f'href="/admin/studios/studio/{self.alice_studio.id}/change/"')
        self.assertContains(page, f'href="/admin/studios/usertoken/{self.bob.id}/change/"')
        self.assertEqual([row["key"] for row in page.context["top_studios"]], [self.alice_studio.id, self.charlie_studio.id])

    def test_the_query_count_does_not_grow_with_the_range_or_the_data(self) -> None:
        insert_records(
            [record(f"m{n}", self.alice_studio.id, at=timezone.now() - timedelta(days=n), model="gpt-5-mini") for n in range(80)]
        )
        with self.assertNumQueries(10):
            page = self.browser.get(DASHBOARD, {"range": "90d"})
        self.assertEqual(page.context["totals"]["requests"], 85)

    def test_filters_narrow_to_a_studio_and_a_model(self) -> None:
        page = self.browser.get(DASHBOARD, {"range": "30d", "studio": self.charlie_studio.id, "model": "deepseek-v4-flash"})
        self.assertEqual(page.context["totals"]["requests"], 1)  # c5, 20 days ago
        start = (timezone.now() - timedelta(days=3)).date()
        custom = self.browser.get(DASHBOARD, {"range": "custom", "start": str(start), "end": str(start)})
        self.assertEqual(custom.context["totals"]["requests"], 1)  # c3, that day only

    def test_bad_parameters_give_the_page_with_a_message(self) -> None:
        for query, said in [
            ({"range": "forever"}, "Select a valid choice"),
            ({"range": "custom", "start": "2026-13-40", "end": "2026-12-01"}, "Enter a valid date"),
            ({"range": "custom", "start": "2026-12-05", "end": "2026-12-01"}, "The end date is before the start date"),
            ({"range": "custom", "start": "2020-01-01", "end": "2026-12-01"}, "Choose at most 366 days"),
            ({"range": "custom", "start": "9999-12-30", "end": "9999-12-31"}, "Choose dates between 1970 and 9000"),
            ({"studio": "'; drop table"}, "A studio id looks like studio_"),
            ({"model": "no-such-model"}, "No model"),
        ]:
            page = self.browser.get(DASHBOARD, query)
            self.assertEqual(page.status_code, 200, query)
            self.assertContains(page, said)
            self.assertContains(page, "Showing the last 7 days instead")
            self.assertEqual(page.context["totals"]["requests"], 4)

    def test_only_staff_see_it(self) -> None:
        for path in (DASHBOARD, BOARD):
            self.assertRedirects(Client().get(path), f"/admin/login/?next={path}")
            visitor = Client()
            visitor.force_login(get_user_model().objects.create_user(f"visitor{len(path)}", "v@example.com", "a long passphrase"))
            self.assertRedirects(visitor.get(path), f"/admin/login/?next={path}")
        self.assertContains(self.browser.get("/admin/"), 'href="/admin/usage/"')

    def test_staff_need_the_permission_to_view_usage_and_test_calls_need_a_superuser(self) -> None:
        staff = get_user_model().objects.create_user("staff", "s@example.com", "a long passphrase", is_staff=True)
        browser = Client()
        browser.force_login(staff)
        self.assertEqual(browser.get(DASHBOARD).status_code, 403)
        self.assertEqual(browser.get(BOARD).status_code, 403)
        staff.user_permissions.add(Permission.objects.get(codename="view_usagerecord"))
        browser.force_login(get_user_model().objects.get(pk=staff.pk))  # the permission cache starts afresh
        self.assertEqual(browser.get(DASHBOARD).status_code, 200)
        self.assertEqual(browser.get(BOARD).status_code, 200)
        self.assertEqual(browser.post(TEST, {"model": "deepseek-v4-flash", "studio_id": self.alice_studio.id}).status_code, 403)


class ModelBoardTests(AdminPagesTestCase):
    def test_every_catalog_model_is_listed_with_its_prices_and_what_it_lacks(self) -> None:
        insert_records(
            [
                record("b1", self.alice_studio.id, at=timezone.now() - timedelta(hours=1), status=502),
                record("b2", self.alice_studio.id, at=timezone.now() - timedelta(hours=1)),
            ]
        )
        page = self.browser.get(BOARD)
        self.assertEqual(page.status_code, 200)
        rows = {row["model"].id: row for row in page.context["rows"]}
        self.assertEqual(set(rows), set(models_by_id()))
        flash = rows["deepseek-v4-flash"]
        self.assertFalse(flash["callable"])
        self.assertEqual(flash["missing"], ["DEEPSEEK_API_KEY"])
        self.assertEqual((flash["requests"], flash["errors"], flash["error_rate"]), (2, 1, "50.0%"))
        model = models_by_id()["deepseek-v4-flash"]
        self.assertEqual(Decimal(flash["input_price"].lstrip("$")), Decimal(model.input_price) / 1_000_000)
        self.assertEqual(Decimal(flash["output_price"].lstrip("$")), Decimal(model.output_price) / 1_000_000)
        self.assertContains(page, "<code>DEEPSEEK_API_KEY</code>", html=True)
        self.assertContains(page, "counted in this studio's usage and spend")

    def test_media_models_show_their_unit_price_and_no_test_button(self) -> None:
        page = self.browser.get(BOARD)
        rows = {row["model"].id: row for row in page.context["rows"]}
        self.assertEqual((rows["dall-e-3"]["unit_price"], rows["dall-e-3"]["media"]), ("$0.04 / image", True))
        self.assertEqual(rows["tts-1"]["unit_price"], "$0.000015 / character")
        self.assertEqual(rows["whisper-1"]["unit_price"], "$0.0001 / second")
        self.assertEqual((rows["deepseek-v4-flash"]["unit_price"], rows["deepseek-v4-flash"]["media"]), ("—", False))
        self.assertNotContains(page, 'value="dall-e-3">Test</button>')
        tried = self.browser.post(TEST, {"model": "dall-e-3", "studio_id": self.alice_studio.id})
        self.assertEqual((tried.context["outcome"].status, tried.context["outcome"].error_code), (400, "unsupported_model"))

    def test_the_test_button_reports_a_refusal_from_the_pipeline(self) -> None:
        page = self.browser.post(TEST, {"model": "deepseek-v4-flash", "studio_id": self.alice_studio.id})
        self.assertEqual(page.status_code, 200)
        outcome = page.context["outcome"]
        self.assertEqual((outcome.status, outcome.error_code), (404, "model_not_found"))
        self.assertContains(page, "failed: status 404 (model_not_found)")
        self.assertNotContains(page, "Traceback")

    def test_the_test_form_checks_its_input_and_needs_csrf(self) -> None:
        page = self.browser.post(TEST, {"model": "no-such-model", "studio_id": "nope"})
        self.assertEqual(page.status_code, 200)
        self.assertContains(page, "No model")
        self.assertContains(page, "A studio id looks like studio_")
        self.assertIsNone(page.context["outcome"])
        strict = Client(enforce_csrf_checks=True)
        strict.force_login(get_user_model().objects.get(username="root"))
        self.assertEqual(strict.post(TEST, {"model": "deepseek-v4-flash", "studio_id": self.alice_studio.id}).status_code, 403)
        self.assertEqual(self.browser.get(TEST).status_code, 405)


class StudioAndTokenPagesTests(AdminPagesTestCase):
    """The studios admin reads this month's usage through its hooks (aihub.spend), from the rollups."""

    def test_they_show_this_months_spend_calls_and_last_call(self) -> None:
        now = timezone.now()
        last_month = now.replace(day=1) - timedelta(days=1)
        insert_records(
            [
                record("s1", self.alice_studio.id, at=now.replace(day=1, hour=0, minute=0, second=5), token_id=self.bob.id),
                record("s2", self.alice_studio.id, at=now - timedelta(seconds=30)),
                record("s3", self.alice_studio.id, at=last_month, token_id=self.bob.id),  # another month: not counted
            ]
        )
        month = now.strftime("%Y-%m")
        studio = self.browser.get(f"/admin/studios/studio/{self.alice_studio.id}/change/")
        self.assertContains(studio, f"$0.000246913578 in {month} (UTC)")
        self.assertContains(studio, f"2 in {month} (UTC)")
        self.assertContains(studio, f"{(now - timedelta(seconds=30)):%Y-%m-%d %H:%M:%S} UTC")
        token = self.browser.get(f"/admin/studios/usertoken/{self.bob.id}/change/")
        self.assertContains(token, f"$0.000123456789 in {month} (UTC)")
        self.assertContains(token, f"1 in {month} (UTC)")
        idle = self.browser.get(f"/admin/studios/usertoken/{self.charlie.id}/change/")
        self.assertContains(idle, f"no call in {month} (UTC)")

    def test_the_token_list_shows_the_account_that_owns_each_token(self) -> None:
        from accounts.operations import create_account
        from studios.operations import issue_token

        dana = create_account(self.alice_studio.id, "dana@example.com", email_verified=True, actor="test-admin")
        issue_token(self.alice_studio.id, "dana's laptop", expires_at=None, actor="test-admin", account_id=dana.id)
        with self.assertNumQueries(4):  # session, user, capped count, one page of rows with their studio, plan and account
            page = self.browser.get("/admin/studios/usertoken/")
        self.assertContains(page, f'<a href="/admin/accounts/account/{dana.id}/change/">dana@example.com ({dana.id})</a>', html=True)
