"""Time `ai/usage`, aihub/usage_query.py, the admin's usage dashboard and its model board over millions
of usage records.

    .venv/bin/python bench/usage_scale.py --records 1000000          # SQLite (a scratch file under var/)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/usage_scale .venv/bin/python bench/usage_scale.py --records 5000000

It builds a scratch database the way the test runner does (`test_<name>`, created and dropped here;
the real database is never touched), with 40 studios, 400 tokens (a quarter of them an account's)
and 15 catalog models, and writes N usage records spread over 90 days, a few tokens and models
taking most of the traffic, as production's are. Records go straight in with bulk SQL (PostgreSQL:
one INSERT … SELECT over generate_series; SQLite: executemany), and their rollups with one INSERT …
SELECT … GROUP BY, which is checked against what insert_records would have written
(`aihub.rollups.sums_of`) on a sample of hours and on the whole table's sums. Then it asks the
admin's usual views through City's real routes (Django's test client: identity, input checks, the
handler, JSON or CSV), through usage_query alone, and the admin site's pages (/admin/usage/ over
24 hours to 90 days, for everyone, one studio or one model, and /admin/models/, signed in as a
superuser), and prints the median and worst times and the queries each took. It stops by itself
after --max-minutes.
"""

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import in_process
import procs

in_process.configure()

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

DAYS = 90
STUDIOS = 40
TOKENS = 400
MODELS = 15
STATUSES = [(200, 0.97), (502, 0.02), (499, 0.01)]  # answered, failed, cancelled by the client


def cast() -> dict[str, Any]:
    """Studios, tokens (every fourth an account's) and the models, made the way the API makes them."""
    from accounts.operations import create_account
    from aihub.catalog import MODELS as CATALOG
    from studios import operations

    studios = [operations.create_studio(f"Bench studio {i:02d}", actor="bench") for i in range(STUDIOS)]
    accounts = {}
    tokens, secrets = [], {}
    for k in range(TOKENS):
        studio = studios[k % STUDIOS]
        account_id = None
        if k % 4 == 0:
            account = create_account(studio.id, f"user{k}@example.invalid", email_verified=True, actor="bench")
            accounts[k] = account_id = account.id
        token, raw = operations.issue_token(studio.id, f"key {k}", expires_at=None, actor="bench", account_id=account_id)
        tokens.append((token.id, studio.id, account_id or ""))
        secrets[k] = raw
    chat = [m for m in CATALOG if m.output_price > 0][:MODELS]
    return {
        "studios": [s.id for s in studios],
        "tokens": tokens,
        "secrets": secrets,
        "models": [(m.id, m.input_price, m.output_price) for m in chat],
    }


