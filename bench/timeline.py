"""Where City's tail latency comes from: per-request timelines under load, and what overlapped the slow ones.

    DATABASE_URL=postgres://…/bench REDIS_URL=redis://…/5 .venv/bin/python bench/timeline.py   # about 2 minutes
    .venv/bin/python bench/timeline.py --concurrency 1,16 --duration 10 --workers 2

One run, on 127.0.0.1: the upstream simulator (pinned to the last core when there are two or more),
and City as `make serve-prod` runs it (uvicorn, uvloop, httptools, --workers) but serving
bench/timeline_probe.py, which wraps City's ASGI app and records every request and, beside it, every
garbage collection, event-loop lag, database query, Redis command, sync-thread job and upstream
request of the process (see that file). A studio on a plan with every limit (none ever reached: the
plan path is on) calls `gpt-4o-mini` on the simulator. At each concurrency wrk runs for --duration
seconds after a warm-up, then each worker writes its records.

The report, per concurrency:
- wrk's p50 and p99 beside the server's own (the app called → its last byte sent): a tail that wrk
  sees and the server does not is outside City's code (the socket, the scheduler, the other processes);
- the slow requests (over --slow × the server's p50): what they spent their time on next to an
  ordinary request (Redis, the database, waiting for a sync thread, the upstream, the rest: City's
  own Python), and which of the process's other activity overlapped them (a garbage collection, a
  usage-writer batch, an event-loop stall, the ledger keeper's round);
- the process's background activity per second;
- the slowest requests' timelines, each event relative to the request's start.

It writes var/bench/timeline.md and timeline.json.
"""

import argparse
import json
import os
import signal
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import procs  # noqa: E402
import run  # noqa: E402
import tools  # noqa: E402
from plan_overhead import PLAN  # noqa: E402
from procs import LOOPBACK, Proc, free_port  # noqa: E402

MODEL = "gpt-4o-mini"
BODY = json.dumps({"model": MODEL, "messages": run.MESSAGES, "max_tokens": 50}).encode()
OUT = run.VAR / "timeline"
MS = 1e6  # ns per ms
# Activity of the process that is not the request's own, by what shows it.
BACKGROUND_THREADS = {"aihub-usage-writer": "usage writer", "aihub-ledger-keeper": "ledger keeper"}


