from django.contrib.auth import get_user_model
from django.test import TestCase


class HomePageTests(TestCase):
    def test_a_browser_at_the_root_gets_a_page_leading_to_admin_dashboard_and_api(self) -> None:
        response = self.client.get("/")
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response["Content-Type"].startswith("text/html"))
        for href in ("/admin/", "/dashboard/keys", "/v1/reference", "/v1/services"):
            self.assertContains(response, f'href="{href}"')
        self.assertNotContains(response, "<script")
        self.assertNotContains(response, "https://")  # nothing loaded from elsewhere

    def test_dashboard_root_leads_to_the_keys_page(self) -> None:
        response = self.client.get("/dashboard/?studio=studio_01ABC")
        self.assertRedirects(response, "/dashboard/keys?studio=studio_01ABC", fetch_redirect_response=False)

    def test_the_admins_view_site_link_is_that_page(self) -> None:
        user = get_user_model().objects.create_superuser("root", "root@example.com", "a long passphrase")
        self.client.force_login(user)
        self.assertContains(self.client.get("/admin/"), 'href="/"')

    def test_only_get_and_head(self) -> None:
        self.assertEqual(self.client.head("/").status_code, 200)
        self.assertEqual(self.client.post("/").status_code, 405)
