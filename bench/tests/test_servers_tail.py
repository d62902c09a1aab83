"""bench/servers_tail.py: it measures Daphne as `manage.py serve` runs it, and its table's verdict."""

from io import StringIO
from unittest import mock

from django.core.management import call_command
from django.test import SimpleTestCase, override_settings

from bench.servers_tail import server_argv, table


def cell(p50: float, p99: float) -> dict:
    return {"p50_ms": p50, "p99_ms": p99, "cpu_ms_per_request": 1.0}


class ServersTailTests(SimpleTestCase):
    @override_settings(CITY_HOST="127.0.0.1", CITY_PORT=45123, ACCOUNTS_TRUSTED_PROXY_COUNT=0)
    def test_daphne_runs_as_make_run_runs_it(self) -> None:
        with mock.patch("os.execv") as execv:
            call_command("serve", stdout=StringIO())
        self.assertEqual(execv.call_args.args[1], server_argv("daphne", 45123))

    def test_the_verdict_is_on_the_median_of_the_rounds(self) -> None:
        rounds = [
            {"order": ["daphne", "uvicorn"], "daphne": cell(2, 90), "uvicorn": cell(1, 10)},
            {"order": ["uvicorn", "daphne"], "daphne": cell(2, 20), "uvicorn": cell(1, 10)},
            {"order": ["daphne", "uvicorn"], "daphne": cell(2, 25), "uvicorn": cell(1, 10)},
        ]
        within = table({"SQLite": rounds})
        self.assertIn("| SQLite | **median** | 2.00 · 25.00 · 1.00 | 1.00 · 10.00 · 1.00 | 2.5× |", within)
        self.assertIn("Daphne's median p99 at c=1 is 2.5× uvicorn's, within 3×", within)
        rounds[1]["daphne"] = cell(2, 40)
        self.assertIn("is 4.0× uvicorn's, NOT within 3×", table({"SQLite": rounds}))
