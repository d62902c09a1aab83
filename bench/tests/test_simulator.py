"""The benchmark's upstream simulator, run as `make bench` runs it (its own process, uvloop):
it answers OpenAI's shapes on kept-alive connections, and streams chunk by chunk to [DONE]."""

import http.client
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
from django.test import SimpleTestCase

from aihub.tests.openai_schema import validate
from bench import streamclient
from bench.procs import free_port

SIMULATOR = Path(__file__).resolve().parent.parent / "simulator.py"
CHAT = {"model": "bench-model", "messages": [{"role": "user", "content": "Hi"}]}


class SimulatorTests(SimpleTestCase):
    url: str
    process: subprocess.Popen[bytes]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        port = free_port()
        cls.url = f"http://127.0.0.1:{port}"
        argv = [sys.executable, str(SIMULATOR), "--port", str(port), "--chunks", "3", "--chunk-interval-ms", "20"]
        argv += ["--slow-chunks", "2", "--slow-chunk-interval-ms", "30"]
        cls.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        cls.addClassCleanup(cls.stop)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{cls.url}/v1/models", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                if cls.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the simulator did not start; exit code {cls.process.poll()}") from None
                time.sleep(0.1)

    @classmethod
    def stop(cls) -> None:
        cls.process.terminate()
        cls.process.wait(10)

    def test_completions_answer_openais_shape_on_one_kept_alive_connection(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", int(self.url.rsplit(":", 1)[1]), timeout=10)
        local_ports = set()
        for _ in range(3):
            connection.request("POST", "/v1/chat/completions", json.dumps(CHAT), {"Content-Type": "application/json"})
            response = connection.getresponse()
            self.assertEqual(response.status, 200)
            validate(json.loads(response.read()), "CreateChatCompletionResponse")
            local_ports.add(connection.sock.getsockname()[1])  # a new connection would come from another local port
        connection.close()
        self.assertEqual(len(local_ports), 1)

    def test_a_stream_sends_its_chunks_as_they_fall_due_then_done(self) -> None:
        arrivals: list[float] = []
        events: list[str] = []
        with httpx.stream("POST", f"{self.url}/v1/chat/completions", json={**CHAT, "stream": True}) as response:
            self.assertEqual(response.status_code, 200)
            for line in response.iter_lines():
                if line.startswith("data: "):
                    arrivals.append(time.monotonic())
                    events.append(line.removeprefix("data: "))
        self.assertEqual(events[-1], "[DONE]")
        for event in events[:-1]:
            validate(json.loads(event), "CreateChatCompletionStreamResponse")
        self.assertEqual(len(events), 5)  # the first chunk, 3 more, and [DONE] (written with the last)
        self.assertGreater(arrivals[-1] - arrivals[0], 0.04)  # 3 chunks 20 ms apart, not one burst

    def test_marked_bodies_get_a_short_or_a_slow_stream_and_the_stream_clients_read_them_to_done(self) -> None:
        port = int(self.url.rsplit(":", 1)[1])

        def chat(mark: str) -> bytes:
            return json.dumps({**CHAT, "messages": [{"role": "user", "content": f"Hi {mark}"}], "stream": True}).encode()

        short = streamclient.stream_load(port, "/v1/chat/completions", chat("[bench:short-stream]"), None, 2, 0.2, {"x-bench": "1"})
        self.assertGreater(len(short), 2)
        self.assertEqual({t.events for t in short}, {3})  # the first chunk, the last, [DONE]
        opened = streamclient.open_streams(port, "/v1/chat/completions", chat("[bench:slow-stream]"), "t", 20, 10)
        self.assertEqual((len(opened.timings), opened.failures), (20, []))
        self.assertEqual({t.events for t in opened.timings}, {4})  # the first chunk, 2 more 30 ms apart, [DONE]
        self.assertGreater(min(t.total_ms for t in opened.timings), 50)
        # At 1,000 a second, 20 streams open over 19 ms: each lasts longer, so all are open together at the end.
        ramp = streamclient.open_streams(port, "/v1/chat/completions", chat("[bench:slow-stream]"), "t", 20, 10, per_second=1000)
        self.assertEqual((len(ramp.timings), ramp.failures, ramp.peak_open), (20, [], 20))
        self.assertGreater(ramp.seconds, 0.019 + min(t.total_ms for t in ramp.timings) / 1000)  # the last opened 19 ms after the first
