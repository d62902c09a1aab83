from django.contrib.auth import get_user_model
from django.test import Client

from city.tests.test_admin_pages import ROOT_PASSWORD, AdminPages
from studios.models import Studio
from studios.testing import CityTestCase

STUDIOS = "/admin/studios/studio/"


class AdminSignInTests(AdminPages, CityTestCase):
    def test_a_superuser_signs_in_with_the_login_form(self) -> None:
        client = Client(enforce_csrf_checks=True)
        form = client.get("/admin/login/?next=/admin/")
        csrf = form.cookies["csrftoken"].value
        response = client.post("/admin/login/?next=/admin/", {"username": "root", "password": ROOT_PASSWORD, "csrfmiddlewaretoken": csrf})
        self.assertRedirects(response, "/admin/", fetch_redirect_response=False)
        home = client.get("/admin/")
        self.assertContains(home, "City administration")
        for model in ("Studios", "User tokens", "Env variables", "Audit entries"):
            self.assertContains(home, model)

    def test_a_wrong_password_is_refused(self) -> None:
        response = Client().post("/admin/login/", {"username": "root", "password": "wrong"})
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Please enter the correct username and password")

    def test_a_user_who_is_not_staff_is_sent_to_the_login_page(self) -> None:
        member = get_user_model().objects.create_user("member", "member@example.invalid", ROOT_PASSWORD)
        client = Client()
        client.force_login(member)
        for url in (STUDIOS, "/admin/studios/usertoken/", "/admin/city/envvar/", "/admin/city/auditentry/"):
            response = client.get(url)
            self.assertEqual(response.status_code, 302, url)
            self.assertTrue(response["Location"].startswith("/admin/login/"))
        response = self.submit(STUDIOS, {"action": "pause_selected", "_selected_action": [self.alice_studio.id], "index": 0}, client=client)
        self.assertEqual(response.status_code, 302)
        self.alice_studio.refresh_from_db()
        self.assertEqual(self.alice_studio.status, "active")
        self.assertEqual(self.audit("studios/pause"), [])

    def test_staff_without_permissions_is_forbidden(self) -> None:
        staff = get_user_model().objects.create_user("staff", "staff@example.invalid", ROOT_PASSWORD, is_staff=True)
        client = Client()
        client.force_login(staff)
        self.assertEqual(client.get(STUDIOS).status_code, 403)

    def test_admin_forms_enforce_csrf(self) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.root)
        data = {"action": "pause_selected", "_selected_action": [self.alice_studio.id], "index": 0}
        self.assertEqual(self.submit(STUDIOS, data, client=client).status_code, 403)
        self.alice_studio.refresh_from_db()
        self.assertEqual(self.alice_studio.status, "active")

        csrf = client.get(STUDIOS).cookies["csrftoken"].value
        self.assertEqual(self.submit(STUDIOS, {**data, "csrfmiddlewaretoken": csrf}, client=client).status_code, 302)
        self.alice_studio.refresh_from_db()
        self.assertEqual(self.alice_studio.status, "paused")


