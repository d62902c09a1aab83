"""The whole OAuth sign-in through real HTTP: two live City processes, the loopback GitHub/Google simulator,
and an HTTP client playing the user's browser. Start, callback and poll land on different processes."""

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
from django.core.cache import cache

from accounts.tests.loopback_app import LoopbackListener, Pkce
from accounts.tests.oauth_simulator import OAuthSimulator
from city.livecity import LiveCity, LiveCityTestCase


class OAuthThroughLiveCityTests(LiveCityTestCase):
    sim: OAuthSimulator
    city_a: LiveCity
    city_b: LiveCity
    client_http: httpx.Client  # plays the user's browser

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.sim = OAuthSimulator().start()
        # Two processes, as behind a load balancer whose address (City's public URL) is A's.
        cls.city_a = LiveCity(extra_env=cls.sim.env(), wait=False)
        cls.city_b = LiveCity(extra_env={**cls.sim.env(), "CITY_PUBLIC_URL": cls.city_a.url}, wait=False)
        LiveCity.all_ready(cls.city_a, cls.city_b)  # started side by side
        cls.client_http = httpx.Client(timeout=15)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.client_http.close()
        cls.city_a.stop()
        cls.city_b.stop()
        cls.sim.stop()
        super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        cache.clear()  # throttle counters: with Redis they outlive a run, and the processes share them
        self.studio = self.assertOk(self.admin_post("/v1/studios/create", {"name": "Desktop App"}))
        self.assertOk(self.admin_post("/v1/accounts/settings", {"studio_id": self.studio["id"], "self_registration": True}))

    def poll(self, city: LiveCity, flow_id: str) -> httpx.Response:
        return self.client_http.get(f"{city.url}/v1/accounts/oauth/result", params={"flow_id": flow_id})

    def confirm(self, page: httpx.Response) -> httpx.Response:
        """Press "This is me, sign in" on City's confirm page, as the browser would: same origin, its cookie."""
        self.assertIn("Is this sign-in yours?", page.text)
        fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', page.text))
        origin = f"{page.url.scheme}://{page.url.netloc.decode()}"
        return self.client_http.post(f"{origin}/v1/accounts/oauth/confirm", data={**fields, "decision": "confirm"})

    def assert_token_works(self, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        for city in (self.city_a, self.city_b):
            me = self.client_http.get(f"{city.url}/v1/studios/me", headers=headers)
            self.assertEqual(me.status_code, 200, me.text)
            self.assertEqual(me.json()["studio"]["id"], self.studio["id"])
            models = self.client_http.get(f"{city.url}/v1/ai/models", headers=headers)
            self.assertEqual(models.status_code, 200, models.text)

    def test_github_start_and_callback_on_one_process_poll_on_another(self) -> None:
        started = self.client_http.post(
            f"{self.city_a.url}/v1/accounts/oauth/start", json={"provider": "github", "studio_id": self.studio["id"]}
        )
        self.assertEqual(started.status_code, 200, started.text)
        flow = started.json()
        self.assertEqual(self.poll(self.city_b, flow["flow_id"]).json(), {"status": "pending", "provider": "github"})

        # The browser: GitHub's authorize page redirects to City's callback, which shows its page.
        page = self.client_http.get(flow["authorize_url"], follow_redirects=True)
        self.assertEqual([r.status_code for r in page.history], [302])
        self.assertEqual(str(page.url).split("?")[0], f"{self.city_a.url}/v1/accounts/oauth/callback")
        self.assertEqual(page.status_code, 200, page.text)
        self.assertIn(flow["user_code"], page.text)
        self.assertEqual(self.poll(self.city_b, flow["flow_id"]).json(), {"status": "pending", "provider": "github"})
        done = self.confirm(page)
        self.assertEqual(done.status_code, 200, done.text)
        self.assertIn("You are signed in to Desktop App as ada@example.com", done.text)

        result = self.poll(self.city_b, flow["flow_id"])
        self.assertEqual(result.status_code, 200, result.text)
        body = result.json()
        self.assertEqual((body["status"], body["account"]["email"]), ("complete", "ada@example.com"))
        self.assert_token_works(body["user_token"])
        again = self.poll(self.city_a, flow["flow_id"])
        self.assertEqual((again.status_code, again.json()["error"]["code"]), (410, "result_taken"))

    def test_google_start_callback_and_poll_each_on_another_process(self) -> None:
        started = self.client_http.post(
            f"{self.city_a.url}/v1/accounts/oauth/start", json={"provider": "google", "studio_id": self.studio["id"]}
        )
        self.assertEqual(started.status_code, 200, started.text)
        flow = started.json()
        at_provider = self.client_http.get(flow["authorize_url"])
        self.assertEqual(at_provider.status_code, 302)
        # A load balancer sends the provider's redirect to process B.
        callback = urlsplit(at_provider.headers["Location"])
        page = self.client_http.get(f"{self.city_b.url}{callback.path}?{callback.query}")
        self.assertEqual(page.status_code, 200, page.text)
        self.assertIn("grace@example.com", page.text)
        self.assertEqual(self.confirm(page).status_code, 200)  # the form posts back to B, which showed it

        body = self.poll(self.city_a, flow["flow_id"]).json()
        self.assertEqual((body["status"], body["provider"], body["account"]["email"]), ("complete", "google", "grace@example.com"))
        self.assert_token_works(body["user_token"])

    def test_a_denied_consent_reaches_the_poller(self) -> None:
        self.sim.consent = False
        self.addCleanup(setattr, self.sim, "consent", True)
        flow = self.client_http.post(
            f"{self.city_b.url}/v1/accounts/oauth/start", json={"provider": "github", "studio_id": self.studio["id"]}
        ).json()
        page = self.client_http.get(flow["authorize_url"], follow_redirects=True)
        self.assertEqual(page.status_code, 403)
        self.assertIn("You declined", page.text)
        self.assertEqual(self.poll(self.city_a, flow["flow_id"]).json()["status"], "denied")

    def test_loopback_sign_in_and_racing_exchanges_of_one_code_on_two_processes(self) -> None:
        app, pkce = LoopbackListener().start(), Pkce()
        self.addCleanup(app.stop)
        started = self.client_http.post(
            f"{self.city_a.url}/v1/accounts/oauth/start",
            json={
                "provider": "github",
                "studio_id": self.studio["id"],
                "redirect_uri": app.redirect_uri,
                "code_challenge": pkce.challenge,
                "code_challenge_method": "S256",
                "state": "s-1",
            },
        )
        self.assertEqual(started.status_code, 200, started.text)
        # The browser: the provider, City's callback, then City's redirect to the app's listener.
        landed = self.client_http.get(started.json()["authorize_url"], follow_redirects=True)
        self.assertEqual([r.status_code for r in landed.history], [302, 302])
        self.assertEqual(landed.status_code, 200)
        code = app.wait()["code"]

        attempts = 8
        barrier = threading.Barrier(attempts)

        def exchange(i: int) -> httpx.Response:
            city = (self.city_a, self.city_b)[i % 2]
            with httpx.Client(timeout=30) as client:
                barrier.wait(timeout=30)
                return client.post(f"{city.url}/v1/accounts/oauth/token", json={"code": code, "code_verifier": pkce.verifier})

        with ThreadPoolExecutor(attempts) as pool:
            answers = list(pool.map(exchange, range(attempts)))
        statuses = sorted(a.status_code for a in answers)
        self.assertEqual(statuses, [200] + [400] * (attempts - 1), [a.text for a in answers])
        self.assertEqual({a.json()["error"]["code"] for a in answers if a.status_code == 400}, {"code_used"})
        winner = next(a for a in answers if a.status_code == 200).json()
        self.assert_token_works(winner["user_token"])
