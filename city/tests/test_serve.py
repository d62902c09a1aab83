"""`manage.py serve`, the README's `make run`: Daphne, with an access log that keeps secrets out."""

import os
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx
from django.conf import settings
from django.test import SimpleTestCase

from city.livecity import free_port


class ServeTests(SimpleTestCase):
    def test_the_access_log_keeps_no_query_values_and_client_addresses_are_not_spoofable(self) -> None:
        port = free_port()
        base = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
        env = {**base, "CITY_PORT": str(port), "PYTHONUNBUFFERED": "1", "CITY_LOG_LEVEL": "WARNING"}
        with TemporaryDirectory() as folder:
            log_path = Path(folder) / "serve.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "manage.py", "serve"], cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
                )
                try:
                    url = f"http://127.0.0.1:{port}/v1/services?flow_id=oaf_pickup-secret-7f3k&code=provider-code-9q2"
                    self.assertEqual(self._first_answer(url, process, log_path).status_code, 200)
                    # With no trusted proxy (ACCOUNTS_TRUSTED_PROXY_COUNT=0), a client cannot choose its own address.
                    spoofed = httpx.get(f"http://127.0.0.1:{port}/v1/services?spoof=1", headers={"X-Forwarded-For": "203.0.113.9"})
                    self.assertEqual(spoofed.status_code, 200)
                finally:
                    process.terminate()
                    process.wait(10)
            output = log_path.read_text()
        self.assertIn("City on http://", output)
        self.assertIn('"GET /v1/services?flow_id=***&code=***" 200', output)
        self.assertNotIn("pickup-secret-7f3k", output)
        self.assertNotIn("provider-code-9q2", output)
        spoofed_line = next(line for line in output.splitlines() if "spoof=***" in line)
        self.assertTrue(spoofed_line.startswith("127.0.0.1:"), spoofed_line)
        self.assertNotIn("203.0.113.9", output)

    def _first_answer(self, url: str, process: subprocess.Popen, log_path: Path) -> httpx.Response:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.fail(f"manage.py serve exited early:\n{log_path.read_text()[-2000:]}")
            try:
                return httpx.get(url, timeout=2.0)
            except httpx.HTTPError:
                time.sleep(0.1)
        self.fail("manage.py serve did not answer within 30 s")
