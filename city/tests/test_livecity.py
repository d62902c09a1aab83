import httpx

from city.livecity import LiveCityTestCase


class LiveCityTests(LiveCityTestCase):
    def test_a_studio_created_here_is_listed_by_the_server(self) -> None:
        city = self.start_city()
        created = self.assertOk(self.admin_post("/v1/studios/create", {"name": "Live"}))
        listed = httpx.get(f"{city.url}/v1/studios/list", headers={"Authorization": f"Bearer {self.admin_key}"}).json()
        self.assertEqual([s["id"] for s in listed["items"]], [created["id"]])
