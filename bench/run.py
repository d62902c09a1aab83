"""City's data-plane benchmark: direct to an upstream simulator, through City, through LiteLLM's proxy.

    .venv/bin/python bench/run.py            # the full run (make bench), about 8 minutes
    .venv/bin/python bench/run.py --quick    # a smoke run, about 2 minutes
    .venv/bin/python bench/run.py --servers  # also City under Daphne and uvicorn with 1 and 2 processes

One run, all on 127.0.0.1:
1. installs what it needs once: wrk (apt-get) and LiteLLM's proxy (its own venv under var/bench/);
2. starts the upstream simulator (bench/simulator.py), City as production runs it (uvicorn, one
   process per core: `make serve-prod`) on a fresh database, and LiteLLM routed to the simulator;
3. creates a studio and a token through City's admin API and points the `local-chat` model at the
   simulator with `env/upsert`;
4. at concurrency 1, 16 and 64, runs wrk against each for --duration seconds after a warm-up:
   requests/s, p50 and p99 latency of `POST /v1/chat/completions`;
5. streams: time to the first `data:` event, and whether the events arrive spread over the stream
   (passed on as they come) or bunched at its end (re-buffered);
6. sends --memory-requests requests through City while sampling each City process's RSS;
7. prints one markdown table with the goals checked, writes var/bench/results.json, and ends every
   process it started, also on failure or Ctrl-C. A run never lasts more than --max-minutes.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

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

# Goals, as ratios measured in the same run (see bench/README.md).
GOAL_RPS_RATIO = 8.0  # City's requests/s ÷ LiteLLM's, at concurrency 16 and 64
GOAL_ADDED_LATENCY_SHARE = 0.1  # City's added p50 latency ÷ LiteLLM's, at concurrency 1
GOAL_TTFB_ADDED_MS = 1.0
GOAL_RSS_MB = 150.0


def body(model: str, stream: bool = False, short: bool = False) -> bytes:
    """A chat completion request; `short` asks the simulator for a two-chunk stream."""
    messages = [{"role": "user", "content": "Say hello to the benchmark. [bench:short-stream]"}] if short else MESSAGES
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


def start_simulator(started: list) -> tuple[Proc, str]:
    """bench/simulator.py on a free port, ready (added to `started`, for the caller to stop), and its URL."""
    port = free_port()
    simulator = Proc(
        "simulator", [sys.executable, str(BENCH_DIR / "simulator.py"), "--port", str(port)], env=dict(os.environ), log_dir=VAR, cwd=ROOT
    )
    started.append(simulator)
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

    def set_up_studio(self, upstream_url: str) -> str:
        """A studio, a token for it, and `local-chat` pointed at the simulator; returns the token."""
        studio = self.admin("POST", "/v1/studios/create", {"name": "Benchmark"})
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


def wrk(
    wrk_path: str, url: str, concurrency: int, seconds: float, payload: bytes, token: str | None, max_requests: int | None = None
) -> dict:
    env = {**os.environ, "BENCH_METHOD": "POST", "BENCH_BODY": payload.decode(), "BENCH_TOKEN": token or ""}
    if max_requests:
        env["BENCH_MAX_REQUESTS"] = str(max_requests)
    argv = [wrk_path, "-t1", f"-c{concurrency}", f"-d{int(seconds)}s", "--timeout", "10s", "-s", str(BENCH_DIR / "wrk.lua"), url + PATH]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60).stdout
    for line in out.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line.removeprefix("BENCH_RESULT "))
    raise RuntimeError(f"wrk printed no result:\n{out}")


def load_runs(wrk_path: str, targets: dict[str, Target], args: argparse.Namespace) -> dict:
    """{target: {concurrency: wrk result + the server's CPU ms per request}}, targets in turn at each concurrency."""
    results: dict[str, dict[int, dict]] = {name: {} for name in targets}
    for concurrency in args.concurrency:
        for name, target in targets.items():
            wrk(wrk_path, target.url, concurrency, args.warmup, body(target.model), target.token)
            pids = target.pids()
            cpu_before = sum(procs.cpu_seconds(pid) for pid in pids)
            result = wrk(wrk_path, target.url, concurrency, args.duration, body(target.model), target.token)
            cpu = sum(procs.cpu_seconds(pid) for pid in pids) - cpu_before
            result["cpu_ms_per_request"] = 1000 * cpu / max(1, result["requests"])
            results[name][concurrency] = result
            print(
                f"  {name:8s} c={concurrency:<3d} {result['rps']:9.1f} req/s  p50 {result['p50_ms']:8.2f} ms  "
                f"p99 {result['p99_ms']:8.2f} ms  CPU {result['cpu_ms_per_request']:.2f} ms/request  "
                f"non-2xx {result['non_2xx']}  socket errors {result['socket_errors']}",
                flush=True,
            )
    return results


def stream_runs(targets: dict[str, Target], count: int) -> dict:
    """Per target: long streams 50 ms apart (an otherwise idle server: time to the first event and
    whether events are passed on as they come), then short streams back to back (a busy server,
    as the latency cells measure it: time to the first event)."""
    results = {}
    for name, target in targets.items():
        port = int(target.url.rsplit(":", 1)[1])
        long_body, short_body = body(target.model, stream=True), body(target.model, stream=True, short=True)
        streamclient.stream_timings(port, PATH, long_body, target.token, 3)  # warm-up
        idle = streamclient.summary(streamclient.stream_timings(port, PATH, long_body, target.token, count, pause_s=0.05))
        streamclient.stream_timings(port, PATH, short_body, target.token, 50)  # warm-up
        busy = streamclient.summary(streamclient.stream_timings(port, PATH, short_body, target.token, count * 10))
        results[name] = {**idle, "busy_ttfb_p50_ms": busy["ttfb_p50_ms"], "busy_ttfb_p90_ms": busy["ttfb_p90_ms"]}
        r = results[name]
        print(
            f"  {name:8s} stream: first event p50 {r['ttfb_p50_ms']:.2f} ms (back to back: {r['busy_ttfb_p50_ms']:.2f} ms), "
            f"whole stream {r['total_p50_ms']:.1f} ms, events in its first half {r['first_half_share']:.0%}",
            flush=True,
        )
    return results


def memory_run(wrk_path: str, city: City, token: str, requests: int, concurrency: int) -> dict:
    """RSS of every City process, sampled each second while `requests` requests go through City."""
    pids = city.pids()
    samples: dict[int, list[float]] = {pid: [] for pid in pids}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for pid in pids:
                value = procs.rss_mb(pid)
                if value is not None:
                    samples[pid].append(value)
            done.wait(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
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
    windows = full_windows or [result]
    rps = sum(w["requests"] for w in windows) / sum(w["seconds"] for w in windows)
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


def report(results: dict) -> str:
    load, meta = results["load"], results["meta"]
    names = [n for n in ("direct", "City", "LiteLLM") if n in load]
    lines = [
        f"Commit {meta['commit']}. City: {meta['city']}; LiteLLM {meta.get('litellm_version', '-')}: {meta.get('litellm', 'not run')}; "
        f"database: {meta['database']}; {meta['cpus']} CPUs; load average before the run: {meta['load_before']}; "
        f"wrk -t1, {meta['duration_s']} s per cell after {meta['warmup_s']} s of warm-up.",
        "",
        "| concurrency | " + " | ".join(f"{n} req/s" for n in names) + " | " + " | ".join(f"{n} p50 / p99 ms" for n in names) + " |",
        "|---:|" + "---:|" * (2 * len(names)),
    ]
    for c in results["concurrency"]:
        rps = " | ".join(f"{load[n][c]['rps']:,.0f}" for n in names)
        lat = " | ".join(f"{load[n][c]['p50_ms']:.2f} / {load[n][c]['p99_ms']:.2f}" for n in names)
        lines.append(f"| {c} | {rps} | {lat} |")
    lines.append("")
    lines.append("| server CPU per request, ms | " + " | ".join(f"c={c}" for c in results["concurrency"]) + " |")
    lines.append("|---|" + "---:|" * len(results["concurrency"]))
    for n in names:
        label = {"direct": "simulator alone"}.get(n, n)
        lines.append(f"| {label} | " + " | ".join(f"{load[n][c]['cpu_ms_per_request']:.2f}" for c in results["concurrency"]) + " |")
    lines.append("")
    goals = []
    if "LiteLLM" in load and "City" in load:
        for c in results["concurrency"]:
            if c >= 16:
                ratio = load["City"][c]["rps"] / load["LiteLLM"][c]["rps"]
                goals.append(
                    f"- {ok(ratio >= GOAL_RPS_RATIO)} concurrency {c}: City serves {ratio:.1f}× LiteLLM's requests/s (goal ≥ {GOAL_RPS_RATIO:.0f}×)"
                )
        if 1 in results["concurrency"]:
            city_added = load["City"][1]["p50_ms"] - load["direct"][1]["p50_ms"]
            litellm_added = load["LiteLLM"][1]["p50_ms"] - load["direct"][1]["p50_ms"]
            share = city_added / litellm_added if litellm_added > 0 else float("inf")
            goals.append(
                f"- {ok(share <= GOAL_ADDED_LATENCY_SHARE)} concurrency 1: City adds {city_added:.2f} ms to the p50 latency, "
                f"LiteLLM {litellm_added:.2f} ms: {share:.0%} of LiteLLM's (goal ≤ {GOAL_ADDED_LATENCY_SHARE:.0%})"
            )
    stream = results.get("stream")
    if stream:
        lines.append("| streaming (c=1) | " + " | ".join(names) + " |")
        lines.append("|---|" + "---:|" * len(names))
        lines.append(
            "| first `data:` event, busy server (short streams back to back), p50 ms | "
            + " | ".join(f"{stream[n]['busy_ttfb_p50_ms']:.2f}" for n in names)
            + " |"
        )
        lines.append(
            "| first `data:` event, idle server (streams 50 ms apart), p50 ms | "
            + " | ".join(f"{stream[n]['ttfb_p50_ms']:.2f}" for n in names)
            + " |"
        )
        lines.append("| whole stream, p50 ms | " + " | ".join(f"{stream[n]['total_p50_ms']:.1f}" for n in names) + " |")
        lines.append(
            "| events received in the stream's first half | " + " | ".join(f"{stream[n]['first_half_share']:.0%}" for n in names) + " |"
        )
        lines.append("")
        added = stream["City"]["busy_ttfb_p50_ms"] - stream["direct"]["busy_ttfb_p50_ms"]
        idle_added = stream["City"]["ttfb_p50_ms"] - stream["direct"]["ttfb_p50_ms"]
        goals.append(
            f"- {ok(added < GOAL_TTFB_ADDED_MS)} streaming: City adds {added:.2f} ms to the time to the first event on a busy server "
            f"(goal < {GOAL_TTFB_ADDED_MS:.0f} ms), {idle_added:.2f} ms on an idle one"
        )
        spread = stream["City"]["first_half_share"] - stream["direct"]["first_half_share"]
        goals.append(
            f"- {ok(abs(spread) <= 0.1)} streaming: events arrive through City as spread out as direct "
            f"({stream['City']['first_half_share']:.0%} vs {stream['direct']['first_half_share']:.0%} in the first half): passed on as they come, not re-buffered"
        )
    memory = results.get("memory")
    if memory:
        lines.append(
            f"| RSS per City process over {memory['requests']:,} requests (c={memory['concurrency']}, {memory['rps']:,.0f} req/s) | start MB | after 10% MB | end MB | max MB |"
        )
        lines.append("|---|---:|---:|---:|---:|")
        for pid, m in memory["per_process"].items():
            lines.append(f"| pid {pid} | {m['start_mb']:.0f} | {m['after_10pct_mb']:.0f} | {m['end_mb']:.0f} | {m['max_mb']:.0f} |")
        lines.append("")
        worst = max(m["max_mb"] for m in memory["per_process"].values())
        growth = max(m["end_mb"] - m["after_10pct_mb"] for m in memory["per_process"].values())
        goals.append(
            f"- {ok(worst < GOAL_RSS_MB and growth < 10)} memory: at most {worst:.0f} MB per process (goal < {GOAL_RSS_MB:.0f} MB), "
            f"{growth:+.1f} MB from 10% to the end of the run (flat: under 10 MB)"
        )
    lines.extend(goals)
    if "errors_logged" in results:
        lines.append(
            f"- non-2xx answers: {sum(r['non_2xx'] for n in names for r in load[n].values())}; tracebacks in City's logs: {results['errors_logged']}"
        )
    return "\n".join(lines)


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
    parser.add_argument("--quick", action="store_true", help="short cells, 10,000 memory requests: a smoke run")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per cell")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up before each cell")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16, 64])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="City processes (production: one per core)")
    parser.add_argument("--server", choices=("uvicorn", "daphne"), default="uvicorn", help="City's server (production: uvicorn)")
    parser.add_argument("--litellm-workers", type=int, default=None, help="LiteLLM processes (default: as many as City's)")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM (no goal ratios then)")
    parser.add_argument("--stream-requests", type=int, default=40)
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
        args.duration, args.warmup, args.stream_requests = 4.0, 1.0, 15
        args.memory_requests = min(args.memory_requests, 10_000)
    args.litellm_workers = args.litellm_workers or args.workers
    return args


