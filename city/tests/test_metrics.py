"""GET /metrics in one process (Daphne's embedded mode: no setup), its guard, and the cleanup of a
dead worker's live gauges in multiprocess mode. The two-worker counts: aihub/tests/test_metrics.py."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from django.test import SimpleTestCase, override_settings
from prometheus_client.parser import text_string_to_metric_families

from city.metrics import drop_dead_processes

METRICS_KEY = "test-metrics-key-not-secret-0123456789"


def http_count(text: str, route: str, status: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "city_http_requests_total" and sample.labels == {"route": route, "status": status}:
                return sample.value
    return 0.0


@override_settings(CITY_METRICS_KEY=METRICS_KEY)
class MetricsViewTests(SimpleTestCase):
    def scrape(self, key: str | None) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        response = self.client.get("/metrics", headers=headers)
        return response.status_code, response.content.decode()

    def test_only_the_metrics_key_or_the_admin_key_may_scrape(self) -> None:
        for key in (None, "", "Basic abc", METRICS_KEY[:-1], METRICS_KEY + "x", "not-the-admin-key-" + "x" * 30):
            status, body = self.scrape(key)
            self.assertEqual(status, 401, key)
            self.assertIn('"type":"authentication_error"', body)
        with override_settings(CITY_METRICS_KEY=""):  # no metrics key: the admin key only
            self.assertEqual(self.scrape(METRICS_KEY)[0], 401)
            self.assertEqual(self.scrape(os.environ["ADMIN_SECRET_KEY"])[0], 200)
        self.assertEqual(self.client.post("/metrics", headers={"Authorization": f"Bearer {METRICS_KEY}"}).status_code, 405)

    def test_one_process_counts_v1_answers_by_route_and_status(self) -> None:
        status, before = self.scrape(METRICS_KEY)
        self.assertEqual(status, 200)
        self.client.get("/v1/services")
        self.client.get("/v1/nothing/here")
        self.client.get("/v1/ai/models")  # no credential: 401, under its action's name, never the raw path
        _, after = self.scrape(METRICS_KEY)
        for route, status_code in (("services", "200"), ("unknown", "404"), ("ai/models", "401")):
            self.assertEqual(http_count(after, route, status_code) - http_count(before, route, status_code), 1, route)


class DeadWorkerTests(SimpleTestCase):
    def test_a_dead_workers_live_gauges_are_dropped_and_its_counters_kept(self) -> None:
        with tempfile.TemporaryDirectory() as directory:
            script = (
                "from prometheus_client import Counter, Gauge\n"
                "Gauge('held', 'h', multiprocess_mode='livesum').inc(3)\n"
                "Counter('done', 'd').inc(5)\n"
            )
            env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory}
            dead = subprocess.run(
                [sys.executable, "-c", script + "import os; print(os.getpid())"], env=env, check=True, capture_output=True
            )
            alive_file = Path(directory) / f"gauge_livesum_{os.getpid()}.db"
            alive_file.write_bytes(b"")
            drop_dead_processes(directory)
            left = sorted(p.name for p in Path(directory).iterdir())
            self.assertEqual(left, sorted([f"counter_{int(dead.stdout)}.db", alive_file.name]))
