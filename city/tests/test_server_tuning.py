"""A server process's runtime settings (city/server_tuning.py): its start-up heap frozen out of the
collector's reach, the GIL's switch interval shortened, refresh-ahead on; a test or a command keeps
Python's defaults."""

import gc
import json
import os
import subprocess
import sys

from django.conf import settings
from django.test import SimpleTestCase

from city import server_tuning
from city.refresh_ahead import refresher

PROBE = """
import gc, json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "city.settings")
import city.asgi
from city.refresh_ahead import refresher
print(json.dumps({"frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects()), "switch": sys.getswitchinterval(), "refresh": refresher.enabled, "thresholds": gc.get_threshold()}))
"""


class ServerTuningTests(SimpleTestCase):
    def test_a_server_process_freezes_its_start_up_heap_and_hands_the_gil_back_sooner(self) -> None:
        env = {**os.environ, "REDIS_URL": ""}  # the embedded ledger: no Redis needed to build the app
        result = subprocess.run([sys.executable, "-c", PROBE], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        found = json.loads(result.stdout.strip().splitlines()[-1])
        # Django, the catalog and every module: far more objects frozen than left for the collector.
        self.assertGreater(found["frozen"], 50_000)
        self.assertLess(found["tracked"], found["frozen"] / 10)
        self.assertEqual(found["switch"], server_tuning.SWITCH_INTERVAL_SECONDS)
        self.assertTrue(found["refresh"])
        self.assertEqual(tuple(found["thresholds"]), server_tuning.GC_THRESHOLDS)

    def test_the_test_process_keeps_pythons_defaults(self) -> None:
        self.assertEqual(gc.get_freeze_count(), 0)
        self.assertEqual(sys.getswitchinterval(), 0.005)
        self.assertEqual(gc.get_threshold(), (700, 10, 10))
        self.assertFalse(refresher.enabled)

    def test_the_warm_freeze_is_a_server_processs_only(self) -> None:
        server_tuning.freeze_warm_heap()  # in this process: nothing happens
        self.assertEqual(gc.get_freeze_count(), 0)
