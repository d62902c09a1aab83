"""bench/run.py's pure parts: wrk's extra headers, the rounds' medians, issue 12's goals and table."""

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.test import SimpleTestCase

from bench.run import goals, header_lines, median_of, report, wrk
from bench.streamclient import percentile


def cell(rps: float, p50: float, p99: float, cpu: float = 1.0) -> dict:
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "cpu_ms_per_request": cpu, "non_2xx": 0, "socket_errors": 0}


def streams(p50: float, p99: float) -> dict:
    return {"c1": {"ttfb_p50_ms": p50, "ttfb_p99_ms": p99}, "c8": {"ttfb_p50_ms": p50 * 2, "ttfb_p99_ms": p99 * 2}}


def results() -> dict:
    load = {
        "direct": {1: cell(9000, 0.1, 0.3), 16: cell(20000, 0.5, 2.0), 64: cell(20000, 2.0, 8.0)},
        "City": {1: cell(500, 1.0, 2.5), 16: cell(2000, 8.0, 40.0), 64: cell(1800, 30.0, 90.0)},
        "Portkey": {1: cell(400, 1.3, 9.0), 16: cell(800, 20.0, 50.0), 64: cell(800, 80.0, 80.0)},
    }
    meta: dict[str, object] = dict.fromkeys(("commit", "city", "database", "cpus", "simulator", "load_before"), "x")
    meta |= {"duration_s": 10, "warmup_s": 3, "stream_seconds_s": 5, "rounds": 2, "portkey": "1.15.2"}
    rss = {"11": {"before": 110.0, "peak": 140.0, "after_close": 113.0}, "12": {"before": 112.0, "peak": 149.0, "after_close": 118.0}}
    return {
        "meta": meta,
        "concurrency": [1, 16, 64],
        "load": load,
        "rounds": [{"load": load}],
        "stream": {"direct": streams(0.1, 0.3), "City": streams(0.4, 1.0), "Portkey": streams(28.0, 40.0)},
        "open_streams": {
            "streams": 1000,
            "per_second": 250.0,
            "shape": "20 chunks 250 ms apart",
            "direct": {"completed": 1000, "peak_open": 1000, "ttfb_p50_ms": 10.0, "ttfb_p99_ms": 20.0, "seconds": 9.1},
            "City": {
                "completed": 999,
                "peak_open": 998,
                "ttfb_p50_ms": 45.0,
                "ttfb_p99_ms": 90.0,
                "seconds": 9.4,
                "rss_mb": rss,
                "cpu_ms_per_stream": 4.5,
            },
            "burst": {
                "direct": {"completed": 1000, "peak_open": 1000, "ttfb_p50_ms": 40.0, "ttfb_p99_ms": 80.0, "seconds": 5.1},
                "City": {"completed": 1000, "peak_open": 1000, "ttfb_p50_ms": 900.0, "ttfb_p99_ms": 2000.0, "seconds": 7.0, "rss_mb": rss},
            },
        },
        "errors_logged": 0,
    }