def _sql_text(values: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _sql_ints(values: list[int]) -> str:
    return "ARRAY[" + ", ".join(str(v) for v in values) + "]::bigint[]"


def records_postgresql(n: int, now: datetime, the: dict[str, Any]) -> None:
    """One INSERT … SELECT: each row draws its token (skewed: r³), model (r²), time, status and tokens.
    Cost = prompt × input price + completion × output price, in 1e-12 USD, as the meter computes it."""
    tokens, models = the["tokens"], the["models"]
    sql = f"""
        INSERT INTO aihub_usagerecord (created_at, studio_id, token_id, account_id, request_id, model, provider, modality,
            prompt_tokens, completion_tokens, usage_estimated, cost, latency_ms, ttft_ms, status, error_code, call_id, route,
            deployment, streamed, cancelled, cached_tokens, reasoning_tokens)
        SELECT at, s.studio, nullif(s.token, ''), nullif(s.account, ''), 'req_bench_' || g, s.model, 'bench', 'chat',
            s.prompt, s.completion, false, s.prompt * s.inp + s.completion * s.outp, 200 + (s.r5 * 3000)::int, null,
            s.status, CASE WHEN s.status = 502 THEN 'upstream_error' ELSE '' END, null, 'chat/completions',
            s.model, false, s.status = 499, (s.prompt * s.r6 * 0.3)::int, 0
        FROM (
            SELECT g, at, t, m, r5, r6,
                ({_sql_text([t[1] for t in tokens])})[t] AS studio,
                ({_sql_text([t[0] for t in tokens])})[t] AS token,
                ({_sql_text([t[2] for t in tokens])})[t] AS account,
                ({_sql_text([m[0] for m in models])})[m] AS model,
                ({_sql_ints([m[1] for m in models])})[m] AS inp,
                ({_sql_ints([m[2] for m in models])})[m] AS outp,
                CASE WHEN r4 < 0.97 THEN 200 WHEN r4 < 0.99 THEN 502 ELSE 499 END AS status,
                50 + (r7 * r7 * 4000)::int AS prompt,
                CASE WHEN r4 < 0.97 THEN (r8 * 600)::int ELSE 0 END AS completion
            FROM (
                SELECT g, %s::timestamptz - random() * interval '{DAYS} days' AS at,
                    1 + floor(power(random(), 3) * {len(tokens)})::int AS t, 1 + floor(power(random(), 2) * {len(models)})::int AS m,
                    random() AS r4, random() AS r5, random() AS r6, random() AS r7, random() AS r8
                FROM generate_series(1, %s) AS g
            ) AS drawn
        ) AS s
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(sql, [now, n])


def records_sqlite(n: int, now: datetime, the: dict[str, Any]) -> None:
    """The same draws in Python, written with executemany in batches."""
    from aihub.models import UsageRecord

    rng = random.Random(42)
    tokens, models = the["tokens"], the["models"]
    fields = [f for f in UsageRecord._meta.concrete_fields if not f.primary_key]
    names = [f.attname for f in fields]
    sql = f"INSERT INTO aihub_usagerecord ({', '.join(f.column for f in fields)}) VALUES ({', '.join(['%s'] * len(fields))})"  # type: ignore[misc]
    adapt = connection.ops.adapt_datetimefield_value
    span = DAYS * 86400
    batch: list[list[Any]] = []
    with connection.cursor() as cursor:
        for g in range(1, n + 1):
            token_id, studio_id, account_id = tokens[int(rng.random() ** 3 * len(tokens))]
            model, inp, outp = models[int(rng.random() ** 2 * len(models))]
            r4 = rng.random()
            status = 200 if r4 < 0.97 else 502 if r4 < 0.99 else 499
            prompt = 50 + round(rng.random() ** 2 * 4000)
            completion = round(rng.random() * 600) if status == 200 else 0
            row = {
                "created_at": adapt(now - timedelta(seconds=rng.random() * span)),
                "studio_id": studio_id,
                "token_id": token_id,
                "account_id": account_id or None,
                "request_id": f"req_bench_{g}",
                "model": model,
                "provider": "bench",
                "modality": "chat",
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "usage_estimated": False,
                "cost": prompt * inp + completion * outp,
                "latency_ms": 200 + round(rng.random() * 3000),
                "ttft_ms": None,
                "status": status,
                "error_code": "upstream_error" if status == 502 else "",
                "call_id": None,
                "route": "chat/completions",
                "deployment": model,
                "streamed": False,
                "cancelled": status == 499,
                "cached_tokens": round(prompt * rng.random() * 0.3),
                "reasoning_tokens": 0,
            }
            batch.append([row[name] for name in names])
            if len(batch) == 10_000:
                cursor.executemany(sql, batch)
                batch.clear()
        if batch:
            cursor.executemany(sql, batch)


def rollups_from_records() -> None:
    """The hourly rollups of every record, then the daily ones of the hours, one statement each: the sums
    aihub/rollups.py adds as records are written."""
    hour = "date_trunc('hour', created_at)" if connection.vendor == "postgresql" else "strftime('%Y-%m-%d %H:00:00', created_at)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO aihub_usagerollup (hour, studio_id, token_id, account_id, model, requests, errors, cancelled,
                prompt_tokens, completion_tokens, cached_tokens, cost, latency_ms, last_at)
            SELECT {hour}, studio_id, coalesce(token_id, ''), coalesce(account_id, ''), model, count(*),
                sum(CASE WHEN status = 499 OR status BETWEEN 200 AND 299 THEN 0 ELSE 1 END),
                sum(CASE WHEN status = 499 THEN 1 ELSE 0 END),
                sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(cost), sum(latency_ms), max(created_at)
            FROM aihub_usagerecord GROUP BY 1, 2, 3, 4, 5"""
        )
        day = "(hour AT TIME ZONE 'UTC')::date" if connection.vendor == "postgresql" else "date(hour)"
        cursor.execute(
            f"""INSERT INTO aihub_usagedailyrollup (day, studio_id, token_id, account_id, model, requests, errors, cancelled,
                prompt_tokens, completion_tokens, cached_tokens, cost, latency_ms, last_at)
            SELECT {day}, studio_id, token_id, account_id, model, sum(requests), sum(errors), sum(cancelled),
                sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(cost), sum(latency_ms), max(last_at)
            FROM aihub_usagerollup GROUP BY 1, 2, 3, 4, 5"""
        )


