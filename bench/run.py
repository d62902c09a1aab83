"""City's data-plane benchmark: direct to an upstream simulator, through City, through Portkey's
open-source gateway and through LiteLLM's proxy, every figure of issue 12's table in one run.

    .venv/bin/python bench/run.py            # the full run (make bench), about 12 minutes
    .venv/bin/python bench/run.py --quick    # a smoke run, about 3 minutes
    .venv/bin/python bench/run.py --servers  # also City under Daphne and uvicorn with 1 and 2 processes

One run, all on 127.0.0.1:
1. installs what it needs once: wrk (apt-get), LiteLLM's proxy (its own venv under var/bench/) and
   Portkey's gateway (npm, pinned by bench/portkey-package*.json, under var/bench/portkey/);
2. starts the upstream simulator (bench/simulator.py) pinned to CPU 1, City as production runs it
   (uvicorn, one process per core: `make serve-prod`) on a fresh database, Portkey (one Node
   process) and LiteLLM, both routed to the simulator;
3. creates a studio and a token through City's admin API and points the `local-chat` model at the
   simulator with `env/upsert`;
4. in --rounds rounds (the targets' order reversed every other round): at concurrency 1, 16 and 64,
   wrk against each target for --duration seconds after a warm-up (requests/s, p50 and p99 of
   `POST /v1/chat/completions`, the server's CPU per request); then short streams back to back on
   1 and 8 kept-alive connections (the time to each stream's first `data:` event);
5. once: long streams 50 ms apart (are events passed on as they come?), then --streams-open slow
   streams, direct and through City, opened at --streams-open-rate and then all at once (all
   complete? first event? each worker's RSS);
6. sends --memory-requests requests through City while sampling each City process's RSS;
7. prints one markdown table with the goals checked (each figure the median of the rounds), writes
   var/bench/results.md and results.json (every round too), and ends every process it started, also
   on failure or Ctrl-C. A run never lasts more than --max-minutes.
"""

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import portkey  # noqa: E402
import procs  # noqa: E402
import streamclient  # noqa: E402
import tools  # noqa: E402
from procs import LOOPBACK, Proc, free_port  # noqa: E402

ROOT = BENCH_DIR.parent
VAR = ROOT / "var" / "bench"
VENV_BIN = Path(sys.executable).parent
ADMIN_KEY = "bench-admin-key-not-secret-0123456789"
CITY_KEY = "bench-city-key-not-secret-0123456789"
LITELLM_KEY = "sk-bench-litellm-master-key-not-secret-0123456789"
CITY_MODEL = "local-chat"  # City's model for a local OpenAI-compatible server, pointed at the simulator
UPSTREAM_MODEL = "bench-model"
PATH = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "Say hello to the benchmark."}]

STREAM_CONCURRENCY = (1, 8)  # kept-alive connections streaming back to back, per stream cell
OPEN_STREAM_TIMEOUT_S = 120.0  # a slow stream lasts 5 s; one not done by then counts as failed
# 1,000 slow streams (5 s each) opened over 4 s: all open together at the ramp's end.
OPEN_STREAMS_PER_SECOND = 250.0
SIMULATOR_CPU = 1  # the simulator's core, when the machine has two or more (as issue 12 measured)

# The plan City's studio is on (issue 12 measures the final request path): every limit a plan can
# hold, none ever reached, so that each call runs the whitelist and cap checks, the worst-case
# estimate and the Redis reservation and settlement of every limit. `--no-plan` measures without.
PLAN = {
    "name": "Bench: every limit, none reached",
    "models": ["local-*"],
    "max_cost_per_request": 1.0,
    "monthly_budget": 1_000_000.0,
    "rpm": 1_000_000_000,
    "tpm": 2_000_000_000,
    "max_concurrency": 100_000,
}

# Issue 12's goals, as ratios and figures measured in the same run (see bench/README.md).
GOAL_P99_OVER_P50_C1 = 3.0  # City's p99 ÷ its own p50, at concurrency 1
GOAL_RPS_OVER_PORTKEY = 2.0  # City's requests/s ÷ Portkey's, at concurrency 16 and 64
GOAL_RPS_OVER_LITELLM = 15.0  # City's requests/s ÷ LiteLLM's, at concurrency 16 and 64
GOAL_STREAM_ADDED_C8_MS = 1.0  # first streamed event, City − direct, p50 at 8 connections
GOAL_STREAM_ADDED_C1_MS = 0.5  # the same on one connection
GOAL_OPEN_STREAMS_ADDED_MS = 50.0  # first event's p50 with 1,000 streams open at once, City − direct
GOAL_RSS_MB = 150.0  # per City process, at any time
GOAL_RSS_BACK_MB = 5.0  # a worker's RSS 5 s after the open streams closed, over its RSS before them
GOAL_MEMORY_GROWTH_MB = 10.0  # from 10% to the end of the memory run


def body(model: str, stream: bool = False, short: bool = False, slow: bool = False) -> bytes:
    """A chat completion request; `short` asks the simulator for a two-chunk stream, `slow` for a
    5-second one (the simulator's `[bench:slow-stream]`: 20 chunks 250 ms apart)."""
    mark = " [bench:short-stream]" if short else " [bench:slow-stream]" if slow else ""
    messages = [{"role": "user", "content": MESSAGES[0]["content"] + mark}]
    return json.dumps({"model": model, "messages": messages, "stream": stream}).encode()


# --- servers ----------------------------------------------------------------------------------


def git_state() -> str:
    """The commit measured, and whether the work tree differs from it (in which files)."""

    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True).stdout

    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    return git("rev-parse", "--short", "HEAD").strip() + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")


