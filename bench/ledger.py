"""What the ledger costs per AI call: reserve + settle on Redis, with and without limits.

    REDIS_URL=redis://127.0.0.1:6379/4 .venv/bin/python bench/ledger.py [--calls 3000]

Without REDIS_URL it starts a redis-server of its own (city/liveredis.py). The usage records go to a
fresh SQLite database under var/bench/ (the usage writer runs as in production, in its thread). Calls
are made one after another on one event loop; it prints p50 and p99 in µs of reserve, settle and both,
for a call with no limit (the reservation alone: the durable record) and for a call whose studio and
token both have RPM, TPM, a concurrency limit and a monthly budget.
"""

import argparse
import asyncio
import os
import statistics
import time
import uuid
from typing import Any

import in_process

ROOT = in_process.configure()
os.environ.setdefault("CITY_LOG_LEVEL", "WARNING")
(ROOT / "var" / "bench").mkdir(parents=True, exist_ok=True)
DB = ROOT / "var" / "bench" / "ledger.sqlite3"
os.environ["DATABASE_URL"] = f"sqlite:///{DB}"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def run(calls: int, scopes_for: dict, studio_id: str) -> dict[str, list[float]]:
    from aihub import ledger
    from aihub.tests.ledgers import make_record, make_reservation

    times: dict[str, list[float]] = {"reserve": [], "settle": [], "both": []}
    for i in range(calls + 100):  # the first 100 warm up
        r = make_reservation(studio_id, f"call_{uuid.uuid4().hex}", *scopes_for["scopes"], cost=10, tokens=500)
        record = make_record(studio_id, r.call_id, 5_000_000)
        start = time.perf_counter_ns()
        await ledger.reserve(r)
        middle = time.perf_counter_ns()
        await ledger.settle(r.call_id, studio_id, cost=5_000_000, tokens=300, record=record)
        end = time.perf_counter_ns()
        if i >= 100:
            times["reserve"].append((middle - start) / 1000)
            times["settle"].append((end - middle) / 1000)
            times["both"].append((end - start) / 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()

    live = None
    if not os.environ.get("REDIS_URL"):
        from city.liveredis import LiveRedis

        live = LiveRedis()
        os.environ["REDIS_URL"] = live.url
    import django

    django.setup()
    from django.core.management import call_command

    from aihub.metering import writer
    from aihub.tests.ledgers import limits
    from studios.models import Studio

    DB.unlink(missing_ok=True)
    call_command("migrate", verbosity=0)
    studio = Studio.objects.create(name="Bench Studio")
    big: dict[str, Any] = {"rpm": 10**7, "tpm": 10**10, "max_concurrency": 1000, "monthly_budget": 10**15}
    cases = {
        "no limits": {"scopes": (limits(studio.id), limits("tok_bench", kind="token"))},
        "all limits": {"scopes": (limits(studio.id, **big), limits("tok_bench_limited", kind="token", **big))},
    }
    try:
        print(f"{args.calls} calls each, one after another; µs per call")
        print("| case | reserve p50 | reserve p99 | settle p50 | settle p99 | both p50 | both p99 |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, case in cases.items():
            times = asyncio.run(run(args.calls, case, studio.id))
            cells = [f"{statistics.median(times[k]):.0f} | {percentile(times[k], 0.99):.0f}" for k in ("reserve", "settle", "both")]
            print(f"| {name} | " + " | ".join(cells) + " |")
    finally:
        writer.close()
        if live is not None:
            live.stop()


if __name__ == "__main__":
    main()