def check_rollups(now: datetime, hours: int = 5, days: int = 2) -> str:
    """The rollups equal what insert_records adds (aihub.rollups.sums_of, by_day) for `hours` whole hours
    and `days` whole days of records, key by key, and in total."""
    from django.db.models import Count, Sum

    from aihub.models import UsageDailyRollup, UsageRecord, UsageRollup
    from aihub.rollups import SUMMED, by_day, hour_of, sums_of

    rng = random.Random(7)
    fields = [f.attname for f in UsageRecord._meta.concrete_fields]

    def compare(model: Any, where: dict[str, Any], start: datetime, length: timedelta, daily: bool) -> None:
        found = UsageRecord.objects.filter(created_at__gte=start, created_at__lt=start + length).values(*fields)
        expected = sums_of((record, record["created_at"]) for record in found)
        expected = by_day(expected) if daily else expected
        first = "day" if daily else "hour"
        stored = {(getattr(r, first), r.studio_id, r.token_id, r.account_id, r.model): r for r in model.objects.filter(**where)}
        assert set(stored) == set(expected), f"rollup keys differ at {start}"
        for key, sums in expected.items():
            got = [getattr(stored[key], name) for name in (*SUMMED, "last_at")]
            assert got == [getattr(sums, name) for name in (*SUMMED, "last_at")], f"rollup {key} differs: {got}"

    for _ in range(hours):
        start = hour_of(now - timedelta(hours=rng.randint(1, DAYS * 24 - 1)))
        compare(UsageRollup, {"hour": start}, start, timedelta(hours=1), daily=False)
    for _ in range(days):
        start = hour_of(now - timedelta(days=rng.randint(1, DAYS - 1))).replace(hour=0)
        compare(UsageDailyRollup, {"day": start.date()}, start, timedelta(days=1), daily=True)
    by_records = UsageRecord.objects.aggregate(requests=Count("id"), cost=Sum("cost"), prompt_tokens=Sum("prompt_tokens"))
    for model in (UsageRollup, UsageDailyRollup):
        by_rollups = model.objects.aggregate(requests=Sum("requests"), cost=Sum("cost"), prompt_tokens=Sum("prompt_tokens"))
        assert by_records == by_rollups, (model.__name__, by_records, by_rollups)
    return f"rollups checked against insert_records' sums (sums_of, by_day): {hours} hours and {days} days key by key, both tables' totals"


def views(the: dict[str, Any], now: datetime) -> list[tuple[str, str, dict[str, str]]]:
    """(label, credential, query) of the views timed through GET /v1/ai/usage."""
    from django.conf import settings

    admin = settings.ADMIN_SECRET_KEY
    day = timedelta(days=1)
    last = {"start": (now - 30 * day).isoformat(), "end": now.isoformat()}
    whole = {"start": (now - DAYS * day).isoformat(), "end": now.isoformat()}
    busiest_studio = the["tokens"][0][1]
    return [
        ("admin: 30 days by day", admin, {**last, "group_by": "day"}),
        ("admin: 30 days by model", admin, {**last, "group_by": "model"}),
        ("admin: 30 days top studios", admin, {**last, "group_by": "studio"}),
        ("admin: 30 days top tokens", admin, {**last, "group_by": "token"}),
        ("admin: 90 days by day", admin, {**whole, "group_by": "day"}),
        ("admin: 7 days by hour", admin, {"start": (now - 7 * day).isoformat(), "end": now.isoformat(), "group_by": "hour"}),
        ("admin: one studio, 90 days by day", admin, {**whole, "group_by": "day", "studio_id": busiest_studio}),
        ("admin: one model, 90 days by studio", admin, {**whole, "group_by": "studio", "model": the["models"][0][0]}),
        ("admin: 30 days by model, CSV", admin, {**last, "group_by": "model", "format": "csv"}),
        ("token: its studio, 30 days by day", the["secrets"][1], last),
        ("account's token: 90 days by token", the["secrets"][0], {**whole, "group_by": "token"}),
    ]