def main() -> None:
    args = parse_args()
    VAR.mkdir(parents=True, exist_ok=True)
    started: list = []  # everything to stop, last first

    procs.stop_after(args.max_minutes)
    try:
        wrk_path = tools.ensure_wrk()
        litellm = None if args.no_litellm else tools.ensure_litellm(VAR / "litellm-venv")
        results: dict = {"concurrency": args.concurrency}
        load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"bench: load average {load_before}; preparing {args.database_url.split('@')[-1]}", flush=True)
        prepare_database(args)

        simulator, upstream = start_simulator(started)

        city = City(args, args.server, args.workers)
        started.append(city)
        token = city.set_up_studio(upstream)
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
            "load_before": load_before,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "python": platform.python_version(),
            "commit": git_state(),
        }
        if litellm:
            print("bench: starting LiteLLM (it takes a while to import)…", flush=True)
            litellm_proc, litellm_url = start_litellm(litellm, upstream, args.litellm_workers)
            started.append(litellm_proc)
            targets["LiteLLM"] = Target(
                litellm_url, UPSTREAM_MODEL, LITELLM_KEY, lambda: [litellm_proc.pid, *procs.descendants(litellm_proc.pid)]
            )
            version = subprocess.run(
                [str(litellm.parent / "python"), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                capture_output=True,
                text=True,
            ).stdout.strip()
            meta.update({"litellm": f"uvicorn × {args.litellm_workers}, master key, no database", "litellm_version": version})
        results["meta"] = meta

        print("bench: load (POST /v1/chat/completions)", flush=True)
        results["load"] = load_runs(wrk_path, targets, args)
        print("bench: streaming", flush=True)
        results["stream"] = stream_runs(targets, args.stream_requests)
        if litellm:
            litellm_proc.stop()  # frees its CPU for the rest
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
        signal.alarm(0)
        for item in reversed(started):
            item.stop()


if __name__ == "__main__":
    if shutil.which("wrk") is None and os.geteuid() != 0:
        print("bench: wrk is not installed and this is not root; install wrk first.", file=sys.stderr)
    main()
