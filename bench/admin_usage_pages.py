"""Time the admin's usage dashboard and model board over the rollups of 5 million usage records.

    .venv/bin/python bench/admin_usage_pages.py                      # SQLite (a scratch test database)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/city .venv/bin/python bench/admin_usage_pages.py

The pages read UsageRollup only (hour × studio × token × account × model), so what they cost
depends on the rollup rows in the range, not on the records. Seeded here: 90 days of hours, 160
(studio, token, model) rows an hour — 343,955 distinct rows — whose `requests` add up to 5,000,000
(the records they sum; the records themselves are not needed by these pages). A scratch database is
built the way the test runner does (`test_<name>`) and dropped afterwards.
"""

import os
import random
import statistics
import sys
import time
from datetime import UTC, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "city.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from aihub.models import UsageRollup  # noqa: E402
from bench.admin_scale import _insert  # noqa: E402

# BENCH_RECORDS=1000000 BENCH_ROWS_PER_HOUR=32: the SQLite target (1 million records), at the same
# number of records per rollup row (about 14.5).
RECORDS = int(os.environ.get("BENCH_RECORDS", 5_000_000))
HOURS = 90 * 24
ROWS_PER_HOUR = int(os.environ.get("BENCH_ROWS_PER_HOUR", 160))
STUDIOS, TOKENS_PER_STUDIO = 400, 5
MODELS = ["deepseek-v4-flash", "deepseek-v4-pro", "gpt-5-mini", "gpt-5", "claude-sonnet-4-6", "gemini-2.5-flash", "qwen-plus", "glm-5"]


def seed(rng: random.Random) -> str:
    """Insert the rollup rows; returns a studio id to filter by."""
    now = timezone.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    per_row, extra = divmod(RECORDS, HOURS * ROWS_PER_HOUR)
    rows: list[tuple] = []
    n = 0
    for h in range(HOURS):
        hour = now - timedelta(hours=h)
        for _ in range(ROWS_PER_HOUR):
            s = rng.randrange(STUDIOS)
            requests = per_row + (1 if n < extra else 0)
            errors = requests // 20
            key = (hour, f"studio_{s:026d}", f"tok_{s:020d}{rng.randrange(TOKENS_PER_STUDIO):06d}", "", rng.choice(MODELS))
            rows.append(
                (*key, requests, errors, 0, requests * 900, requests * 200, requests * 100, requests * 1_100_000_000, requests * 800, hour)
            )
            n += 1
    rows = list({r[:5]: r for r in rows}.values())  # one row per rollup key, as the unique constraint wants
    columns = ["hour", "studio_id", "token_id", "account_id", "model", "requests", "errors", "cancelled", "prompt_tokens",
               "completion_tokens", "cached_tokens", "cost", "latency_ms", "last_at"]  # fmt: skip
    if connection.vendor == "sqlite":
        rows = [
            (str(r[0].replace(tzinfo=None)), *r[1:13], str(r[13].replace(tzinfo=None))) for r in rows
        ]  # how Django stores UTC in SQLite
    _insert(UsageRollup, columns, rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return "studio_" + "7".zfill(26)


def main() -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    setup_test_environment()
    databases = setup_databases(verbosity=0, interactive=False)
    try:
        started = time.perf_counter()
        studio = seed(random.Random(7))
        rollups = UsageRollup.objects.count()
        print(
            f"database: {connection.vendor}; {rollups:,} rollup rows summing {RECORDS:,} records, seeded in {time.perf_counter() - started:.1f} s"
        )
        client = Client()
        client.force_login(get_user_model().objects.create_superuser("bench", "bench@example.invalid", "bench-password-not-secret"))
        pages = [
            ("dashboard, last 24 hours", "/admin/usage/?range=24h"),
            ("dashboard, last 7 days", "/admin/usage/?range=7d"),
            ("dashboard, last 30 days", "/admin/usage/?range=30d"),
            ("dashboard, last 90 days", "/admin/usage/?range=90d"),
            ("dashboard, 90 days, one studio", f"/admin/usage/?range=90d&studio={studio}"),
            ("dashboard, 90 days, one model", "/admin/usage/?range=90d&model=gpt-5"),
            ("model board", "/admin/models/"),
        ]
        print(f"{'page':34} {'median ms':>10} {'worst ms':>10}")
        for label, url in pages:
            client.get(url)  # warm: templates compiled, pages cached by the database
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, (url, response.status_code)
            print(f"{label:34} {statistics.median(times):10.1f} {max(times):10.1f}")
    finally:
        teardown_databases(databases, verbosity=0)


if __name__ == "__main__":
    main()
