"""City's tail at concurrency 1 under Daphne, as `make run` serves it, and under uvicorn with one process,
as `make serve-prod --workers 1` would (issue 12, item 4: Daphne's p99 within 3× of uvicorn's).

    .venv/bin/python bench/servers_tail.py                      # the embedded default (SQLite, no Redis)
    .venv/bin/python bench/servers_tail.py --postgres postgres://postgres@127.0.0.1:5432/city_bench \\
        --redis redis://127.0.0.1:6379/8                        # and PostgreSQL + Redis, in the same run
    .venv/bin/python bench/servers_tail.py --untuned            # also both without issue 12's tuning

For each database: a fresh database, the simulator (bench/simulator.py) pinned to CPU 1, both servers
started side by side on it, then --rounds rounds of `POST /v1/chat/completions` at concurrency 1 (wrk,
after a warm-up), the servers in turn and their order reversed every other round, so that the
others' load on a shared machine falls on both alike. Each cell: p50, p99 and the server's CPU time per
request (from /proc, which the others' load moves less than latency). Prints one markdown table and
writes var/bench/servers_tail.md and .json; stops itself after --max-minutes.
"""

import argparse
import os
import statistics
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import procs  # noqa: E402
import run  # noqa: E402
import tools  # noqa: E402
from procs import LOOPBACK, Proc, free_port  # noqa: E402

SERVERS = ("daphne", "uvicorn")
UNTUNED = ("daphne-untuned", "uvicorn-untuned")  # --untuned: both serving bench/untuned_asgi.py
GOAL_P99_RATIO = 3.0  # Daphne's p99 ÷ uvicorn's, at concurrency 1 (issue 12, item 4)


def server_argv(server: str, port: int) -> list[str]:
    """How `make run` (`manage.py serve`) runs Daphne, or `make serve-prod` uvicorn, with one process;
    an untuned one serves bench/untuned_asgi.py with the same options."""
    if server == "daphne-untuned":
        return [sys.executable, "-m", "city.daphne_server", "-b", LOOPBACK, "-p", str(port), "untuned_asgi:application"]
    if server == "uvicorn-untuned":
        options = ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]  # city/serve_prod.py's
        return [sys.executable, "-m", "uvicorn", "untuned_asgi:application", "--host", LOOPBACK, "--port", str(port), *options]
    if server == "daphne":
        return [sys.executable, "-m", "city.daphne_server", "-b", LOOPBACK, "-p", str(port), "city.asgi:application"]
    return run.production_argv(port, 1)


class OneProcessCity(run.City):
    """City in one process under `server`, started with the command line its make target uses."""

    def __init__(self, args: argparse.Namespace, server: str) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.server, self.workers = server, 1
        env = run.city_env(args)
        if server in UNTUNED:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH", "")]))
        proc = Proc(f"tail-{server}", server_argv(server, self.port), env=env, log_dir=run.VAR, cwd=run.ROOT)
        self.procs = [proc]
        proc.wait_ready(f"{self.url}/v1/services")


def measure(wrk_path: str, args: argparse.Namespace, started: list) -> list[dict]:
    """Both servers on one fresh database: per round, each server's wrk result at concurrency 1."""
    run.prepare_database(args)
    pinned = run.SIMULATOR_CPU if (os.cpu_count() or 1) > run.SIMULATOR_CPU else None
    _, upstream = run.start_simulator(started, cpu=pinned)
    servers = (*SERVERS, *UNTUNED) if args.untuned else SERVERS
    cities = {}
    for server in servers:
        cities[server] = city = OneProcessCity(args, server)
        started.append(city)
    token = cities[SERVERS[0]].set_up_studio(upstream)  # one database: the studio and token serve both
    for city in cities.values():
        city.wait_model_callable(token)
    rounds = []
    for index in range(args.rounds):
        order = list(servers) if index % 2 == 0 else list(servers)[::-1]
        cells = {}
        for server in order:
            target = run.Target(cities[server].url, run.CITY_MODEL, token, cities[server].pids)
            cells[server] = run.load_cell(wrk_path, server, target, 1, args)
        rounds.append({"order": order, **cells})
    errors = {server: city.errors_logged() for server, city in cities.items()}
    for city in cities.values():
        city.stop()
    return [{**r, "errors_logged": errors} for r in rounds]


