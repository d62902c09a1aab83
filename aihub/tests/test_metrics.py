"""GET /metrics against real traffic: City under `uvicorn --workers 2` (as `make serve-prod` runs it,
with PROMETHEUS_MULTIPROC_DIR), calls sent until both workers have served some, then one scrape whose
counters must equal what the test sent and what the usage records say. And the optional OTLP trace
export: a span per call, received by a tiny OTLP/HTTP collector on 127.0.0.1 and decoded."""

import tempfile
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from django.db.models import Sum
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from aihub.models import UsageRecord
from aihub.tests.live import AiLiveTestCase
from aihub.tests.upstream.openai_sim import OpenAISim
from city.waiting import wait_until

METRICS_KEY = "test-metrics-key-not-secret-0123456789"
CHAT = {"model": "deepseek-v4-flash", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 20}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver: keeps each POST /v1/traces body, decoded."""

    def __init__(self) -> None:
        self.exports: list[ExportTraceServiceRequest] = []
        super().__init__(("127.0.0.1", 0), _CollectorHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def spans(self) -> list[Any]:
        return [span for export in self.exports for rs in export.resource_spans for ss in rs.scope_spans for span in ss.spans]


class _CollectorHandler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces":
            export = ExportTraceServiceRequest()
            export.ParseFromString(body)
            self.server.exports.append(export)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class MetricsAcrossWorkersTests(AiLiveTestCase):
    server = "uvicorn"
    workers = 2
    multiproc: tempfile.TemporaryDirectory[str]
    collector: Collector

    @classmethod
    def setUpClass(cls) -> None:
        cls.multiproc = tempfile.TemporaryDirectory(prefix="city-prometheus-")
        cls.collector = Collector()
        cls.city_env = {
            "PROMETHEUS_MULTIPROC_DIR": cls.multiproc.name,
            "CITY_METRICS_KEY": METRICS_KEY,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{cls.collector.server_port}/v1/traces",
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms between the exporter's batches
            # Two processes without Redis (SQLite runs) each keep a snapshot: make both see env changes at once.
            "CITY_ENV_CACHE_SECONDS": "0",
        }
        super().setUpClass()

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        cls.collector.shutdown()
        cls.collector.server_close()
        cls.multiproc.cleanup()

    def scrape(self, key: str | None = METRICS_KEY) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.get(f"{self.city.url}/metrics", headers=headers, timeout=10)

    def samples(self) -> Samples:
        response = self.scrape()
        self.assertEqual(response.status_code, 200, response.text[:300])
        self.assertTrue(response.headers["content-type"].startswith("text/plain"))
        found: Samples = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                found[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return found

    def total(self, samples: Samples, name: str, **labels: str) -> float:
        wanted = set(labels.items())
        return sum(value for (sample, sample_labels), value in samples.items() if sample == name and wanted <= sample_labels)

    def token_with_plan(self, **limits: Any) -> str:
        issued = self.ok(self.admin.post("/v1/studios/tokens/apply", json={"studio_id": self.studio["id"], "name": str(limits)}))
        plan = self.ok(self.admin.post("/v1/studios/plans/create", json={"name": f"metrics {limits} {self.studio['id']}", **limits}))
        self.ok(self.admin.post("/v1/studios/plans/assign", json={"plan_id": plan["id"], "token_id": issued["id"]}))
        return issued["token"]

    def served_by(self) -> dict[int, float]:
        """AI calls counted by each worker, from its own file (counter_<pid>.db)."""
        counted = {}
        for path in Path(self.multiproc.name).glob("counter_*.db"):
            families = MultiProcessCollector.merge([str(path)])
            counted[int(path.stem.split("_")[1])] = sum(
                s.value for f in families if f.name == "city_ai_requests" for s in f.samples if s.name == "city_ai_requests_total"
            )
        return counted

    def test_the_scrape_is_guarded(self) -> None:
        for key, code in (
            (None, "missing_credential"),
            ("wrong-key-of-the-right-length-0123456789", "invalid_metrics_key"),
            (self.token, "invalid_metrics_key"),
        ):
            response = self.scrape(key)
            self.assertEqual(response.status_code, 401, key)
            self.assertEqual(response.json()["error"]["code"], code)
            self.assertEqual(response.json()["error"]["type"], "authentication_error")
            self.assertNotIn(METRICS_KEY, response.text)
        self.assertEqual(self.scrape(self.admin_key).status_code, 200)
        self.assertEqual(self.scrape(METRICS_KEY).status_code, 200)

    def test_counters_across_two_workers_equal_the_traffic_sent(self) -> None:
        backup = OpenAISim().start()  # deepseek-v4-flash's second deployment (OpenRouter), for the fail-over
        self.addCleanup(backup.stop)
        self.set_env(OPENROUTER_API_KEY="sk-or-test", OPENROUTER_BASE_URL=backup.url + "/api/v1")
        one_per_minute = self.token_with_plan(rpm=1)
        capped = self.token_with_plan(max_cost_per_request=0.000001)
        before = self.samples()

        # Plain calls, 8 at a time, until each worker has served at least 5 of them.
        sent: dict[int, int] = defaultdict(int)
        with ThreadPoolExecutor(8) as pool:
            while len(self.served_by()) < 2 or min(self.served_by().values()) < 5:
                self.assertLess(sum(sent.values()), 400, f"the calls did not spread over both workers: {self.served_by()}")
                for response in pool.map(
                    lambda _: httpx.post(f"{self.city.url}/v1/chat/completions", json=CHAT, headers=self.auth(), timeout=10), range(16)
                ):
                    sent[response.status_code] += 1
        self.assertEqual(set(sent), {200}, sent)
        plain = sent[200]
        # A stream: the one call with a time to first token.
        streamed = self.user.post("/v1/chat/completions", json={**CHAT, "stream": True})
        self.assertEqual(streamed.status_code, 200, streamed.text)
        self.assertIn("data: [DONE]", streamed.text)
        # A fail-over: DeepSeek answers 503 to both tries, OpenRouter answers.
        self.sim.fail(503, times=2)
        self.ok(self.user.post("/v1/chat/completions", json=CHAT))
        # An upstream error answered to the client: both deployments refuse the request (400, no retry).
        self.sim.fail(400, times=1)
        refused_upstream = self.user.post("/v1/chat/completions", json=CHAT)
        self.assertEqual(refused_upstream.status_code, 400, refused_upstream.text)
        # Rate limit: one call per minute per worker's view of the token; calls until a 429.
        limited: dict[int, int] = defaultdict(int)
        while not limited[429]:
            self.assertLess(limited[200], 3)
            limited[
                httpx.post(f"{self.city.url}/v1/chat/completions", json=CHAT, headers=self.auth(one_per_minute), timeout=10).status_code
            ] += 1
        # Budget: over the per-request cap.
        over = httpx.post(f"{self.city.url}/v1/chat/completions", json={**CHAT, "max_tokens": 1000}, headers=self.auth(capped), timeout=10)
        self.assertEqual(over.status_code, 402, over.text)

        answered = plain + 2 + limited[200]  # 200s: the plain calls, the stream, the fail-over, the rate-limited token's
        wait_until(lambda: UsageRecord.objects.filter(studio_id=self.studio["id"]).count() == answered + 1, timeout=10)
        after = self.samples()

        def added(name: str, **labels: str) -> float:
            return self.total(after, name, **labels) - self.total(before, name, **labels)

        chat = {"route": "chat/completions", "gen_ai_request_model": "deepseek-v4-flash"}
        self.assertEqual(added("city_ai_requests_total", status="200", **chat), answered)
        self.assertEqual(added("city_ai_requests_total", status="200", gen_ai_provider_name="openrouter", **chat), 1)
        self.assertEqual(added("city_ai_requests_total", status="400", gen_ai_provider_name="deepseek", **chat), 1)
        self.assertEqual(added("city_http_requests_total", route="ai/chat/completions", status="200"), answered)
        self.assertEqual(added("city_http_requests_total", route="ai/chat/completions", status="429"), limited[429])
        self.assertEqual(added("city_http_requests_total", route="ai/chat/completions", status="402"), 1)
        self.assertEqual(added("city_ai_refusals_total", status="429", code="rate_limit_exceeded"), limited[429])
        self.assertEqual(added("city_ai_refusals_total", status="402", code="per_request_budget_exceeded"), 1)
        # Upstream errors: each failed attempt (2 tries of DeepSeek's 503, one 400), and one fail-over.
        self.assertEqual(added("city_ai_upstream_errors_total", gen_ai_provider_name="deepseek"), 3)
        self.assertEqual(added("city_ai_failovers_total", gen_ai_provider_name="deepseek"), 1)
        self.assertEqual(len(self.sim.requests) + len(backup.requests), answered + 3)
        # Tokens and cost: what the usage records say.
        records = UsageRecord.objects.filter(studio_id=self.studio["id"]).aggregate(
            prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), cost=Sum("cost")
        )
        genai = {"gen_ai_request_model": "deepseek-v4-flash", "gen_ai_operation_name": "chat"}
        self.assertEqual(added("gen_ai_client_token_usage_sum", gen_ai_token_type="input", **genai), records["prompt"])
        self.assertEqual(added("gen_ai_client_token_usage_sum", gen_ai_token_type="output", **genai), records["completion"])
        self.assertGreater(records["cost"], 0)
        self.assertAlmostEqual(added("city_ai_cost_usd_total", **chat), records["cost"] * 1e-12, delta=1e-12)
        self.assertEqual(added("gen_ai_server_request_duration_seconds_count", **genai), answered + 1)
        self.assertEqual(added("gen_ai_server_time_to_first_token_seconds_count", gen_ai_provider_name="deepseek", **genai), 1)
        self.assertEqual(self.total(after, "city_ai_reservations_outstanding"), 0)
        self.assertGreaterEqual(len(self.served_by()), 2)

    def test_each_call_sends_a_span_with_genai_attributes(self) -> None:
        answer = self.user.post("/v1/chat/completions", json=CHAT, headers={"X-Request-Id": "req-traced-1"})
        self.ok(answer)
        wait_until(lambda: any(_attributes(s).get("city.request_id") == "req-traced-1" for s in self.collector.spans()), timeout=10)
        span = next(s for s in self.collector.spans() if _attributes(s).get("city.request_id") == "req-traced-1")
        attributes = _attributes(span)
        usage = answer.json()["usage"]
        self.assertEqual(span.name, "chat deepseek-v4-flash")
        self.assertEqual(
            {k: attributes[k] for k in ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model")},
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "deepseek",
                "gen_ai.request.model": "deepseek-v4-flash",
                "gen_ai.response.model": "deepseek-v4-flash",
            },
        )
        self.assertEqual(
            (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]),
            (usage["prompt_tokens"], usage["completion_tokens"]),
        )
        self.assertEqual((attributes["http.response.status_code"], attributes["city.route"]), (200, "chat/completions"))
        self.assertNotIn("error.type", attributes)
        self.assertGreater(span.end_time_unix_nano, span.start_time_unix_nano)

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}


def _attributes(span: Any) -> dict[str, Any]:
    found = {}
    for attribute in span.attributes:
        value = attribute.value
        found[attribute.key] = getattr(value, value.WhichOneof("value"))
    return found