def city_env(args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        {
            "DATABASE_URL": args.database_url,
            "ADMIN_SECRET_KEY": ADMIN_KEY,
            "CITY_SECRET_KEY": CITY_KEY,
            "CITY_LOG_LEVEL": "WARNING",
            "CITY_DEBUG": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    else:
        env.pop("REDIS_URL", None)
    return env


def prepare_database(args: argparse.Namespace) -> None:
    """A fresh SQLite file, or the PostgreSQL database created if missing; then City's migrations."""
    if args.database_url.startswith("sqlite:///"):
        path = Path(args.database_url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    elif args.database_url.startswith(("postgres://", "postgresql://")):
        import psycopg
        from psycopg import sql

        server, _, name = args.database_url.rpartition("/")
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=city_env(args), check=True)


def start_simulator(started: list, cpu: int | None = None) -> tuple[Proc, str]:
    """bench/simulator.py on a free port, ready (added to `started`, for the caller to stop), and its
    URL; with `cpu`, pinned to that core (as `taskset -c`)."""
    port = free_port()
    simulator = Proc(
        "simulator", [sys.executable, str(BENCH_DIR / "simulator.py"), "--port", str(port)], env=dict(os.environ), log_dir=VAR, cwd=ROOT
    )
    started.append(simulator)
    if cpu is not None:
        os.sched_setaffinity(simulator.pid, {cpu})  # before it serves: its threads inherit the mask
    upstream = f"http://{LOOPBACK}:{port}"
    simulator.wait_ready(f"{upstream}/v1/models")
    return simulator, upstream


def production_argv(port: int, workers: int) -> list[str]:
    """How `make serve-prod` runs City (keep the two in step): uvicorn, uvloop, httptools, no access log."""
    return [sys.executable, "-m", "city.serve_prod", "--host", LOOPBACK, "--port", str(port), "--workers", str(workers)]


class City:
    """City under `server` ("uvicorn" as in production, or "daphne") with `workers` processes on one port."""

    def __init__(self, args: argparse.Namespace, server: str, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.server, self.workers = server, workers
        self.procs: list[Proc] = []
        env = city_env(args)
        name = f"city-{server}-{workers}"
        if server == "uvicorn":
            self.procs.append(Proc(name, production_argv(self.port, workers), env=env, log_dir=VAR, cwd=ROOT))
        else:
            # Daphne has no worker option: N processes accept on one socket bound here (as systemd
            # socket activation or a supervisor would pass it).
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((LOOPBACK, self.port))
            listener.listen(1024)
            listener.set_inheritable(True)
            fd = listener.fileno()
            for index in range(workers):
                argv = [str(VENV_BIN / "daphne"), "--fd", str(fd), "-v", "0", "city.asgi:application"]
                self.procs.append(Proc(f"{name}-{index}", argv, env=env, log_dir=VAR, cwd=ROOT, pass_fds=(fd,)))
            listener.close()
        for proc in self.procs:
            proc.wait_ready(f"{self.url}/v1/services")

    def pids(self) -> list[int]:
        """The processes that serve requests (uvicorn's workers, not its supervisor)."""
        pids: list[int] = []
        for proc in self.procs:
            if self.server == "uvicorn" and self.workers > 1:
                # Its workers; not multiprocessing's resource tracker, which serves no request.
                pids.extend(pid for pid in procs.descendants(proc.pid) if "resource_tracker" not in procs.cmdline(pid))
            else:
                pids.append(proc.pid)
        return pids

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()

    def errors_logged(self) -> int:
        return sum(p.log_path.read_text(errors="replace").count("Traceback") for p in self.procs)

    def admin(self, method: str, route: str, data: dict | None = None) -> dict:
        response = httpx.request(method, f"{self.url}{route}", json=data, timeout=30, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        if response.status_code != 200:
            raise RuntimeError(f"{method} {route} answered {response.status_code}: {response.text[:500]}")
        return response.json()

    def set_up_studio(self, upstream_url: str, plan: bool = False) -> str:
        """A studio (on PLAN if `plan`), a token for it, and `local-chat` pointed at the simulator; returns the token."""
        studio = self.admin("POST", "/v1/studios/create", {"name": "Benchmark"})
        if plan:
            # Plan names are unique, and a PostgreSQL database is kept from run to run.
            made = self.admin(
                "POST", "/v1/studios/plans/create", {**PLAN, "name": f"{PLAN['name']} ({time.strftime('%Y-%m-%d %H:%M:%S')})"}
            )
            self.admin("POST", "/v1/studios/plans/assign", {"plan_id": made["id"], "studio_id": studio["id"]})
        self.planned = plan
        token = self.admin("POST", "/v1/studios/tokens/apply", {"studio_id": studio["id"], "name": "bench"})["token"]
        self.admin("POST", "/v1/env/upsert", {"key": "LOCAL_OPENAI_BASE_URL", "value": f"{upstream_url}/v1"})
        self.admin("POST", "/v1/env/upsert", {"key": "LOCAL_OPENAI_MODEL", "value": UPSTREAM_MODEL})
        return token

    def wait_model_callable(self, token: str, timeout_s: float = 30.0) -> None:
        """Every process refreshes its env snapshot within CITY_ENV_CACHE_SECONDS; wait for 20 answers in a row."""
        deadline, good = time.monotonic() + timeout_s, 0
        last = ""
        while good < 20:
            if time.monotonic() > deadline:
                raise RuntimeError(f"City did not serve {CITY_MODEL} within {timeout_s:.0f} s: {last}")
            response = httpx.post(
                f"{self.url}{PATH}",
                content=body(CITY_MODEL),
                timeout=10,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            good = good + 1 if response.status_code == 200 else 0
            last = f"{response.status_code} {response.text[:300]}"
            if good and getattr(self, "planned", False) and response.headers.get("x-ratelimit-limit-requests") != str(PLAN["rpm"]):
                raise RuntimeError(f"the studio's answers carry no plan limits: the plan path is not measured: {dict(response.headers)}")
            if response.status_code != 200:
                time.sleep(0.3)


def start_litellm(litellm: Path, upstream_url: str, workers: int) -> tuple[Proc, str]:
    port = free_port()
    config = VAR / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {UPSTREAM_MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{UPSTREAM_MODEL}\n"
        f"      api_base: {upstream_url}/v1\n"
        "      api_key: sk-bench-upstream-not-secret\n"
        # LiteLLM's "Production Best Practices" settings that apply without a database.
        "general_settings:\n"
        "  proxy_batch_write_at: 60\n"
        "  disable_error_logs: true\n"
        "  disable_spend_logs: true\n"
        "litellm_settings:\n"
        "  request_timeout: 600\n"
        "  set_verbose: false\n"
        "  json_logs: true\n"
        "  telemetry: false\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LITELLM_", "DATABASE_URL", "REDIS_"))}
    env.update(
        {
            "LITELLM_MASTER_KEY": LITELLM_KEY,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_LOG": "ERROR",
            "LITELLM_MODE": "PRODUCTION",
            "DISABLE_SCHEMA_UPDATE": "true",
            "NO_DOCS": "True",
        }
    )
    argv = [str(litellm), "--config", str(config), "--host", LOOPBACK, "--port", str(port), "--num_workers", str(workers)]
    proc = Proc(f"litellm-{workers}", argv, env=env, log_dir=VAR, cwd=VAR)
    url = f"http://{LOOPBACK}:{port}"
    proc.wait_ready(f"{url}/health/liveliness", timeout_s=240)
    response = httpx.post(
        f"{url}{PATH}",
        content=body(UPSTREAM_MODEL),
        timeout=60,
        headers={"Authorization": f"Bearer {LITELLM_KEY}", "Content-Type": "application/json"},
    )
    if response.status_code != 200:
        raise RuntimeError(f"LiteLLM answered {response.status_code}: {response.text[:300]}")
    return proc, url


# --- measurements -----------------------------------------------------------------------------


@dataclass
class Target:
    url: str
    model: str
    token: str | None
    pids: Callable[[], list[int]]  # the processes that serve it, for their CPU time
    headers: dict[str, str] = field(default_factory=dict)  # sent with every request (Portkey's routing)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


def header_lines(headers: dict[str, str] | None) -> str:
    """Headers as wrk.lua's BENCH_HEADERS reads them: one `Name: value` a line."""
    lines = []
    for name, value in (headers or {}).items():
        if not name or any(c in name + value for c in "\r\n") or ":" in name:
            raise ValueError(f"a header that cannot be sent as one line: {name!r}: {value!r}")
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


def wrk(
    wrk_path: str,
    url: str,
    concurrency: int,
    seconds: float,
    payload: bytes,
    token: str | None,
    max_requests: int | None = None,
    headers: dict[str, str] | None = None,
) -> dict:
    env = {
        **os.environ,
        "BENCH_METHOD": "POST",
        "BENCH_BODY": payload.decode(),
        "BENCH_TOKEN": token or "",
        "BENCH_HEADERS": header_lines(headers),
    }
    if max_requests:
        env["BENCH_MAX_REQUESTS"] = str(max_requests)
    argv = [wrk_path, "-t1", f"-c{concurrency}", f"-d{int(seconds)}s", "--timeout", "10s", "-s", str(BENCH_DIR / "wrk.lua"), url + PATH]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60).stdout
    for line in out.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line.removeprefix("BENCH_RESULT "))
    raise RuntimeError(f"wrk printed no result:\n{out}")


def load_cell(wrk_path: str, name: str, target: Target, concurrency: int, args: argparse.Namespace) -> dict:
    """One wrk cell after its warm-up: wrk's result and the server's CPU ms per request."""
    payload = body(target.model)
    wrk(wrk_path, target.url, concurrency, args.warmup, payload, target.token, headers=target.headers)
    pids = target.pids()
    cpu_before = sum(procs.cpu_seconds(pid) for pid in pids)
    result = wrk(wrk_path, target.url, concurrency, args.duration, payload, target.token, headers=target.headers)
    cpu = sum(procs.cpu_seconds(pid) for pid in pids) - cpu_before
    result["cpu_ms_per_request"] = 1000 * cpu / max(1, result["requests"])
    print(
        f"  {name:8s} c={concurrency:<3d} {result['rps']:9.1f} req/s  p50 {result['p50_ms']:8.2f} ms  "
        f"p99 {result['p99_ms']:8.2f} ms  CPU {result['cpu_ms_per_request']:.2f} ms/request  "
        f"non-2xx {result['non_2xx']}  socket errors {result['socket_errors']}",
        flush=True,
    )
    return result


def load_runs(wrk_path: str, targets: dict[str, Target], args: argparse.Namespace) -> dict:
    """{target: {concurrency: wrk result + the server's CPU ms per request}}, targets in turn at each concurrency."""
    results: dict[str, dict[int, dict]] = {name: {} for name in targets}
    for concurrency in args.concurrency:
        for name, target in targets.items():
            results[name][concurrency] = load_cell(wrk_path, name, target, concurrency, args)
    return results


def stream_cell(name: str, target: Target, connections: int, seconds: float) -> dict:
    """Short streams back to back on `connections` kept-alive connections for `seconds`: the time
    to each stream's first `data:` event (a busy server, as the latency cells measure it)."""
    short = body(target.model, stream=True, short=True)
    streamclient.stream_load(target.port, PATH, short, target.token, connections, min(1.0, seconds), target.headers)  # warm-up
    result = streamclient.summary(streamclient.stream_load(target.port, PATH, short, target.token, connections, seconds, target.headers))
    print(
        f"  {name:8s} streams c={connections:<3d} first event p50 {result['ttfb_p50_ms']:.2f} ms  p99 {result['ttfb_p99_ms']:.2f} ms  "
        f"({result['streams']:.0f} streams)",
        flush=True,
    )
    return result


def stream_shape(targets: dict[str, Target], count: int) -> dict:
    """Per target, `count` 200 ms streams 50 ms apart on one connection (an otherwise idle server):
    time to the first event, and whether events are passed on as they come or bunched at the end."""
    results = {}
    for name, target in targets.items():
        long_body = body(target.model, stream=True)
        streamclient.stream_timings(target.port, PATH, long_body, target.token, 3, headers=target.headers)  # warm-up
        timings = streamclient.stream_timings(target.port, PATH, long_body, target.token, count, pause_s=0.05, headers=target.headers)
        results[name] = r = streamclient.summary(timings)
        print(
            f"  {name:8s} idle streams: first event p50 {r['ttfb_p50_ms']:.2f} ms, whole stream {r['total_p50_ms']:.1f} ms, "
            f"events in its first half {r['first_half_share']:.0%}",
            flush=True,
        )
    return results


def rounds_run(wrk_path: str, targets: dict[str, Target], args: argparse.Namespace) -> list[dict]:
    """Every cell (load at each concurrency, streams at c=1 and c=8) once per round, the targets in
    turn, their order reversed every other round so that none always runs first or last."""
    rounds = []
    for index in range(args.rounds):
        order = list(targets) if index % 2 == 0 else list(targets)[::-1]
        print(f"bench: round {index + 1} of {args.rounds} ({', '.join(order)})", flush=True)
        load: dict[str, dict[int, dict]] = {name: {} for name in targets}
        for concurrency in args.concurrency:
            for name in order:
                load[name][concurrency] = load_cell(wrk_path, name, targets[name], concurrency, args)
        stream: dict[str, dict[str, dict]] = {name: {} for name in targets}
        for name in order:
            for connections in STREAM_CONCURRENCY:
                stream[name][f"c{connections}"] = stream_cell(name, targets[name], connections, args.stream_seconds)
        rounds.append({"order": order, "load": load, "stream": stream})
    return rounds


def median_of(rounds: list) -> Any:
    """The rounds' results merged cell by cell: the median of each number, the same shape."""
    first = rounds[0]
    if isinstance(first, dict):
        return {key: median_of([r[key] for r in rounds]) for key in first if all(key in r for r in rounds)}
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        return statistics.median(rounds)
    return first


def rss_sampler(pids: list[int], every_s: float) -> tuple[threading.Event, dict[int, list[float]], threading.Thread]:
    """A thread that samples each process's RSS every `every_s` until the event is set."""
    samples: dict[int, list[float]] = {pid: [] for pid in pids}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for pid in pids:
                value = procs.rss_mb(pid)
                if value is not None:
                    samples[pid].append(value)
            done.wait(every_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    return done, samples, thread


def open_streams_run(direct: Target, city: City, token: str, count: int, per_second: float = OPEN_STREAMS_PER_SECOND) -> dict:
    """`count` slow streams straight to the simulator, then through City, opened `per_second` (the
    goal's figures: all open together at the ramp's end, each stream's first event behind only what
    the server does for the streams already open), then all at once (for information: the first
    events then wait behind `count` admissions queued in the same instant). For each: how many end
    with `data: [DONE]`, the time to their first event, and the RSS of each City worker before, at
    the peak and 5 s after every stream closed."""
    results: dict = {"streams": count, "per_second": per_second}
    targets = {"direct": direct, "City": Target(city.url, CITY_MODEL, token, city.pids)}
    shapes = {"ramp": per_second, "burst": 0.0} if per_second else {"burst": 0.0}
    for shape, rate in shapes.items():
        rows = results if shape == "ramp" or not per_second else results.setdefault("burst", {})
        for name, target in targets.items():
            rows[name] = open_streams_once(target, city.pids() if name == "City" else [], count, rate)
            row = rows[name]
            print(
                f"  {name:8s} {count} streams {f'{rate:g}/s' if rate else 'at once'}: {row['completed']} completed (at most {row['peak_open']} open), "
                f"first event p50 {row.get('ttfb_p50_ms', float('nan')):.1f} ms p99 {row.get('ttfb_p99_ms', float('nan')):.1f} ms, "
                f"all done in {row['seconds']:.1f} s" + (f"; failures: {row['failures'][:2]}" if row["failed"] else ""),
                flush=True,
            )
    return results


def open_streams_once(target: Target, pids: list[int], count: int, per_second: float) -> dict:
    """One target's `count` slow streams (`per_second` apart, or at once), with `pids`' RSS sampled."""
    slow = body(target.model, stream=True, slow=True)
    before = {pid: procs.rss_mb(pid) for pid in pids}
    cpu_before = sum(procs.cpu_seconds(pid) for pid in pids)
    done, samples, sampler = rss_sampler(pids, 0.2)
    try:
        opened = streamclient.open_streams(
            target.port, PATH, slow, target.token, count, OPEN_STREAM_TIMEOUT_S, target.headers, per_second=per_second
        )
    finally:
        done.set()
        sampler.join()
    row: dict = {"completed": len(opened.timings), "failures": opened.failures[:5], "failed": len(opened.failures)}
    row["seconds"], row["peak_open"] = opened.seconds, opened.peak_open
    if pids:  # the wall-clock figures move with the machine's other load; the CPU they took does not
        row["cpu_ms_per_stream"] = (sum(procs.cpu_seconds(pid) for pid in pids) - cpu_before) * 1000 / count
    if opened.timings:
        row.update(streamclient.summary(opened.timings))
    if pids:
        time.sleep(5)  # then the memory each worker kept once every stream closed
        row["rss_mb"] = {
            str(pid): {"before": before[pid], "peak": max(samples[pid], default=before[pid]), "after_close": procs.rss_mb(pid)}
            for pid in pids
        }
    return row


def memory_run(wrk_path: str, city: City, token: str, requests: int, concurrency: int) -> dict:
    """RSS of every City process, sampled each second while `requests` requests go through City."""
    pids = city.pids()
    done, samples, sampler = rss_sampler(pids, 1.0)
    sent, non_2xx, full_windows = 0, 0, []
    try:
        # wrk runs for its whole -d even when the Lua cap stops its thread early: go by 10 s windows.
        while sent < requests:
            result = wrk(wrk_path, city.url, concurrency, 10, body(CITY_MODEL), token, max_requests=requests - sent)
            sent += result["requests"]
            non_2xx += result["non_2xx"] + result["socket_errors"]
            if sent < requests:
                full_windows.append(result)
            if result["requests"] == 0:
                raise RuntimeError("City answered no request in 10 s during the memory run")
    finally:
        done.set()
        sampler.join()
    # A capped window's seconds include the time wrk idled after the cap: only full windows give a rate.
    rps = sum(w["requests"] for w in full_windows) / sum(w["seconds"] for w in full_windows) if full_windows else None
    per_process = {}
    for pid, values in samples.items():
        if values:
            tenth = max(1, len(values) // 10)
            per_process[pid] = {"start_mb": values[0], "after_10pct_mb": values[tenth - 1], "end_mb": values[-1], "max_mb": max(values)}
    return {"requests": sent, "rps": rps, "non_2xx": non_2xx, "per_process": per_process}


# --- report -----------------------------------------------------------------------------------


def wait_until_ok(post: Callable[[], tuple[int, bytes]], what: str, timeout_s: float = 30.0) -> None:
    """Until `post()` answers 200 (City's env snapshot has the simulator) before anything is measured."""
    deadline = time.monotonic() + timeout_s
    while True:
        status, answer = post()
        if status == 200:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"City did not serve {what} within {timeout_s:.0f} s: {status} {answer[:300]!r}")
        time.sleep(0.3)


def counted_args(description: str, requests: int, warmup: int, quick: tuple[int, int]) -> argparse.Namespace:
    """The arguments of a script that measures a count of requests against uvicorn-served City
    (media_overhead, protocol_overhead): `--quick` makes `quick` (requests, warm-up) a smoke run."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=f"{quick[0]} requests after {quick[1]} of warm-up: a smoke run")
    parser.add_argument("--requests", type=int, default=requests, help="measured requests a route (and mode)")
    parser.add_argument("--warmup", type=int, default=warmup, help="warm-up requests a route (and mode)")
    parser.add_argument("--workers", type=int, default=1, help="City's uvicorn processes")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""), help="default: a temporary SQLite file")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument("--max-minutes", type=float, default=15.0, help="the run stops itself after this long")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.warmup = quick
    return args


def run_meta(command: str, load_before: str, args: argparse.Namespace | None = None) -> dict:
    """What every report says of its run: the commit, the command, the machine and its load; with the
    run's `args`, City's server and database too."""
    meta = {
        "commit": git_state(),
        "command": command,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_before": load_before,
        "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    if args is not None:
        meta["city"] = f"uvicorn × {args.workers} ({' '.join(production_argv(0, args.workers)[2:]).replace('--port 0 ', '')})"
        meta["database"] = ("SQLite" if args.database_url.startswith("sqlite") else "PostgreSQL") + (
            " + Redis" if args.redis_url else " (no Redis)"
        )
    return meta


def save_report(name: str, table: str, data: dict) -> None:
    """The markdown table and its data as var/bench/<name>.md and <name>.json, and the table printed."""
    (VAR / f"{name}.json").write_text(json.dumps(data, indent=2))
    (VAR / f"{name}.md").write_text(table + "\n")
    print("\n" + table + f"\n\n(also in {VAR / (name + '.md')} and {name}.json)")


def ok(flag: bool) -> str:
    return "✓" if flag else "✗"


PEERS = ("Portkey", "LiteLLM")
COLUMNS = ("direct", "City", *PEERS)


def added(results: dict, name: str, value: Callable[[dict], float]) -> float:
    """What `name` adds to a figure over the simulator alone (the `direct` column)."""
    return value(results[name]) - value(results["direct"])


def goals(results: dict) -> list[tuple[bool, str]]:
    """Issue 12's goals (and the earlier ones that still hold) for one run's medians: (met, what)."""
    load, stream = results.get("load", {}), results.get("stream", {})
    checks: list[tuple[bool, str]] = []
    city = load.get("City", {})
    if 1 in city:
        ratio = city[1]["p99_ms"] / city[1]["p50_ms"]
        checks.append(
            (
                ratio <= GOAL_P99_OVER_P50_C1,
                f"c=1: City's p99 {city[1]['p99_ms']:.2f} ms is {ratio:.1f}× its p50 {city[1]['p50_ms']:.2f} ms (goal ≤ {GOAL_P99_OVER_P50_C1:.0f}×)",
            )
        )
        for peer in PEERS:
            if 1 in load.get(peer, {}):
                mine, theirs = added(load, "City", lambda r: r[1]["p50_ms"]), added(load, peer, lambda r: r[1]["p50_ms"])
                checks.append((mine < theirs, f"c=1: City adds {mine:.2f} ms at p50, {peer} {theirs:.2f} ms (goal: less)"))
    for c in (16, 64):
        if c not in city:
            continue
        if c in load.get("Portkey", {}):
            mine, theirs = city[c]["p99_ms"], load["Portkey"][c]["p99_ms"]
            checks.append((mine < theirs, f"c={c}: City's p99 {mine:.1f} ms, Portkey's {theirs:.1f} ms (goal: below Portkey's)"))
        for peer, goal in (("Portkey", GOAL_RPS_OVER_PORTKEY), ("LiteLLM", GOAL_RPS_OVER_LITELLM)):
            if c in load.get(peer, {}):
                ratio = city[c]["rps"] / load[peer][c]["rps"]
                checks.append((ratio >= goal, f"c={c}: City serves {ratio:.1f}× {peer}'s requests/s (goal ≥ {goal:.0f}×)"))
    if "City" in stream and "direct" in stream:
        for cell, goal in (("c8", GOAL_STREAM_ADDED_C8_MS), ("c1", GOAL_STREAM_ADDED_C1_MS)):
            if cell in stream["City"]:
                extra = stream["City"][cell]["ttfb_p50_ms"] - stream["direct"][cell]["ttfb_p50_ms"]
                checks.append(
                    (extra <= goal, f"streaming at c={cell[1:]}: City adds {extra:.2f} ms to the first event's p50 (goal ≤ {goal} ms)")
                )
    shape = results.get("stream_shape", {})
    if "City" in shape and "direct" in shape:
        through, alone = shape["City"]["first_half_share"], shape["direct"]["first_half_share"]
        checks.append(
            (
                abs(through - alone) <= 0.1,
                f"streaming: events arrive through City as spread out as direct ({through:.0%} vs {alone:.0%} in the stream's first half): "
                "passed on as they come, not re-buffered",
            )
        )
    opened = results.get("open_streams")
    if opened and "City" in opened:
        count, through = opened["streams"], opened["City"]
        checks.append(
            (
                through["completed"] == count and opened["direct"]["completed"] == count,
                f"{count:,} open streams: {through['completed']:,} completed through City, {opened['direct']['completed']:,} direct (goal: all)",
            )
        )
        if "ttfb_p50_ms" in through and "ttfb_p50_ms" in opened["direct"]:
            extra = added(opened, "City", lambda r: r["ttfb_p50_ms"])
            checks.append(
                (
                    extra <= GOAL_OPEN_STREAMS_ADDED_MS,
                    f"{count:,} open streams: City adds {extra:.1f} ms to the first event's p50 (goal ≤ {GOAL_OPEN_STREAMS_ADDED_MS:.0f} ms)",
                )
            )
        rss = through.get("rss_mb", {})
        if rss:
            peak = max(m["peak"] for m in rss.values())
            back = max((m["after_close"] or 0) - m["before"] for m in rss.values())
            checks.append(
                (peak <= GOAL_RSS_MB, f"{count:,} open streams: at most {peak:.0f} MB per City worker (goal ≤ {GOAL_RSS_MB:.0f} MB)")
            )
            checks.append(
                (
                    back <= GOAL_RSS_BACK_MB,
                    f"{count:,} open streams: 5 s after they closed, each worker within {back:+.1f} MB of its start (goal ≤ {GOAL_RSS_BACK_MB:.0f} MB)",
                )
            )
    memory = results.get("memory")
    if memory and memory["per_process"]:
        worst = max(m["max_mb"] for m in memory["per_process"].values())
        growth = max(m["end_mb"] - m["after_10pct_mb"] for m in memory["per_process"].values())
        checks.append(
            (
                worst <= GOAL_RSS_MB and growth < GOAL_MEMORY_GROWTH_MB,
                f"memory: at most {worst:.0f} MB per City process over {memory['requests']:,} requests (goal ≤ {GOAL_RSS_MB:.0f} MB), "
                f"{growth:+.1f} MB from 10% to the end of the run (flat: under {GOAL_MEMORY_GROWTH_MB:.0f} MB)",
            )
        )
    return checks


def ms(value: float) -> str:
    return f"{value:.2f} ms" if abs(value) < 10 else f"{value:.1f} ms"


def main_table(results: dict) -> list[str]:
    """Issue 12's table: one column per target, each cell the median of the rounds."""
    load, stream = results["load"], results.get("stream", {})
    names = [n for n in COLUMNS if n in load]
    rows: list[tuple[str, Callable[[str], str]]] = []

    def cell(figure: Callable[[str], str]) -> Callable[[str], str]:
        def safe(name: str) -> str:
            try:
                return figure(name)
            except (KeyError, ZeroDivisionError):
                return "—"

        return safe

    high = [c for c in (16, 64) if c in results["concurrency"]]
    rows.append((f"req/s at {' / '.join(f'c={c}' for c in high)}", cell(lambda n: " / ".join(f"{load[n][c]['rps']:,.0f}" for c in high))))
    rows.append(
        (
            "added p50 at c=1",
            cell(lambda n: f"({ms(load[n][1]['p50_ms'])} p50)" if n == "direct" else ms(added(load, n, lambda r: r[1]["p50_ms"]))),
        )
    )
    rows.append(("p99 at c=1", cell(lambda n: f"{ms(load[n][1]['p99_ms'])} ({load[n][1]['p99_ms'] / load[n][1]['p50_ms']:.1f}× its p50)")))

    def p99_at(c: int) -> Callable[[str], str]:
        return lambda n: ms(load[n][c]["p99_ms"])

    def first_event_added(cell_name: str, key: str) -> Callable[[str], str]:
        # The simulator's own figure in brackets: what the others' are added to.
        return lambda n: (
            f"({ms(stream[n][cell_name][key])})" if n == "direct" else ms(stream[n][cell_name][key] - stream["direct"][cell_name][key])
        )

    for c in high:
        rows.append((f"p99 at c={c}", cell(p99_at(c))))
    for cell_name in ("c8", "c1"):
        for share, key in (("p50", "ttfb_p50_ms"), ("p99", "ttfb_p99_ms")):
            rows.append((f"streaming: first event added, {share} at c={cell_name[1:]}", cell(first_event_added(cell_name, key))))

    def cpu(n: str) -> str:
        values = [load[n][c]["cpu_ms_per_request"] for c in results["concurrency"]]
        return f"{min(values):.2f}–{max(values):.2f} ms"

    rows.append((f"CPU per request ({', '.join(f'c={c}' for c in results['concurrency'])})", cell(cpu)))
    lines = [
        "| | " + " | ".join("simulator alone" if n == "direct" else n for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    lines.extend(f"| {label} | " + " | ".join(figure(n) for n in names) + " |" for label, figure in rows)
    return lines


def report(results: dict) -> str:
    meta, load = results["meta"], results["load"]
    names = [n for n in COLUMNS if n in load]
    lines = [
        f"Commit {meta['commit']}. City: {meta['city']}, its studio on {meta.get('plan', 'no plan')}; Portkey: {meta.get('portkey', 'not run')}; "
        f"LiteLLM {meta.get('litellm_version', '')}: {meta.get('litellm', 'not run')}; database: {meta['database']}; "
        f"{meta['cpus']} CPUs, {meta['simulator']}; load average before the run: {meta['load_before']}. "
        f"wrk -t1, {meta['duration_s']:g} s per cell after {meta['warmup_s']:g} s of warm-up; streams for {meta['stream_seconds_s']:g} s per cell; "
        f"{meta['rounds']} rounds, the targets' order reversed every other round; each figure is the median of the rounds "
        "(every round's figures are in results.json).",
        "",
        *main_table(results),
        "",
    ]
    shape = results.get("stream_shape")
    if shape:
        shown = [n for n in names if n in shape]
        lines.append("| 200 ms streams 50 ms apart (idle server) | " + " | ".join(shown) + " |")
        lines.append("|---|" + "---:|" * len(shown))
        lines.append("| first event, p50 | " + " | ".join(ms(shape[n]["ttfb_p50_ms"]) for n in shown) + " |")
        lines.append(
            "| events received in the stream's first half | " + " | ".join(f"{shape[n]['first_half_share']:.0%}" for n in shown) + " |"
        )
        lines.append("")
    opened = results.get("open_streams")
    if opened:
        lines.extend(open_streams_table(opened))
    memory = results.get("memory")
    if memory:
        lines.append(
            f"| RSS per City process over {memory['requests']:,} requests (c={memory['concurrency']}"
            + (f", {memory['rps']:,.0f} req/s" if memory["rps"] else "")
            + ") | start MB | after 10% MB | end MB | max MB |"
        )
        lines.append("|---|---:|---:|---:|---:|")
        for pid, m in memory["per_process"].items():
            lines.append(f"| pid {pid} | {m['start_mb']:.0f} | {m['after_10pct_mb']:.0f} | {m['end_mb']:.0f} | {m['max_mb']:.0f} |")
        lines.append("")
    lines.extend(f"- {ok(met)} {what}" for met, what in goals(results))
    non_2xx = {
        n: sum(r["non_2xx"] + r["socket_errors"] for round_ in results.get("rounds", []) for r in round_["load"][n].values()) for n in names
    }
    lines.append(
        "- non-2xx answers and socket errors: "
        + ", ".join(f"{n} {v}" for n, v in non_2xx.items())
        + f"; tracebacks in City's logs: {results.get('errors_logged', '?')}"
    )
    return "\n".join(lines)


def open_streams_table(opened: dict) -> list[str]:
    """The open streams' rows: opened at a steady rate (the goal's), then all at once (information)."""
    count, pair = opened["streams"], ("direct", "City")
    rate = opened.get("per_second")
    shapes = [(f"opened {rate:g}/s" if rate else "opened at once", opened)]
    if "burst" in opened:
        shapes.append(("opened at once", opened["burst"]))
    lines = [f"| {count:,} slow streams ({opened.get('shape', '')}) | simulator alone | City |", "|---|---:|---:|"]
    for label, rows in shapes:
        lines.append(f"| {label}: completed with `data: [DONE]` | " + " | ".join(f"{rows[n]['completed']:,}" for n in pair) + " |")
        if all("peak_open" in rows[n] for n in pair):
            lines.append(f"| {label}: most open at one time | " + " | ".join(f"{rows[n]['peak_open']:,}" for n in pair) + " |")
        if all("ttfb_p50_ms" in rows[n] for n in pair):
            lines.append(
                f"| {label}: first event, p50 / p99 | "
                + " | ".join(f"{ms(rows[n]['ttfb_p50_ms'])} / {ms(rows[n]['ttfb_p99_ms'])}" for n in pair)
                + " |"
            )
            lines.append(
                f"| {label}: first event added, p50 / p99 | | {ms(added(rows, 'City', lambda r: r['ttfb_p50_ms']))} / "
                f"{ms(added(rows, 'City', lambda r: r['ttfb_p99_ms']))} |"
            )
        lines.append(f"| {label}: all ended after | " + " | ".join(f"{rows[n]['seconds']:.1f} s" for n in pair) + " |")
        if "cpu_ms_per_stream" in rows["City"]:
            lines.append(f"| {label}: City's CPU per stream (all workers) | | {ms(rows['City']['cpu_ms_per_stream'])} |")
    lines.append("")
    for label, rows in shapes:
        rss = rows["City"].get("rss_mb", {})
        if rss:
            lines.append(f"| RSS per City worker, streams {label} | before MB | peak MB | 5 s after close MB |")
            lines.append("|---|---:|---:|---:|")
            for pid, m in rss.items():
                after = "gone" if m["after_close"] is None else f"{m['after_close']:.0f}"
                lines.append(f"| pid {pid} | {m['before']:.0f} | {m['peak']:.0f} | {after} |")
            lines.append("")
    return lines


def servers_table(rows: list[dict], concurrency: list[int]) -> str:
    lines = [
        "| City server | " + " | ".join(f"c={c}: req/s · p50 ms · CPU ms/request" for c in concurrency) + " |",
        "|---|" + "---:|" * len(concurrency),
    ]
    for row in rows:
        cells = " | ".join(
            f"{row['load'][c]['rps']:,.0f} · {row['load'][c]['p50_ms']:.2f} · {row['load'][c]['cpu_ms_per_request']:.2f}"
            for c in concurrency
        )
        lines.append(f"| {row['server']} × {row['workers']} | {cells} |")
    return "\n".join(lines)


# --- the run ----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="City's data-plane benchmark (see bench/README.md).")
    parser.add_argument("--quick", action="store_true", help="short cells, 10,000 memory requests: a smoke run (about 3 minutes)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per cell")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up before each cell")
    parser.add_argument("--rounds", type=int, default=2, help="times every cell is measured, the targets' order reversed every other time")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16, 64])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="City processes (production: one per core)")
    parser.add_argument("--server", choices=("uvicorn", "daphne"), default="uvicorn", help="City's server (production: uvicorn)")
    parser.add_argument("--litellm-workers", type=int, default=None, help="LiteLLM processes (default: as many as City's)")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM (no goal ratios against it then)")
    parser.add_argument("--no-plan", action="store_true", help="City's studio on no plan (default: a plan with every limit, none reached)")
    parser.add_argument("--no-portkey", action="store_true", help="skip Portkey's gateway (no goal ratios against it then)")
    parser.add_argument("--stream-seconds", type=float, default=5.0, help="seconds of each streaming cell (c=1, c=8)")
    parser.add_argument("--stream-requests", type=int, default=20, help="long streams 50 ms apart per target (the re-buffering check)")
    parser.add_argument("--streams-open", type=int, default=1000, help="slow streams held open together, direct and through City (0: none)")
    parser.add_argument(
        "--streams-open-rate",
        type=float,
        default=OPEN_STREAMS_PER_SECOND,
        help="streams opened per second for the goal's figures, then all at once for information (0: at once only)",
    )
    parser.add_argument("--memory-requests", type=int, default=100_000, help="requests of the RSS run (0: none)")
    parser.add_argument("--memory-concurrency", type=int, default=64)
    parser.add_argument("--servers", action="store_true", help="also measure City under daphne and uvicorn with 1 and 2 processes")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or f"sqlite:///{VAR / 'city.sqlite3'}",
        help="City's database (default: $DATABASE_URL, else a fresh SQLite file under var/bench/)",
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""), help="City's Redis (default: $REDIS_URL)")
    parser.add_argument("--max-minutes", type=float, default=30.0, help="the run stops itself after this long")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup, args.stream_seconds, args.stream_requests = 4.0, 1.0, 2.0, 10
        args.memory_requests = min(args.memory_requests, 10_000)
    args.litellm_workers = args.litellm_workers or args.workers
    return args


