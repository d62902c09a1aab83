"""City's CPU per AI call, in-process, on the database and Redis it runs on in production.

    DATABASE_URL=postgres://…/bench REDIS_URL=redis://…/5 .venv/bin/python bench/call_cpu.py
    .venv/bin/python bench/call_cpu.py --requests 300 --rounds 2       # SQLite, no Redis: a smoke run
    … bench/call_cpu.py --profile                                        # and a cProfile of the calls
    … bench/call_cpu.py --base ed03207                                   # also City at that commit, in turn

City's ASGI application is called directly (no server, no client socket: bench/handler.py's way)
for `POST /v1/chat/completions`, answered whole and streamed, by two studios: one without a plan and
one whose plan has every limit (plan_overhead.py's PLAN: whitelist, cap, budget, RPM, TPM,
concurrency, none ever refusing), on `deepseek-v4-flash` (priced: the ledger does real arithmetic)
against bench/simulator.py. The database is fresh (`<DATABASE_URL>_call_cpu` on PostgreSQL, dropped
and created again; a new SQLite file), migrated; Prometheus metrics are on in multiprocess mode, as
in `serve-prod`'s workers. Each cell (studio × whole/streamed) is a block of --requests calls one
after another; its CPU is this process's (time.process_time: every thread, so the usage writer's
inserts and the ledger's threads count), up to the moment the writer has written every record of
the block. Cells alternate over --rounds rounds, the order reversed every other round. With --base,
each round also runs City as it was at that commit (`git archive` under var/bench/, this script
copied in, its own database), in a subprocess, alternating with this tree: A, B, B, A, …

--profile prints cProfile's top functions (own CPU time: the profiler's clock is the thread's CPU
time, so other processes' load does not inflate it) over this tree's measured calls; it sees the
event loop's thread only (the writer's and sync threads' work is not in it). A coroutine counts
one call per resumption.
"""

import argparse
import asyncio
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import handler
import in_process

ROOT = in_process.configure()
SCRATCH = Path(tempfile.mkdtemp(prefix="city-call-cpu-"))
MODEL = "deepseek-v4-flash"
UPSTREAM_KEY = "sk-bench-deepseek-not-secret"
# plan_overhead.py's PLAN, in the plan model's units (micro-USD): every limit, none ever reached.
PLAN = {
    "models": ["gpt-4o*", "gpt-5*", "deepseek-*"],
    "max_cost_per_request": 1_000_000,
    "monthly_budget": 1_000_000_000_000,
    "rpm": 1_000_000_000,
    "tpm": 2_000_000_000,
    "max_concurrency": 100_000,
}
STUDIOS = ("no plan", "plan")
MODES = ("whole", "streamed")


def body(stream: bool) -> bytes:
    request: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello to the benchmark."}], "max_tokens": 50}
    if stream:
        request["stream"] = True
    return json.dumps(request).encode()


def fresh_database(url: str) -> str:
    """A new, empty database next to `url`'s (PostgreSQL: `<name>_call_cpu`, dropped and created) or a new SQLite file."""
    if not url or url.startswith("sqlite"):
        return f"sqlite:///{SCRATCH / 'city.sqlite3'}"
    import psycopg
    from psycopg import sql

    server, _, name = url.rpartition("/")
    name = f"{name}_call_cpu"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{server}/{name}"


async def one(app: Any, request_scope: dict, payload: bytes) -> int:
    """One call through City's ASGI app (bench/handler.py's, the disconnect after the answer); its status."""
    status, _, _ = await handler.one(app, request_scope, payload)
    return status