def median(rounds: list[dict], server: str, key: str) -> float:
    return statistics.median(r[server][key] for r in rounds)


def table(results: dict[str, list[dict]]) -> str:
    """Per database, a line per round and their median: each server's p50 · p99 · CPU ms per request,
    and each Daphne's p99 over uvicorn's."""
    servers = [s for s in (*SERVERS, *UNTUNED) if s in next(iter(results.values()))[0]]
    daphnes = [s for s in servers if s.startswith("daphne")]
    lines = [
        "| database | round (order) | "
        + " | ".join(f"{s}: p50 · p99 ms · CPU ms/request" for s in servers)
        + " | "
        + " | ".join(f"{s} ÷ {s.replace('daphne', 'uvicorn')} p99" for s in daphnes)
        + " |",
        "|---|---|" + "---:|" * (len(servers) + len(daphnes)),
    ]
    for database, rounds in results.items():

        def row(label: str, cell, database: str = database) -> str:
            figures = " | ".join(
                f"{cell(s, 'p50_ms'):.2f} · {cell(s, 'p99_ms'):.2f} · {cell(s, 'cpu_ms_per_request'):.2f}" for s in servers
            )
            ratios = " | ".join(f"{cell(s, 'p99_ms') / cell(s.replace('daphne', 'uvicorn'), 'p99_ms'):.1f}×" for s in daphnes)
            return f"| {database} | {label} | {figures} | {ratios} |"

        for index, r in enumerate(rounds):
            lines.append(row(f"{index + 1} ({', '.join(r['order'])})", lambda s, k, r=r: r[s][k]))
        lines.append(row("**median**", lambda s, k, rounds=rounds: median(rounds, s, k)))
    lines.append("")
    for database, rounds in results.items():
        ratio = median(rounds, "daphne", "p99_ms") / median(rounds, "uvicorn", "p99_ms")
        verdict = "within" if ratio <= GOAL_P99_RATIO else "NOT within"
        lines.append(f"{database}: Daphne's median p99 at c=1 is {ratio:.1f}× uvicorn's, {verdict} {GOAL_P99_RATIO:.0f}×.")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per database, the servers' order reversed every other round")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per cell")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each cell")
    parser.add_argument("--postgres", default="", help="also measure on this PostgreSQL database (created if missing)")
    parser.add_argument("--redis", default="", help="the Redis City uses with --postgres")
    parser.add_argument("--untuned", action="store_true", help="also both without issue 12's tuning (bench/untuned_asgi.py)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the embedded default (SQLite, no Redis)")
    parser.add_argument("--max-minutes", type=float, default=4.0, help="the run stops itself after this long")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    run.VAR.mkdir(parents=True, exist_ok=True)
    setups = {}
    if not args.no_sqlite:
        setups["SQLite (embedded default)"] = (f"sqlite:///{run.VAR / 'servers_tail.sqlite3'}", "")
    if args.postgres:
        setups["PostgreSQL + Redis" if args.redis else "PostgreSQL"] = (args.postgres, args.redis)
    started: list = []
    procs.stop_after(args.max_minutes)
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        wrk_path = tools.ensure_wrk()
        results = {}
        for name, (database_url, redis_url) in setups.items():
            print(f"bench: {name}", flush=True)
            setup_args = argparse.Namespace(**vars(args), database_url=database_url, redis_url=redis_url)
            results[name] = measure(wrk_path, setup_args, started)
            for item in reversed(started):
                item.stop()
            started.clear()
    finally:
        procs.stop_all(started)
    meta = run.run_meta(" ".join(["bench/servers_tail.py", *sys.argv[1:]]), load_before)
    report = table(results) + f"\n\nLoad average before · after: {meta['load_before']} · {meta['load_after']}; commit {meta['commit']}."
    run.save_report("servers_tail", report, {"meta": meta, "results": results})


if __name__ == "__main__":
    main()