class RunReportTests(SimpleTestCase):
    def test_extra_headers_become_one_line_each_and_a_line_break_is_refused(self) -> None:
        self.assertEqual(
            header_lines({"x-portkey-provider": "openai", "Authorization": "Bearer k"}),
            "x-portkey-provider: openai\nAuthorization: Bearer k",
        )
        self.assertEqual(header_lines(None), "")
        with self.assertRaises(ValueError):
            header_lines({"x-a": "1\r\nx-b: 2"})

    def test_the_rounds_merge_into_the_median_of_each_number(self) -> None:
        rounds = [
            {"load": {"City": {16: {"rps": 100.0, "p99_ms": 9.0}}}, "order": ["a"]},
            {"load": {"City": {16: {"rps": 300.0, "p99_ms": 5.0}}}, "order": ["b"]},
        ]
        self.assertEqual(median_of(rounds), {"load": {"City": {16: {"rps": 200.0, "p99_ms": 7.0}}}, "order": ["a"]})

    def test_issue_12s_goals_are_checked_against_the_run(self) -> None:
        lines = [f"{'✓' if met else '✗'} {what}" for met, what in goals(results())]
        self.assertIn("✓ c=1: City's p99 2.50 ms is 2.5× its p50 1.00 ms (goal ≤ 3×)", lines)
        self.assertIn("✓ c=1: City adds 0.90 ms at p50, Portkey 1.20 ms (goal: less)", lines)
        self.assertIn("✓ c=16: City's p99 40.0 ms, Portkey's 50.0 ms (goal: below Portkey's)", lines)
        self.assertIn("✗ c=64: City's p99 90.0 ms, Portkey's 80.0 ms (goal: below Portkey's)", lines)
        self.assertIn("✓ c=16: City serves 2.5× Portkey's requests/s (goal ≥ 2×)", lines)
        self.assertIn("✓ c=64: City serves 2.2× Portkey's requests/s (goal ≥ 2×)", lines)
        self.assertIn("✓ streaming at c=8: City adds 0.60 ms to the first event's p50 (goal ≤ 1.0 ms)", lines)
        self.assertIn("✓ streaming at c=1: City adds 0.30 ms to the first event's p50 (goal ≤ 0.5 ms)", lines)
        self.assertIn("✗ 1,000 open streams: 999 completed through City, 1,000 direct (goal: all)", lines)
        self.assertIn("✓ 1,000 open streams: City adds 35.0 ms to the first event's p50 (goal ≤ 50 ms)", lines)
        self.assertIn("✓ 1,000 open streams: at most 149 MB per City worker (goal ≤ 150 MB)", lines)
        self.assertIn("✗ 1,000 open streams: 5 s after they closed, each worker within +6.0 MB of its start (goal ≤ 5 MB)", lines)
        self.assertFalse(any("LiteLLM" in line for line in lines))  # not run: no ratio against it

    def test_the_table_has_issue_12s_rows_with_added_figures_over_the_simulator(self) -> None:
        table = report(results())
        self.assertIn("| | simulator alone | City | Portkey |", table)
        self.assertIn("| req/s at c=16 / c=64 | 20,000 / 20,000 | 2,000 / 1,800 | 800 / 800 |", table)
        self.assertIn("| added p50 at c=1 | (0.10 ms p50) | 0.90 ms | 1.20 ms |", table)
        self.assertIn("| p99 at c=1 | 0.30 ms (3.0× its p50) | 2.50 ms (2.5× its p50) | 9.00 ms (6.9× its p50) |", table)
        self.assertIn("| streaming: first event added, p50 at c=8 | (0.20 ms) | 0.60 ms | 55.8 ms |", table)
        self.assertIn("| CPU per request (c=1, c=16, c=64) | 1.00–1.00 ms | 1.00–1.00 ms | 1.00–1.00 ms |", table)
        # The goal's figures from the streams opened at a steady rate, the burst's beside them for information.
        self.assertIn("| opened 250/s: most open at one time | 1,000 | 998 |", table)
        self.assertIn("| opened 250/s: first event added, p50 / p99 | | 35.0 ms / 70.0 ms |", table)
        self.assertIn("| opened 250/s: City's CPU per stream (all workers) | | 4.50 ms |", table)
        self.assertIn("| opened at once: completed with `data: [DONE]` | 1,000 | 1,000 |", table)
        self.assertIn("| opened at once: first event added, p50 / p99 | | 860.0 ms / 1920.0 ms |", table)
        self.assertIn("| RSS per City worker, streams opened 250/s | before MB | peak MB | 5 s after close MB |", table)
        self.assertIn("| pid 12 | 112 | 149 | 118 |", table)

    def test_percentiles_are_nearest_rank(self) -> None:
        values = [float(v) for v in range(1, 101)]
        self.assertEqual((percentile(values, 0.5), percentile(values, 0.99), percentile([3.0], 0.99)), (50.0, 99.0, 3.0))


class WrkHeadersTests(SimpleTestCase):
    def test_wrk_sends_the_extra_headers_with_every_request(self) -> None:
        wrk_path = shutil.which("wrk")
        if wrk_path is None:
            self.skipTest("wrk is not installed (bench/run.py installs it)")
        seen: list[dict[str, str]] = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                seen.append(dict(self.headers.items()))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.shutdown)
        headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": "http://127.0.0.1:9/v1"}
        result = wrk(wrk_path, f"http://127.0.0.1:{server.server_port}", 1, 1, b'{"a": 1}', "tok", headers=headers)
        self.assertGreater(result["requests"], 0)
        self.assertEqual(
            {(h.get("x-portkey-provider"), h.get("x-portkey-custom-host"), h.get("Authorization")) for h in seen},
            {("openai", "http://127.0.0.1:9/v1", "Bearer tok")},
        )
