"""What a plan adds to each AI call: the same City, the same run, a studio without a plan against one
whose plan has everything (a model whitelist with glob patterns, a per-request cap, a monthly budget,
RPM, TPM and a concurrency limit, all high enough never to refuse), on PostgreSQL + Redis.

    DATABASE_URL=postgres://…/bench REDIS_URL=redis://…/5 .venv/bin/python bench/plan_overhead.py
    … bench/plan_overhead.py --quick      # one short round: a smoke run, about 1 minute

The plan path is the whitelist and cap checks, the worst-case estimate (tiktoken), one Redis script
that reserves RPM, TPM, concurrency and the budget on the studio's and the token's scopes, and one
that settles them. Both studios call `gpt-4o-mini` (a priced model, so the reservation and settlement
do real arithmetic) on bench/simulator.py, with `max_tokens` 50. wrk measures p50 latency at
concurrency 1 and requests/s at concurrency 16, the two studios in turn, in alternating order over
--rounds rounds; the report gives each cell's median and the plan's cost as the median of the rounds'
paired differences (the two studios measured back to back share the machine's load of the moment). Goals (issue 8): under 0.3 ms added at p50,
under 10% fewer requests/s at concurrency 16.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import procs  # noqa: E402
import run  # noqa: E402
import tools  # noqa: E402

MODEL = "gpt-4o-mini"
BODY = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Say hello to the benchmark."}], "max_tokens": 50}).encode()
# Everything a plan can hold, none of it ever refusing here.
PLAN = {
    "name": "Bench: every limit, none reached",
    "models": ["gpt-4o*", "gpt-5*", "deepseek-*"],
    "max_cost_per_request": 1.0,
    "monthly_budget": 1_000_000.0,
    "rpm": 1_000_000_000,
    "tpm": 2_000_000_000,
    "max_concurrency": 100_000,
}
GOAL_ADDED_P50_MS = 0.3
GOAL_RPS_LOSS = 0.10
STUDIOS = ("no plan", "plan")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="What a plan adds per AI call (see bench/README.md).")
    parser.add_argument("--quick", action="store_true", help="one round of short cells: a smoke run")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (the plan's cost: the median of their differences)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per cell")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each cell")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="City processes (production: one per core)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or f"sqlite:///{run.VAR / 'plans.sqlite3'}")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument("--max-minutes", type=float, default=20.0, help="the run stops itself after this long")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 3.0, 1.0
    args.server = "uvicorn"
    return args


def set_up(city: run.City, upstream: str) -> dict[str, str]:
    """Two studios calling gpt-4o-mini on the simulator: one without a plan, one with PLAN; their tokens."""
    city.admin("POST", "/v1/env/upsert", {"key": "OPENAI_API_KEY", "value": "sk-bench-not-secret"})
    city.admin("POST", "/v1/env/upsert", {"key": "OPENAI_BASE_URL", "value": f"{upstream}/v1"})
    tokens = {}
    for name in STUDIOS:
        studio = city.admin("POST", "/v1/studios/create", {"name": f"Bench, {name}"})
        if name == "plan":
            # Plan names are unique, and a PostgreSQL database is kept from run to run.
            plan = city.admin(
                "POST", "/v1/studios/plans/create", {**PLAN, "name": f"{PLAN['name']} ({time.strftime('%Y-%m-%d %H:%M:%S')})"}
            )
            city.admin("POST", "/v1/studios/plans/assign", {"plan_id": plan["id"], "studio_id": studio["id"]})
        tokens[name] = city.admin("POST", "/v1/studios/tokens/apply", {"studio_id": studio["id"], "name": "bench"})["token"]
    return tokens


def wait_callable(city: run.City, tokens: dict[str, str], timeout_s: float = 30.0) -> None:
    """20 answers in a row for each token (every process has seen the env); the planned one must carry
    the plan's x-ratelimit headers, or the plan is not in force and the run would measure nothing."""
    for name, token in tokens.items():
        deadline, good, last = time.monotonic() + timeout_s, 0, ""
        while good < 20:
            if time.monotonic() > deadline:
                raise RuntimeError(f"City did not serve {MODEL} to the studio with {name} within {timeout_s:.0f} s: {last}")
            response = httpx.post(
                f"{city.url}{run.PATH}",
                content=BODY,
                timeout=10,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            last = f"{response.status_code} {response.text[:300]}"
            if response.status_code != 200:
                good = 0
                time.sleep(0.3)
                continue
            if name == "plan" and response.headers.get("x-ratelimit-limit-requests") != str(PLAN["rpm"]):
                raise RuntimeError(f"the planned studio's answer carries no plan limits: {dict(response.headers)}")
            good += 1


def measure(wrk_path: str, city: run.City, token: str, concurrency: int, args: argparse.Namespace) -> dict:
    run.wrk(wrk_path, city.url, concurrency, args.warmup, BODY, token)
    pids = city.pids()
    cpu_before = sum(procs.cpu_seconds(pid) for pid in pids)
    result = run.wrk(wrk_path, city.url, concurrency, args.duration, BODY, token)
    result["cpu_ms_per_request"] = 1000 * (sum(procs.cpu_seconds(pid) for pid in pids) - cpu_before) / max(1, result["requests"])
    return result


def report(cells: dict, meta: dict) -> str:
    """Each cell's median, and the plan's cost as the median of the rounds' paired differences (the two
    studios measured back to back share the machine's load of the moment, so their difference moves
    much less than either), with the rounds' range."""

    def median(name: str, concurrency: int, key: str) -> float:
        return statistics.median(cell[key] for cell in cells[name][concurrency])

    def paired(concurrency: int, key: str, diff) -> list[float]:
        return [diff(plan[key], none[key]) for plan, none in zip(cells["plan"][concurrency], cells["no plan"][concurrency], strict=True)]

    added = paired(1, "p50_ms", lambda plan, none: plan - none)
    loss = paired(16, "rps", lambda plan, none: 1 - plan / none)
    cpu_added = {c: paired(c, "cpu_ms_per_request", lambda plan, none: plan - none) for c in (1, 16)}
    non_2xx = sum(cell["non_2xx"] + cell["socket_errors"] for name in STUDIOS for c in (1, 16) for cell in cells[name][c])
    ok = {True: "✓", False: "✗"}

    def spread(values: list[float], fmt: str) -> str:
        return f"rounds {format(min(values), fmt)} … {format(max(values), fmt)}" if len(values) > 1 else "one round"

    lines = [
        f"Commit {meta['commit']}; City: uvicorn × {meta['workers']}; {meta['database']}; {meta['cpus']} CPUs; "
        f"load average {meta['load_before']} before, {meta['load_after']} after; {meta['rounds']} alternating round(s) "
        f"of {meta['duration_s']} s cells.",
        "",
        "| studio (medians) | c=1 p50 ms | c=1 CPU ms/request | c=16 req/s | c=16 p50 ms | c=16 CPU ms/request |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in STUDIOS:
        lines.append(
            f"| {name} | {median(name, 1, 'p50_ms'):.2f} | {median(name, 1, 'cpu_ms_per_request'):.2f} | "
            f"{median(name, 16, 'rps'):,.0f} | {median(name, 16, 'p50_ms'):.2f} | {median(name, 16, 'cpu_ms_per_request'):.2f} |"
        )
    p50_added, rps_loss = statistics.median(added), statistics.median(loss)
    lines += [
        "",
        f"- {ok[p50_added < GOAL_ADDED_P50_MS]} the plan adds {p50_added:.2f} ms to the p50 latency at concurrency 1 "
        f"({spread(added, '.2f')}; goal < {GOAL_ADDED_P50_MS} ms)",
        f"- {ok[rps_loss < GOAL_RPS_LOSS]} the plan costs {rps_loss:.1%} of the requests/s at concurrency 16 "
        f"({spread(loss, '.1%')}; goal < {GOAL_RPS_LOSS:.0%})",
        f"- server CPU per request added by the plan: {statistics.median(cpu_added[1]):.2f} ms at c=1, "
        f"{statistics.median(cpu_added[16]):.2f} ms at c=16",
        f"- non-2xx answers or socket errors: {non_2xx}; tracebacks in City's logs: {meta['errors_logged']}",
    ]
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    run.VAR.mkdir(parents=True, exist_ok=True)
    if not args.redis_url or not args.database_url.startswith(("postgres://", "postgresql://")):
        print("bench: the plan path is measured on PostgreSQL + Redis; set DATABASE_URL and REDIS_URL.", file=sys.stderr)
    started: list = []

    procs.stop_after(args.max_minutes)
    try:
        wrk_path = tools.ensure_wrk()
        load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
        run.prepare_database(args)
        _, upstream = run.start_simulator(started)
        city = run.City(args, "uvicorn", args.workers)
        started.append(city)
        tokens = set_up(city, upstream)
        wait_callable(city, tokens)

        cells: dict[str, dict[int, list[dict]]] = {name: {1: [], 16: []} for name in STUDIOS}
        for round_index in range(args.rounds):
            order = STUDIOS if round_index % 2 == 0 else tuple(reversed(STUDIOS))  # neither always goes first
            for concurrency in (1, 16):
                for name in order:
                    result = measure(wrk_path, city, tokens[name], concurrency, args)
                    cells[name][concurrency].append(result)
                    print(
                        f"  round {round_index + 1} {name:8s} c={concurrency:<3d} {result['rps']:9.1f} req/s  p50 {result['p50_ms']:7.2f} ms  "
                        f"CPU {result['cpu_ms_per_request']:.2f} ms/request  non-2xx {result['non_2xx']}",
                        flush=True,
                    )
        meta = {
            "commit": run.git_state(),
            "workers": args.workers,
            "database": args.database_url.split("@")[-1].split("///")[0]
            + (" + Redis" if args.redis_url else " (no Redis: embedded counters)"),
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "rounds": args.rounds,
            "duration_s": args.duration,
            "errors_logged": city.errors_logged(),
        }
        table = report(cells, meta)
        run.save_report("plans", table, {"meta": meta, "cells": cells})
    finally:
        procs.stop_all(started)


if __name__ == "__main__":
    main()