def measured_rounds(args: argparse.Namespace) -> dict[str, list[float]]:
    """This tree's cells, --rounds rounds of them: CPU ms per call, per round."""
    warnings.filterwarnings("ignore", message="No directory at")
    os.environ.update(
        {
            "CITY_LOG_LEVEL": "WARNING",
            "CITY_DEBUG": "false",
            "DATABASE_URL": fresh_database(os.environ.get("DATABASE_URL", "")),
            "PROMETHEUS_MULTIPROC_DIR": str(SCRATCH / "metrics"),
        }
    )
    (SCRATCH / "metrics").mkdir(exist_ok=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from procs import free_port

    from city.identity import ADMIN_IDENTITY
    from studios import operations, plan_operations

    port = free_port()
    argv = [sys.executable, str(ROOT / "bench" / "simulator.py"), "--port", str(port), "--chunks", "5", "--chunk-interval-ms", "0"]
    simulator = subprocess.Popen(argv)
    os.environ.update({"DEEPSEEK_API_KEY": UPSTREAM_KEY, "DEEPSEEK_BASE_URL": f"http://127.0.0.1:{port}"})
    tokens = {}
    plan = plan_operations.create_plan(f"Call CPU {time.time_ns()}", PLAN, actor=ADMIN_IDENTITY)
    for name in STUDIOS:
        created = operations.create_studio(f"Call CPU, {name}", actor=ADMIN_IDENTITY)
        if name == "plan":
            plan_operations.assign_plan(plan.id, studio_id=created.id, actor=ADMIN_IDENTITY)
        tokens[name] = operations.issue_token(created.id, "bench", expires_at=None, actor=ADMIN_IDENTITY)[1]
    from aihub.metering import writer
    from city.asgi import application

    cells = [(studio, mode) for studio in STUDIOS for mode in MODES]
    scopes = {}
    for studio, mode in cells:
        payload = body(mode == "streamed")
        headers = (
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"authorization", f"Bearer {tokens[studio]}".encode()),
        )
        scopes[studio, mode] = (handler.scope("/v1/chat/completions", "POST", headers), payload)
    results: dict[str, list[float]] = {f"{studio}, {mode}": [] for studio, mode in cells}
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.thread_time)  # CPU, not wall: the machine's load does not inflate it

    async def block(cell: tuple[str, str], requests: int, profile: bool) -> float:
        request_scope, payload = scopes[cell]
        if profiler and profile:
            profiler.enable()
        cpu = time.process_time()
        for _ in range(requests):
            status = await one(application, request_scope, payload)
            if status != 200:
                raise RuntimeError(f"{cell}: City answered {status}")
        await asyncio.to_thread(writer.wait_idle)  # the block's records written (and their reservations dropped)
        cpu = time.process_time() - cpu
        if profiler and profile:
            profiler.disable()
        return cpu / requests * 1e3

    async def main() -> None:
        deadline = time.monotonic() + 30
        while True:  # the simulator is starting (slowly on a busy machine)
            try:
                if await one(application, *scopes[cells[0]]) == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("City did not answer 200 within 30 s")
            await asyncio.sleep(0.2)
        for cell in cells:
            await block(cell, args.warmup, False)
        gc.collect()
        gc.freeze()  # as city/server_tuning.py does in a server after start-up
        for index in range(args.rounds):
            for cell in cells if index % 2 == 0 else cells[::-1]:
                results[", ".join(cell)].append(await block(cell, args.requests, True))

    try:
        import uvloop

        uvloop.run(main())
    finally:
        simulator.terminate()
        simulator.wait(10)
    if profiler:
        import pstats

        print(
            f"cProfile of {args.rounds * len(cells) * args.requests} calls (event loop's thread), by {args.profile_sort}:", file=sys.stderr
        )
        pstats.Stats(profiler, stream=sys.stderr).sort_stats(args.profile_sort).print_stats(args.profile_lines)
    return results


def base_tree(commit: str) -> Path:
    """The repository at `commit` under var/bench/ (git archive), with this script's bench/ helpers copied in."""
    target = ROOT / "var" / "bench" / f"call-cpu-base-{commit}"
    if not (target / "manage.py").exists():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    (target / "var").mkdir(exist_ok=True)
    for name in ("call_cpu.py", "in_process.py", "handler.py", "procs.py", "simulator.py"):
        shutil.copy(ROOT / "bench" / name, target / "bench" / name)
    return target


def child(root: Path, args: argparse.Namespace, database_suffix: str) -> dict[str, list[float]]:
    """One round of `root`'s cells in a fresh process (its own database)."""
    env = dict(os.environ)
    if env.get("DATABASE_URL", "").startswith("postgres"):
        env["DATABASE_URL"] += database_suffix
    argv = [sys.executable, str(root / "bench" / "call_cpu.py"), "--child", "--rounds", "1"]
    argv += ["--requests", str(args.requests), "--warmup", str(args.warmup)]
    out = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=args.max_minutes * 60)
    if out.returncode:
        raise RuntimeError(f"{root}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="calls per cell and round")
    parser.add_argument("--warmup", type=int, default=200, help="calls per cell before measuring")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-lines", type=int, default=40)
    parser.add_argument("--profile-sort", default="tottime", help="pstats' sort key (cumulative: where the time goes, by caller)")
    parser.add_argument("--base", default="", help="also measure City at this commit, alternating with this tree")
    parser.add_argument("--max-minutes", type=float, default=4.0, help="a round (with --base: each process) stops after this long")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measured_rounds(args)))
        return
    started_load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    where = "PostgreSQL" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "SQLite"
    where += " + Redis" if os.environ.get("REDIS_URL") else ", no Redis"
    if args.base:
        trees = {"this tree": ROOT, f"base {args.base}": base_tree(args.base)}
        results: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
        names = list(trees)
        for index in range(args.rounds):
            for name in names if index % 2 == 0 else names[::-1]:
                for cell, values in child(trees[name], args, "" if name == "this tree" else "_base").items():
                    results[name].setdefault(cell, []).extend(values)
                print(f"  round {index + 1}: {name} done", flush=True)
    else:
        results = {"this tree": measured_rounds(args)}
    print(
        f"\nCPU ms per call ({where}; {args.requests} calls a cell and round, {args.rounds} rounds; load average {started_load} before, ",
        end="",
    )
    print(f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} after)")
    print(f"| {'cell':20s} | " + " | ".join(f"{name:>28s}" for name in results) + " |")
    print("|---|" + "---:|" * len(results))
    for cell in next(iter(results.values())):
        row = [f"{statistics.median(r[cell]):6.3f} ({' '.join(f'{v:.3f}' for v in r[cell])})" for r in results.values()]
        print(f"| {cell:20s} | " + " | ".join(f"{value:>28s}" for value in row) + " |")


if __name__ == "__main__":
    main()