class ProbedCity(run.City):
    """City under uvicorn as `make serve-prod` runs it, serving the timeline probe instead of city.asgi."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.server, self.workers = "uvicorn", args.workers
        env = {**run.city_env(args), "CITY_TIMELINE_DIR": str(OUT)}
        argv = [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH_DIR), "timeline_probe:application"]
        argv += ["--host", LOOPBACK, "--port", str(self.port), "--workers", str(args.workers)]
        argv += ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
        self.procs = [Proc("city-timeline", argv, env=env, log_dir=run.VAR, cwd=run.ROOT)]
        self.procs[0].wait_ready(f"{self.url}/v1/services")


def set_up(city: ProbedCity, upstream: str) -> str:
    """A studio on PLAN calling gpt-4o-mini on the simulator; its token."""
    city.admin("POST", "/v1/env/upsert", {"key": "OPENAI_API_KEY", "value": "sk-bench-not-secret"})
    city.admin("POST", "/v1/env/upsert", {"key": "OPENAI_BASE_URL", "value": f"{upstream}/v1"})
    studio = city.admin("POST", "/v1/studios/create", {"name": "Bench timeline"})
    plan = city.admin("POST", "/v1/studios/plans/create", {**PLAN, "name": f"{PLAN['name']} ({time.strftime('%Y-%m-%d %H:%M:%S')})"})
    city.admin("POST", "/v1/studios/plans/assign", {"plan_id": plan["id"], "studio_id": studio["id"]})
    token = city.admin("POST", "/v1/studios/tokens/apply", {"studio_id": studio["id"], "name": "timeline"})["token"]
    deadline, good = time.monotonic() + 30, 0
    while good < 20:
        response = httpx.post(f"{city.url}{run.PATH}", content=BODY, timeout=10, headers={"Authorization": f"Bearer {token}"})
        good = good + 1 if response.status_code == 200 else 0
        if response.status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"City did not serve {MODEL}: {response.status_code} {response.text[:300]}")
            time.sleep(0.3)
    if response.headers.get("x-ratelimit-limit-requests") != str(PLAN["rpm"]):
        raise RuntimeError("the studio's answers carry no plan limits: the plan path would not be measured")
    return token


def collect(pids: list[int], timeout_s: float = 10.0) -> list[dict]:
    """Ask each worker for its records (SIGUSR1) and read them."""
    for pid in pids:
        (OUT / f"{pid}.json").unlink(missing_ok=True)
        os.kill(pid, signal.SIGUSR1)
    found, deadline = [], time.monotonic() + timeout_s
    for pid in pids:
        path = OUT / f"{pid}.json"
        while not path.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {pid} wrote no timeline")
            time.sleep(0.05)
        found.append(json.loads(path.read_bytes()))
    return found


def overlap(a0: int, a1: int, b0: int, b1: int) -> int:
    return max(0, min(a1, b1) - max(a0, b0))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def analyse(dumps: list[dict], slow_factor: float, seconds: float) -> dict:
    """Per request: its own waits by kind and the process's other activity that overlapped it."""
    rows: list[dict[str, Any]] = []
    background: Counter[str] = Counter()
    for dump in dumps:
        reqs = [r for r in dump["requests"] if r["path"] == run.PATH and r.get("status") == 200]
        events = [dict(zip(("kind", "start", "end", "rid", "thread", "detail"), e, strict=True)) for e in dump["events"]]
        own: dict[int, list[dict]] = defaultdict(list)
        foreign = []
        for e in events:
            if e["rid"] is not None:
                own[e["rid"]].append(e)
            else:
                foreign.append(e)
            if e["kind"] in ("gc", "loop_lag") or e["thread"] in BACKGROUND_THREADS:
                label = e["kind"] if e["thread"] not in BACKGROUND_THREADS else BACKGROUND_THREADS[e["thread"]]
                detail = e["detail"] if e["kind"] == "gc" else ""
                background[f"{label} {detail}".strip()] += 1
                background[f"{label} {detail} ms".strip()] += (e["end"] - e["start"]) / MS
        foreign.sort(key=lambda e: e["start"])
        for r in reqs:
            start, end = r["start"], r["end"]
            row = {"pid": dump["pid"], "id": r["id"], "ms": (end - start) / MS, "cpu_ms": r["cpu_ns"] / MS, "timeline": []}
            for e in own.get(r["id"], []):
                key = {"sync_wait": "waiting for a sync thread"}.get(e["kind"], e["kind"])
                row[key] = row.get(key, 0.0) + (e["end"] - e["start"]) / MS
                row["timeline"].append((e["kind"], (e["start"] - start) / MS, (e["end"] - start) / MS, e["thread"], e["detail"]))
            for e in foreign:
                if e["start"] > end:
                    break
                shared = overlap(start, end, e["start"], e["end"])
                if shared:
                    label = BACKGROUND_THREADS.get(e["thread"], e["kind"] if e["kind"] != "gc" else f"gc {e['detail']}")
                    if e["kind"] == "db" and e["thread"] not in BACKGROUND_THREADS:
                        label = f"db on {e['thread']}"
                    row.setdefault("overlapped", {})
                    row["overlapped"][label] = row["overlapped"].get(label, 0.0) + shared / MS
                    row["timeline"].append((label, (e["start"] - start) / MS, (e["end"] - start) / MS, e["thread"], e["detail"]))
            row["timeline"].sort(key=lambda t: t[1])
            rows.append(row)
    if not rows:
        raise RuntimeError("no request was recorded")
    p50 = statistics.median(r["ms"] for r in rows)
    slow = [r for r in rows if r["ms"] > slow_factor * p50]
    kinds = ("redis", "db", "waiting for a sync thread", "sync_job", "upstream")

    def breakdown(group: list[dict]) -> dict:
        if not group:
            return {}
        mean: dict[str, Any] = {k: statistics.fmean(r.get(k, 0.0) for r in group) for k in (*kinds, "ms", "cpu_ms")}
        mean["rest"] = mean["ms"] - sum(mean[k] for k in ("redis", "waiting for a sync thread", "sync_job", "upstream"))
        labels = Counter(label for r in group for label in r.get("overlapped", {}))
        mean["overlapped_share"] = {label: n / len(group) for label, n in labels.most_common()}
        mean["unexplained_share"] = sum(1 for r in group if not r.get("overlapped")) / len(group)
        return mean

    per_second = {k: v / seconds for k, v in sorted(background.items())}
    return {
        "requests": len(rows),
        "server_p50_ms": p50,
        "server_p99_ms": pct([r["ms"] for r in rows], 0.99),
        "server_max_ms": max(r["ms"] for r in rows),
        "slow": len(slow),
        "all": breakdown(rows),
        "slow_breakdown": breakdown(slow),
        "background_per_second": per_second,
        "slowest": sorted(rows, key=lambda r: -r["ms"])[:8],
    }


