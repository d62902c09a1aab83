"""Daphne's app (and with it Twisted's reactor) is loaded only where Daphne may serve: a process of
`python -m city.serve_prod` (uvicorn) builds City without it (city/settings.py's CITY_ASGI_SERVER)."""

import json
import os
import subprocess
import sys

from django.conf import settings
from django.test import SimpleTestCase

APP_PROBE = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "city.settings")
import city.asgi
from django.conf import settings
print(json.dumps({"daphne_app": "daphne" in settings.INSTALLED_APPS, "twisted": "twisted" in sys.modules}))
"""

SERVE_PROD_PROBE = """
import json, os
from city import serve_prod

def run(self, sockets=None):  # instead of serving: what the process's settings will read
    self.started = True
    print(json.dumps(os.environ.get("CITY_ASGI_SERVER")))

serve_prod.Server.run = run
serve_prod.main(["--port", "0"])
"""


def probe(code: str, **env: str) -> object:
    environ = {**os.environ, "REDIS_URL": "", **env}  # the embedded ledger: no Redis needed to build the app
    environ.pop("CITY_ASGI_SERVER", None)
    environ.update(env)
    result = subprocess.run([sys.executable, "-c", code], cwd=settings.BASE_DIR, env=environ, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


class AsgiServerAppsTests(SimpleTestCase):
    def test_a_uvicorn_process_builds_city_without_daphne_or_twisted(self) -> None:
        self.assertEqual(probe(APP_PROBE, CITY_ASGI_SERVER="uvicorn"), {"daphne_app": False, "twisted": False})

    def test_any_other_process_keeps_daphnes_app_for_its_runserver(self) -> None:
        self.assertEqual(probe(APP_PROBE), {"daphne_app": True, "twisted": True})

    def test_serve_prod_tells_its_processes_they_run_under_uvicorn(self) -> None:
        self.assertEqual(probe(SERVE_PROD_PROBE), "uvicorn")