def pages(the: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, path) of the admin site's pages timed: the dashboard's ranges and filters, the model board."""
    busiest_studio, busiest_model = the["tokens"][0][1], the["models"][0][0]
    return [
        ("dashboard: last 24 hours", "/admin/usage/?range=24h"),
        ("dashboard: last 7 days", "/admin/usage/?range=7d"),
        ("dashboard: last 30 days", "/admin/usage/?range=30d"),
        ("dashboard: last 90 days", "/admin/usage/?range=90d"),
        ("dashboard: 90 days, one studio", f"/admin/usage/?range=90d&studio={busiest_studio}"),
        ("dashboard: 90 days, one model", f"/admin/usage/?range=90d&model={busiest_model}"),
        ("model board", "/admin/models/"),
    ]


def timed(run: Any, repeat: int) -> tuple[float, float, int]:
    """Median and worst ms over `repeat` runs after a warm-up, and the queries of one run."""
    run()
    with CaptureQueriesContext(connection) as queries:
        run()
    count = len(queries)  # now: a request's end closes the connection, and the next one's log starts empty
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), max(times), count


def fetch(client: Any, label: str, path: str, query: dict[str, str] | None = None, **headers: str) -> Any:
    """GET through City's routes; anything but a 200 stops the run (a refusal would be timed as fast)."""
    response = client.get(path, query or {}, **headers)
    assert response.status_code == 200, (label, response.status_code, response.content[:300])
    return response


def report(label: str, run: Any, repeat: int, rows: Any = "—") -> None:
    median, worst, queries = timed(run, repeat)
    print(f"{label:40} {median:10.1f} {worst:10.1f} {queries:8} {rows(run()) if callable(rows) else rows:>6}")


def rows_of(answer: Any) -> int:
    """The rows of an ai/usage answer, JSON or CSV (less its header)."""
    return len(answer.json()["rows"]) if answer["Content-Type"] == "application/json" else answer.content.count(b"\n") - 1


def measure(the: dict[str, Any], now: datetime, repeat: int) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from aihub.usage_query import UsageFilter, grouped, totals

    client = Client()
    print(f"{'view':40} {'median ms':>10} {'worst ms':>10} {'queries':>8} {'rows':>6}")
    for label, credential, query in views(the, now):
        bearer = f"Bearer {credential}"
        report(
            label,
            lambda label=label, query=query, bearer=bearer: fetch(client, label, "/v1/ai/usage", query, HTTP_AUTHORIZATION=bearer),
            repeat,
            rows_of,
        )
    month = UsageFilter(start=now - timedelta(days=30), end=now)
    for label, run in (
        ("usage_query.totals, 30 days", lambda: totals(month)),
        ("usage_query.grouped, 30 days by day", lambda: grouped(month, "day")),
        ("usage_query.grouped, 30 days by studio", lambda: grouped(month, "studio")),
    ):
        report(label, run, repeat)
    staff = Client()
    staff.force_login(get_user_model().objects.create_superuser("bench", "bench@example.invalid", "bench-password-not-secret"))
    for label, path in pages(the):
        report(label, lambda label=label, path=path: fetch(staff, label, path), repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per view, after one warm-up")
    parser.add_argument("--max-minutes", type=float, default=30)
    args = parser.parse_args()
    procs.stop_after(args.max_minutes)

    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    from aihub.models import UsageDailyRollup, UsageRollup

    setup_test_environment()
    databases = setup_databases(verbosity=0, interactive=False)
    try:
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        with transaction.atomic():
            the = cast()
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA cache_size = -524288")  # 512 MiB: five indexes of random keys
        t1 = time.perf_counter()
        with transaction.atomic():
            (records_postgresql if connection.vendor == "postgresql" else records_sqlite)(args.records, now, the)
        t2 = time.perf_counter()
        with transaction.atomic():
            rollups_from_records()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        t3 = time.perf_counter()
        print(f"database: {connection.vendor}; {STUDIOS} studios, {TOKENS} tokens, {len(the['models'])} models in {t1 - t0:.1f} s")
        hourly, daily = UsageRollup.objects.count(), UsageDailyRollup.objects.count()
        print(
            f"{args.records:,} records over {DAYS} days in {t2 - t1:.1f} s; {hourly:,} hourly and {daily:,} daily rollups in {t3 - t2:.1f} s"
        )
        print(check_rollups(now))
        measure(the, now, args.repeat)
    finally:
        teardown_databases(databases, verbosity=0)


if __name__ == "__main__":
    main()