def report(cells: dict, meta: dict, slow_factor: float) -> str:
    lines = [
        f"Commit {meta['commit']}; City: uvicorn × {meta['workers']} serving bench/timeline_probe.py; database {meta['database']}; "
        f"{meta['cpus']} CPUs; load average {meta['load_before']} before, {meta['load_after']} after; wrk -t1, "
        f"{meta['duration_s']} s a cell after {meta['warmup_s']} s of warm-up; a studio on a plan with every limit.",
        "",
        f"| concurrency | wrk p50 / p99 ms | server p50 / p99 / max ms | requests | slow (> {slow_factor:g}× server p50) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for c, cell in cells.items():
        a, w = cell["analysis"], cell["wrk"]
        lines.append(
            f"| {c} | {w['p50_ms']:.2f} / {w['p99_ms']:.2f} | {a['server_p50_ms']:.2f} / {a['server_p99_ms']:.2f} / {a['server_max_ms']:.1f} "
            f"| {a['requests']:,} | {a['slow']} ({a['slow'] / a['requests']:.2%}) |"
        )
    for c, cell in cells.items():
        a = cell["analysis"]
        lines += ["", f"### Concurrency {c}: where the time goes (mean ms per request)", ""]
        cols = ("ms", "cpu_ms", "redis", "db", "waiting for a sync thread", "sync_job", "upstream", "rest")
        lines.append("| requests | " + " | ".join(cols) + " |")
        lines.append("|---|" + "---:|" * len(cols))
        for name, group in (("all", a["all"]), ("slow", a["slow_breakdown"])):
            if group:
                lines.append(f"| {name} | " + " | ".join(f"{group[k]:.2f}" for k in cols) + " |")
        if a["slow_breakdown"]:
            shares = a["slow_breakdown"]["overlapped_share"]
            all_shares = a["all"]["overlapped_share"]
            lines += ["", "| overlapped by | share of slow requests | share of all requests |", "|---|---:|---:|"]
            for label, share in shares.items():
                lines.append(f"| {label} | {share:.0%} | {all_shares.get(label, 0):.1%} |")
            lines.append(f"| nothing recorded | {a['slow_breakdown']['unexplained_share']:.0%} | {a['all']['unexplained_share']:.1%} |")
        lines += [
            "",
            "Background activity per second (all workers): " + "; ".join(f"{k} {v:.1f}" for k, v in a["background_per_second"].items()),
        ]
        lines += ["", "Slowest requests (ms from the request's start):", ""]
        for r in a["slowest"][:5]:
            steps = ", ".join(
                f"{kind} {t0:.1f}→{t1:.1f}" + (f" ({detail})" if detail else "") for kind, t0, t1, _, detail in r["timeline"][:14]
            )
            lines.append(f"- pid {r['pid']} #{r['id']}: {r['ms']:.1f} ms, CPU {r['cpu_ms']:.1f} ms: {steps}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Per-request timelines of City under load (see the module docstring).")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--slow", type=float, default=3.0, help="a request is slow above this × the server's p50")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or f"sqlite:///{run.VAR / 'timeline.sqlite3'}")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument("--max-minutes", type=float, default=10.0)
    args = parser.parse_args()
    run.VAR.mkdir(parents=True, exist_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    procs.stop_after(args.max_minutes)
    started: list = []
    try:
        wrk_path = tools.ensure_wrk()
        load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
        run.prepare_database(args)
        simulator, upstream = run.start_simulator(started)
        if (os.cpu_count() or 1) >= 2:
            os.sched_setaffinity(simulator.pid, {(os.cpu_count() or 1) - 1})
        city = ProbedCity(args)
        started.append(city)
        token = set_up(city, upstream)
        pids = city.pids()
        cells = {}
        for c in args.concurrency:
            run.wrk(wrk_path, city.url, c, args.warmup, BODY, token)
            collect(pids)  # drop the warm-up's records
            result = run.wrk(wrk_path, city.url, c, args.duration, BODY, token)
            cells[c] = {"wrk": result, "analysis": analyse(collect(pids), args.slow, result["seconds"])}
            a = cells[c]["analysis"]
            print(
                f"  c={c}: wrk p50 {result['p50_ms']:.2f} p99 {result['p99_ms']:.2f} ms; server p50 {a['server_p50_ms']:.2f} "
                f"p99 {a['server_p99_ms']:.2f} ms; {a['slow']} slow of {a['requests']}",
                flush=True,
            )
        meta = run.run_meta(" ".join(sys.argv), load_before)
        meta.update(
            {
                "workers": args.workers,
                "database": ("SQLite" if args.database_url.startswith("sqlite") else "PostgreSQL") + (" + Redis" if args.redis_url else ""),
                "duration_s": args.duration,
                "warmup_s": args.warmup,
            }
        )
        run.save_report("timeline", report(cells, meta, args.slow), {"meta": meta, "cells": cells})
    finally:
        procs.stop_all(started)


if __name__ == "__main__":
    main()