def litellm_version(litellm: Path) -> str:
    return subprocess.run(
        [str(litellm.parent / "python"), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    ).stdout.strip()


def main() -> None:
    args = parse_args()
    VAR.mkdir(parents=True, exist_ok=True)
    started: list = []  # everything to stop, last first

    procs.stop_after(args.max_minutes)
    try:
        wrk_path = tools.ensure_wrk()
        portkey_js = None if args.no_portkey else tools.ensure_portkey(VAR / "portkey")
        litellm = None if args.no_litellm else tools.ensure_litellm(VAR / "litellm-venv")
        # Every server started from here inherits it: 1,000 open streams hold 2,000 sockets in City.
        streamclient.raise_open_files(4 * args.streams_open + 1024)
        results: dict = {"concurrency": args.concurrency}
        load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"bench: load average {load_before}; preparing {args.database_url.split('@')[-1]}", flush=True)
        prepare_database(args)

        # The simulator on a core of its own (when there are two), so that its share of the machine
        # does not move with the proxies' load, and every target meets the same upstream.
        pinned = SIMULATOR_CPU if (os.cpu_count() or 1) > SIMULATOR_CPU and hasattr(os, "sched_setaffinity") else None
        simulator, upstream = start_simulator(started, cpu=pinned)

        city = City(args, args.server, args.workers)
        started.append(city)
        token = city.set_up_studio(upstream, plan=not args.no_plan)
        city.wait_model_callable(token)
        targets = {
            "direct": Target(upstream, UPSTREAM_MODEL, None, lambda: [simulator.pid]),
            "City": Target(city.url, CITY_MODEL, token, city.pids),
        }
        meta = {
            "city": f"{args.server} × {args.workers} (" + " ".join(production_argv(0, args.workers)[2:]).replace("--port 0 ", "") + ")"
            if args.server == "uvicorn"
            else f"daphne × {args.workers}",
            "database": args.database_url.split("@")[-1].split("///")[0] + (" + Redis" if args.redis_url else ""),
            "cpus": os.cpu_count(),
            "simulator": f"simulator pinned to CPU {','.join(map(str, sorted(os.sched_getaffinity(simulator.pid))))}"
            if pinned is not None
            else "simulator not pinned (one CPU)",
            "load_before": load_before,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "stream_seconds_s": args.stream_seconds,
            "rounds": args.rounds,
            "python": platform.python_version(),
            "commit": git_state(),
            "plan": "no plan" if args.no_plan else "a plan with every limit, none reached (the plan path on)",
        }
        portkey_proc = litellm_proc = None
        if portkey_js:
            portkey_proc, portkey_url = portkey.start(portkey_js, VAR)
            started.append(portkey_proc)
            headers = portkey.routing_headers(upstream)
            portkey.check_routing(
                portkey_url,
                PATH,
                headers,
                body(UPSTREAM_MODEL),
                body(UPSTREAM_MODEL, stream=True, short=True),
                "Hello from the City benchmark",
            )
            targets["Portkey"] = Target(portkey_url, UPSTREAM_MODEL, None, lambda: [portkey_proc.pid], headers)
            versions = tools.portkey_versions(VAR / "portkey")
            meta["portkey"] = (
                f"@portkey-ai/gateway {versions['gateway']} with @hono/node-server {versions['node_server']}, one Node process"
            )
        if litellm:
            print("bench: starting LiteLLM (it takes a while to import)…", flush=True)
            litellm_proc, litellm_url = start_litellm(litellm, upstream, args.litellm_workers)
            started.append(litellm_proc)
            targets["LiteLLM"] = Target(
                litellm_url, UPSTREAM_MODEL, LITELLM_KEY, lambda: [litellm_proc.pid, *procs.descendants(litellm_proc.pid)]
            )
            meta.update(
                {"litellm": f"uvicorn × {args.litellm_workers}, master key, no database", "litellm_version": litellm_version(litellm)}
            )
        results["meta"] = meta

        results["rounds"] = rounds_run(wrk_path, targets, args)
        merged = median_of(results["rounds"])
        results["load"], results["stream"] = merged["load"], merged["stream"]
        print("bench: streams 50 ms apart", flush=True)
        results["stream_shape"] = stream_shape(targets, args.stream_requests)
        for proc in (portkey_proc, litellm_proc):
            if proc is not None:
                proc.stop()  # frees their CPU and memory for the rest
        if args.streams_open:
            print(f"bench: {args.streams_open:,} slow streams open together", flush=True)
            results["open_streams"] = open_streams_run(targets["direct"], city, token, args.streams_open, args.streams_open_rate)
            results["open_streams"]["shape"] = "20 chunks 250 ms apart"
        if args.memory_requests:
            print(f"bench: memory over {args.memory_requests:,} requests through City", flush=True)
            results["memory"] = memory_run(wrk_path, city, token, args.memory_requests, args.memory_concurrency)
            results["memory"]["concurrency"] = args.memory_concurrency
        results["errors_logged"] = city.errors_logged()
        city.stop()

        if args.servers:
            rows = []
            for server, workers in (("daphne", 1), ("daphne", 2), ("uvicorn", 1), ("uvicorn", 2)):
                print(f"bench: City under {server} × {workers}", flush=True)
                other = City(args, server, workers)
                started.append(other)
                other.wait_model_callable(token)
                rows.append(
                    {
                        "server": server,
                        "workers": workers,
                        "load": load_runs(wrk_path, {"City": Target(other.url, CITY_MODEL, token, other.pids)}, args)["City"],
                    }
                )
                other.stop()
            results["servers"] = rows

        results["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        table = report(results)
        if args.servers:
            table += "\n\n" + servers_table(results["servers"], args.concurrency)
        table += f"\n\nLoad average after the run: {results['load_after']}."
        (VAR / "results.json").write_text(json.dumps(results, indent=2, default=str))
        (VAR / "results.md").write_text(table + "\n")
        print("\n" + table + f"\n\n(also in {VAR / 'results.md'} and results.json)")
    finally:
        procs.stop_all(started)


if __name__ == "__main__":
    if shutil.which("wrk") is None and os.geteuid() != 0:
        print("bench: wrk is not installed and this is not root; install wrk first.", file=sys.stderr)
    main()