class StudioAdminTests(AdminPages, CityTestCase):
    def test_the_list_shows_id_name_status_and_creation(self) -> None:
        response = self.page(STUDIOS)
        for text in (self.alice_studio.id, "Alice Studio", "Charlie Studio", "active"):
            self.assertContains(response, text)

    def test_it_filters_by_status(self) -> None:
        Studio.objects.filter(id=self.charlie_studio.id).update(status="paused")
        response = self.page(STUDIOS, {"status__exact": "paused"})
        self.assertContains(response, "Charlie Studio")
        self.assertNotContains(response, "Alice Studio")

    def test_it_searches_by_name_and_by_exact_id(self) -> None:
        by_name = self.page(STUDIOS, {"q": "charl"})
        self.assertContains(by_name, "Charlie Studio")
        self.assertNotContains(by_name, "Alice Studio")
        by_id = self.page(STUDIOS, {"q": self.alice_studio.id})
        self.assertContains(by_id, "Alice Studio")
        self.assertNotContains(by_id, "Charlie Studio")
        self.assertNotContains(self.page(STUDIOS, {"q": self.alice_studio.id[:-2]}), "Alice Studio")

    def test_adding_a_studio_calls_create_studio(self) -> None:
        response = self.submit(STUDIOS + "add/", {"name": "Dana Studio"})
        self.assertEqual(response.status_code, 302)
        studio = Studio.objects.get(name="Dana Studio")
        [entry] = self.audit("studios/create", studio.id)
        self.assertEqual((entry.actor, entry.outcome), ("admin:root", "ok"))
        self.assertContains(self.page(f"{STUDIOS}{studio.id}/change/"), "Issue a token")

    def test_a_studio_page_is_read_only(self) -> None:
        response = self.page(f"{STUDIOS}{self.alice_studio.id}/change/")
        self.assertNotContains(response, 'name="name"')
        self.assertNotContains(response, 'name="_save"')

    def test_pause_and_activate_are_bulk_actions(self) -> None:
        ids = [self.alice_studio.id, self.charlie_studio.id]
        response = self.run_action(STUDIOS, "pause_selected", ids)
        self.assertEqual(response.status_code, 302)
        self.assertIn("2 studio(s) now paused.", self.messages_of(response))
        self.assertEqual(set(Studio.objects.filter(id__in=ids).values_list("status", flat=True)), {"paused"})
        self.assertEqual([e.actor for e in self.audit("studios/pause")], ["admin:root", "admin:root"])
        self.assertError(self.get("/v1/studios/me", token=self.bob_token), 403, "permission_error", "studio_paused")

        self.run_action(STUDIOS, "activate_selected", [self.alice_studio.id])
        self.assertEqual(self.audit("studios/activate")[0].target, self.alice_studio.id)
        self.assertOk(self.get("/v1/studios/me", token=self.bob_token))

    def test_remove_asks_for_confirmation_first(self) -> None:
        response = self.run_action(STUDIOS, "remove_selected", [self.alice_studio.id])
        self.assertEqual(response.status_code, 200)
        self.assertTemplateUsed(response, "admin/studios/studio/remove_confirmation.html")
        self.assertContains(response, "Removal is final")
        self.assertContains(response, "1 unrevoked token of this studio will get 401")
        self.alice_studio.refresh_from_db()
        self.assertEqual(self.alice_studio.status, "active")

        self.submit(STUDIOS, {"action": "remove_selected", "_selected_action": [self.alice_studio.id], "confirmed": "yes"})
        self.alice_studio.refresh_from_db()
        self.assertEqual(self.alice_studio.status, "removed")
        [entry] = self.audit("studios/remove")
        self.assertEqual((entry.actor, entry.target, entry.outcome), ("admin:root", self.alice_studio.id, "ok"))
        self.assertError(self.get("/v1/studios/me", token=self.bob_token), 401, "authentication_error", "studio_removed")

    def test_a_refused_operation_is_an_error_message_and_a_failed_audit_entry(self) -> None:
        Studio.objects.filter(id=self.alice_studio.id).update(status="removed")
        response = self.run_action(STUDIOS, "activate_selected", [self.alice_studio.id, self.charlie_studio.id])
        self.assertEqual(response.status_code, 302)
        messages = self.messages_of(response)
        self.assertIn(f"Studio {self.alice_studio.id} is removed; removal is final. Create a new studio instead.", messages)
        self.assertIn("1 studio(s) now active.", messages)
        [entry] = self.audit("studios/activate")
        self.assertEqual((entry.actor, entry.target, entry.outcome), ("admin:root", self.alice_studio.id, "409 studio_removed"))

    def test_studios_cannot_be_deleted(self) -> None:
        self.page(f"{STUDIOS}{self.alice_studio.id}/delete/", status=403)
        self.assertNotContains(self.page(STUDIOS), "delete_selected")

    def test_the_list_runs_four_queries_whatever_its_length(self) -> None:
        for i in range(30):
            Studio.objects.create(name=f"Studio {i}")
        with self.assertNumQueries(4):  # session, user, capped count, one page of rows
            self.page(STUDIOS)
