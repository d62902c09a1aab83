"""Concurrent writers of one env key, through two City processes: never a 5xx, one writer's value at the end.

Runs on whichever database the suite runs on (SQLite serialises writers with IMMEDIATE transactions;
PostgreSQL is where a missing row could not be locked and two inserts of one new key collided).
"""

import random
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from django.contrib.auth import get_user_model
from django.db import transaction

from city import envops
from city.livecity import LiveCity, LiveCityTestCase
from city.models import AuditEntry, EnvVar

WRITERS = 50
KEY = "RACE_TEST_KEY"


class ConcurrentEnvWriterTests(LiveCityTestCase):
    cities: list[LiveCity]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.cities = LiveCity.many({}, {})
        for city in cls.cities:
            cls.addClassCleanup(city.stop)

    def run_together(self, requests: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
        """Each (route, body) POSTed by its own thread, released at once, alternately to each process."""
        start = threading.Barrier(len(requests))

        def send(index: int) -> httpx.Response:
            city: LiveCity = self.cities[index % len(self.cities)]
            route, body = requests[index]
            with httpx.Client(base_url=city.url, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=60) as client:
                client.get("/v1/services")  # connected before the start, so the writes arrive together
                start.wait(timeout=60)
                return client.post(route, json=body)

        with ThreadPoolExecutor(len(requests)) as pool:
            return list(pool.map(send, range(len(requests))))

    def assertNo5xx(self, responses: list[httpx.Response]) -> None:
        failures = [(r.status_code, r.text[:300]) for r in responses if r.status_code >= 500]
        self.assertEqual(failures, [], f"{len(failures)} of {len(responses)} answered 5xx")

    def stored(self, key: str) -> str | None:
        row = EnvVar.objects.filter(key=key).first()
        return envops.value_of(row) if row is not None else None

    def test_upserts_of_one_new_key_end_in_one_writers_value(self) -> None:
        values = [f"value-of-writer-{i:02d}-0123456789" for i in range(WRITERS)]
        responses = self.run_together([("/v1/env/upsert", {"key": KEY, "value": v}) for v in values])
        self.assertNo5xx(responses)
        self.assertEqual({r.status_code for r in responses}, {200})
        self.assertTrue(all(r.json()["changed"] for r in responses), "each writer's value differs from the one before it")
        self.assertEqual(EnvVar.objects.filter(key=KEY).count(), 1)
        self.assertIn(self.stored(KEY), values)
        self.assertEqual(AuditEntry.objects.filter(action="env/upsert", target=KEY, outcome="ok").count(), WRITERS)

    def test_upserts_of_one_value_change_it_once_and_say_so(self) -> None:
        responses = self.run_together([("/v1/env/upsert", {"key": KEY, "value": "the-same-value-0123456789"})] * WRITERS)
        self.assertNo5xx(responses)
        self.assertEqual({r.status_code for r in responses}, {200})
        self.assertEqual(sorted(r.json()["changed"] for r in responses), [False] * (WRITERS - 1) + [True])
        self.assertEqual(AuditEntry.objects.filter(action="env/upsert", target=KEY).count(), 1)
        self.assertEqual(self.stored(KEY), "the-same-value-0123456789")

    def test_conflicting_imports_of_new_keys_apply_one_import_whole(self) -> None:
        keys = [f"RACE_IMPORT_{n}" for n in range(5)]
        requests = []
        for i in range(WRITERS):
            order = random.Random(i).sample(keys, len(keys))  # each writer names the keys in its own order
            requests.append(("/v1/env/import", {"content": "".join(f"{k}=writer-{i:02d}\n" for k in order)}))
        responses = self.run_together(requests)
        self.assertNo5xx(responses)
        self.assertEqual({r.status_code for r in responses}, {200})
        for response in responses:
            report = response.json()
            self.assertEqual(sorted(report["set"] + report["unchanged"]), keys)
        final = {self.stored(k) for k in keys}
        self.assertEqual(len(final), 1, f"every key holds the same writer's value, not {final}")
        self.assertIn(final.pop(), {f"writer-{i:02d}" for i in range(WRITERS)})
        self.assertEqual(AuditEntry.objects.filter(action="env/import", outcome="ok").count(), WRITERS)

    def test_mixed_upserts_and_removes_end_as_the_last_writer_left_it(self) -> None:
        requests: list[tuple[str, dict[str, Any]]] = []
        for i in range(WRITERS):
            if i % 2:
                requests.append(("/v1/env/remove", {"key": KEY}))
            else:
                requests.append(("/v1/env/upsert", {"key": KEY, "value": f"value-of-writer-{i:02d}-0123456789"}))
        responses = self.run_together(requests)
        self.assertNo5xx(responses)
        upserts = [r for (route, _), r in zip(requests, responses, strict=True) if route.endswith("upsert")]
        removes = [r for (route, _), r in zip(requests, responses, strict=True) if route.endswith("remove")]
        self.assertEqual({r.status_code for r in upserts}, {200})
        for response in removes:
            # A remove that finds the key gone (another remove came first) is told so, typed.
            self.assertIn(response.status_code, (200, 404))
            if response.status_code == 404:
                self.assertEqual(response.json()["error"]["code"], "env_not_found")
        removed = sum(r.status_code == 200 for r in removes)
        changed = sum(r.json()["changed"] for r in upserts)
        entries = list(AuditEntry.objects.filter(target=KEY).order_by("id"))
        self.assertEqual(sum(e.action == "env/remove" and e.outcome == "ok" for e in entries), removed)
        self.assertEqual(sum(e.action == "env/upsert" and e.outcome == "ok" for e in entries), changed)
        self.assertEqual(sum(e.outcome == "404 env_not_found" for e in entries), len(removes) - removed)
        last = [e for e in entries if e.outcome == "ok"][-1]  # writers are serialised: the log's order is theirs
        if last.action == "env/remove":
            self.assertIsNone(self.stored(KEY))
        else:
            self.assertIn(self.stored(KEY), {body["value"] for route, body in requests if route.endswith("upsert")})

    def test_other_create_if_missing_operations_answer_once_then_typed(self) -> None:
        admin = httpx.Client(base_url=self.cities[0].url, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=30)
        self.addCleanup(admin.close)
        studio = admin.post("/v1/studios/create", json={"name": "Races"}).json()["id"]
        token = admin.post("/v1/studios/tokens/apply", json={"studio_id": studio, "name": "t"}).json()["id"]
        # One email: one account, the others told it exists.
        responses = self.run_together([("/v1/accounts/create", {"studio_id": studio, "email": "same@example.com"})] * 20)
        self.assertNo5xx(responses)
        self.assertEqual(sorted(r.status_code for r in responses), [200] + [409] * 19)
        self.assertEqual({r.json()["error"]["code"] for r in responses if r.status_code == 409}, {"account_exists"})
        # A studio's settings row created by the first of many writers.
        responses = self.run_together(
            [("/v1/accounts/settings", {"studio_id": studio, "self_registration": bool(i % 2)}) for i in range(20)]
        )
        self.assertNo5xx(responses)
        self.assertEqual({r.status_code for r in responses}, {200})
        # Status changes and token rotations and revocations all at once.
        requests: list[tuple[str, dict[str, Any]]] = []
        for i in range(WRITERS):
            requests.append(
                [
                    ("/v1/studios/pause", {"studio_id": studio}),
                    ("/v1/studios/activate", {"studio_id": studio}),
                    ("/v1/studios/tokens/rotate", {"token_id": token}),
                    ("/v1/studios/tokens/apply", {"studio_id": studio, "name": f"t{i}"}),
                ][i % 4]
            )
        requests[-1] = ("/v1/studios/tokens/revoke", {"token_id": token})
        responses = self.run_together(requests)
        self.assertNo5xx(responses)
        for (route, _), response in zip(requests, responses, strict=True):
            # A rotation after the revocation is refused, typed; everything else succeeds.
            expected = {200, 409} if route.endswith("rotate") else {200}
            self.assertIn(response.status_code, expected, (route, response.text[:300]))


class DatabaseBusyTests(LiveCityTestCase):
    def test_a_write_that_times_out_on_a_lock_is_a_typed_503_and_changes_nothing(self) -> None:
        # Half a second of waiting: SQLite's busy timeout, PostgreSQL's lock_timeout (through libpq's PGOPTIONS).
        city = self.start_city(extra_env={"DATABASE_BUSY_TIMEOUT_SECONDS": "0.5", "PGOPTIONS": "-c lock_timeout=500"})
        admin = httpx.Client(base_url=city.url, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=30)
        self.addCleanup(admin.close)
        self.assertEqual(admin.post("/v1/env/upsert", json={"key": KEY, "value": "before-0123456789"}).status_code, 200)
        with transaction.atomic():
            # This test's own write lock: SQLite's whole database (IMMEDIATE), PostgreSQL's row.
            EnvVar.objects.select_for_update().get(key=KEY)
            response = admin.post("/v1/env/upsert", json={"key": KEY, "value": "after-0123456789"})
        self.assertEqual(response.status_code, 503, response.text)
        self.assertEqual(response.headers["Retry-After"], "1")
        self.assertEqual(response.json()["error"]["code"], "database_busy")
        self.assertEqual(set(response.json()["error"]), {"message", "type", "code", "param"})
        self.assertEqual(self.stored(KEY), "before-0123456789")
        again = admin.post("/v1/env/upsert", json={"key": KEY, "value": "after-0123456789"})
        self.assertEqual((again.status_code, again.json()["changed"]), (200, True))

    def stored(self, key: str) -> str | None:
        row = EnvVar.objects.filter(key=key).first()
        return envops.value_of(row) if row is not None else None

    def test_a_page_that_times_out_on_a_lock_is_a_503_too(self) -> None:
        city = self.start_city(extra_env={"DATABASE_BUSY_TIMEOUT_SECONDS": "0.5", "PGOPTIONS": "-c lock_timeout=500"})
        user = get_user_model().objects.create_superuser("root", "root@example.com", "a long passphrase for root")
        browser = httpx.Client(base_url=city.url, timeout=30)
        self.addCleanup(browser.close)

        def sign_in() -> httpx.Response:
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', browser.get("/admin/login/").text)
            assert token is not None
            form = {"username": "root", "password": "a long passphrase for root", "csrfmiddlewaretoken": token.group(1), "next": "/admin/"}
            return browser.post("/admin/login/", data=form)

        with transaction.atomic():
            # Signing in writes the user's last_login: its row is locked (with SQLite, the whole database).
            get_user_model().objects.select_for_update().get(id=user.id)
            response = sign_in()
        self.assertEqual(response.status_code, 503, response.text[:300])
        self.assertEqual((response.headers["Retry-After"], response.json()["error"]["code"]), ("1", "database_busy"))
        self.assertEqual(sign_in().status_code, 302)
