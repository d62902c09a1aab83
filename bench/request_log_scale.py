"""Time the request log — `ai/logs` and its admin list — over millions of usage records.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/city .venv/bin/python bench/request_log_scale.py --rows 5000000
    .venv/bin/python bench/request_log_scale.py --rows 1000000          # SQLite (a scratch file under var/)

It builds a scratch database the way the test runner does (`test_<name>`, created and dropped here;
the real database is never touched) and fills it with one INSERT … SELECT (PostgreSQL's
generate_series, SQLite's recursive CTE): 1,000 studios (one small one), 20,000 tokens (one in
five an account's), ten models, calls 1.5 s apart over the last months, 97 % answered and the rest
failures of four kinds. Then each query of the request log — every filter, alone and beside a
studio, first pages and a page 200 pages deep — through the real routes, a few times: the median
and worst milliseconds.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "city.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

MODELS = ["deepseek-v4-flash", "gpt-5-mini", "claude-haiku-4-5", "gemini-2.5-flash", "gpt-4.1", "kimi-k2.5", "glm-5", "qwen-plus"]
MODELS += ["claude-opus-4-6", "llama-4-maverick"]  # the last one rare: one call in a thousand
SMALL_STUDIO = "studio_small"


def seed(rows: int) -> None:
    """`rows` usage records, newest now, 1.5 s apart; studio_small gets one in 100,000."""
    pg = connection.vendor == "postgresql"
    now = "now()" if pg else "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    ago = (lambda s: f"{now} - ({s}) * interval '1.5 second'") if pg else (lambda s: f"datetime('now', '-' || (({s}) * 1.5) || ' seconds')")
    with connection.cursor() as cursor:
        numbers = (
            "generate_series(0, 999) AS t(i)"
            if pg
            else "(WITH RECURSIVE t(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM t WHERE i < 999) SELECT i FROM t)"
        )
        cursor.execute(
            "INSERT INTO studios_studio (id, name, status, created_at, updated_at) "
            f"SELECT 'studio_' || i, 'Studio ' || i, 'active', {now}, {now} FROM {numbers}"
        )
        cursor.execute(
            f"INSERT INTO studios_studio (id, name, status, created_at, updated_at) VALUES (%s, 'Small', 'active', {now}, {now})",
            [SMALL_STUDIO],
        )
        models = "ARRAY[" + ", ".join(f"'{m}'" for m in MODELS) + "]"
        if pg:
            source = f"generate_series(1, {rows}) AS g(i)"
            model = f"({models})[CASE WHEN i % 1000 = 0 THEN 10 ELSE 1 + (i % 9) END]"
        else:
            source = f"(WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {rows}) SELECT i FROM g)"
            model = (
                "CASE WHEN i % 1000 = 0 THEN 'llama-4-maverick' ELSE "
                + "CASE i % 9 "
                + " ".join(f"WHEN {n} THEN '{m}'" for n, m in enumerate(MODELS[:9]))
                + " END END"
            )
        status = (
            "CASE WHEN i % 100 = 7 THEN 502 WHEN i % 100 = 8 THEN 429 WHEN i % 200 = 9 THEN 499 WHEN i % 200 = 10 THEN 400 ELSE 200 END"
        )
        code = (
            "CASE WHEN i % 100 = 7 THEN 'upstream_error' WHEN i % 100 = 8 THEN 'rate_limit_exceeded' "
            "WHEN i % 200 = 9 THEN 'client_closed' WHEN i % 200 = 10 THEN 'invalid_request' ELSE '' END"
        )
        token = "'tok_' || (i % 20000)"
        account = "CASE WHEN i % 20000 % 5 = 0 THEN 'acct_' || (i % 20000) ELSE NULL END"
        studio = f"CASE WHEN i % 100000 = 3 THEN '{SMALL_STUDIO}' ELSE 'studio_' || (i % 20000 % 1000) END"
        false = "false" if pg else "0"
        cursor.execute(
            "INSERT INTO aihub_usagerecord (created_at, studio_id, token_id, account_id, request_id, model, provider, modality, "
            "prompt_tokens, completion_tokens, usage_estimated, cost, latency_ms, ttft_ms, status, error_code, call_id, route, "
            "deployment, streamed, cancelled, cached_tokens, reasoning_tokens) "
            f"SELECT {ago(f'{rows} - i')}, {studio}, {token}, {account}, 'req_' || i, {model}, 'sim', 'chat', "
            f"100 + i % 900, 10 + i % 300, {false}, (100 + i % 900) * 150000 + (10 + i % 300) * 600000, 200 + i % 3000, NULL, "
            f"{status}, {code}, 'call_' || i, 'chat/completions', 'sim-model', {false}, {false}, i % 50, 0 FROM {source}"
        )
        cursor.execute("ANALYZE")


def cases() -> list[tuple[str, dict[str, str]]]:
    big = "studio_7"
    return [
        ("everything", {}),
        ("studio", {"studio_id": big}),
        ("small studio", {"studio_id": SMALL_STUDIO}),
        ("token", {"token_id": "tok_1234"}),
        ("account", {"account_id": "acct_1235"}),
        ("model", {"model": "gpt-5-mini"}),
        ("rare model", {"model": "llama-4-maverick"}),
        ("studio + model", {"studio_id": big, "model": "gpt-5-mini"}),
        ("studio + rare model", {"studio_id": big, "model": "llama-4-maverick"}),
        ("status 5xx", {"status": "5xx"}),
        ("status 502", {"status": "502"}),
        ("status error", {"status": "error"}),
        ("status 200", {"status": "200"}),
        ("studio + 5xx", {"studio_id": big, "status": "5xx"}),
        ("small studio + 5xx", {"studio_id": SMALL_STUDIO, "status": "5xx"}),
        ("token + error", {"token_id": "tok_1234", "status": "error"}),
        ("model + 5xx", {"model": "gpt-5-mini", "status": "5xx"}),
        ("error code", {"error_code": "invalid_request"}),
        ("error code, none such", {"error_code": "no_such_code"}),
        ("studio + error code", {"studio_id": big, "error_code": "client_closed"}),
        ("request id", {"request_id": "req_4242"}),
        ("studio + request id", {"studio_id": "studio_242", "request_id": "req_4242"}),
        ("one hour, a week ago", {"start": "-169h", "end": "-168h"}),
        ("studio + one day", {"studio_id": big, "start": "-48h", "end": "-24h"}),
    ]


def main() -> None:
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases
    from django.utils import timezone

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch database, and use the one kept before (to EXPLAIN in psql); drop it yourself"
    )
    args = parser.parse_args()
    setup_test_environment()
    databases = setup_databases(verbosity=0, interactive=False, keepdb=args.keep, serialized_aliases=set())
    try:
        from aihub.models import UsageRecord

        started = time.perf_counter()
        if not UsageRecord.objects.exists():
            seed(args.rows)
        rows = UsageRecord.objects.count()
        print(f"database: {connection.vendor}; {rows:,} usage records, seeded in {time.perf_counter() - started:.0f} s")
        api = Client(HTTP_AUTHORIZATION=f"Bearer {settings.ADMIN_SECRET_KEY}")
        now = timezone.now()

        def timed(url: str, params: dict[str, str]) -> tuple[float, float, dict]:
            api.get(url, params)  # warm
            times, body = [], {}
            for _ in range(5):
                t0 = time.perf_counter()
                response = api.get(url, params)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, (params, response.content[:300])
                body = response.json()
            return statistics.median(times), max(times), body

        print(f"{'ai/logs, limit 50':28} {'rows':>5} {'median ms':>10} {'worst ms':>10}")
        for label, params in cases():
            for key in ("start", "end"):
                if key in params:
                    params[key] = (now - timedelta(hours=int(params[key][1:-1]))).isoformat()
            median, worst, body = timed("/v1/ai/logs", params)
            print(f"{label:28} {len(body['items']):5} {median:10.1f} {worst:10.1f}")
        cursor: str | None = None
        deep = 0
        while deep < 200:  # 200 pages of 200 rows, newest first (fewer if the log ends sooner)
            body = api.get("/v1/ai/logs", {"limit": "200", **({"cursor": cursor} if cursor else {})}).json()
            if body["next_cursor"] is None:
                break
            cursor, deep = body["next_cursor"], deep + 1
        median, worst, body = timed("/v1/ai/logs", {"limit": "200", **({"cursor": cursor} if cursor else {})})
        print(f"{f'everything, page {deep + 1}, 200 rows':28} {len(body['items']):5} {median:10.1f} {worst:10.1f}")
        admin = Client()
        user = get_user_model().objects.filter(username="bench").first()
        admin.force_login(user or get_user_model().objects.create_superuser("bench", "bench@example.invalid", "bench-password-not-secret"))
        print(f"{'admin request log':28} {'':5} {'median ms':>10} {'worst ms':>10}")
        pages = [
            ("list", ""),
            ("last 24 h, failed", "?since=24h&status=error"),
            ("studio + token filter", "?studio_id=studio_7&token_id=tok_1007"),
            ("model + 5xx", "?model=gpt-5-mini&status=5xx"),
            ("error code", "?error_code=invalid_request"),
            ("search request id", "?q=req_4242"),
        ]
        for label, query in pages:
            url = "/admin/aihub/usagerecord/" + query
            admin.get(url)
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                assert admin.get(url).status_code == 200, url
                times.append((time.perf_counter() - t0) * 1000)
            print(f"{label:28} {'':5} {statistics.median(times):10.1f} {max(times):10.1f}")
    finally:
        if not args.keep:
            teardown_databases(databases, verbosity=0)


if __name__ == "__main__":
    main()
