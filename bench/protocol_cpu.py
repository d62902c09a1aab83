"""What each protocol costs City in CPU, in-process: the translation's price whatever the machine's load.

    .venv/bin/python bench/protocol_cpu.py                  # 2,000 requests a route and mode, about a minute
    .venv/bin/python bench/protocol_cpu.py --requests 300   # a smoke run

City's ASGI application is called directly (no server, no client socket: bench/handler.py's way)
with a studio token, on a fresh SQLite database without Redis, against bench/simulator.py (a
subprocess on 127.0.0.1, streams of 21 chunks written at once), for the same requests as
protocol_overhead.py: chat completions, the Responses API with `store: false` and stored, and the
Messages API, answered whole and streamed, interleaved request by request (each round shuffled, as
there). Per request it takes the CPU time of this process (every thread: City's async code, its
sync threads, the usage writer) and the wall time from the call to the last body byte. Latency on
a shared machine moves with its load; CPU time much less, so it is the steadier measure of what the
translation costs. It prints a table per mode and writes var/bench/protocol_cpu.md and .json.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import in_process

ROOT = in_process.configure()
SCRATCH = Path(tempfile.mkdtemp(prefix="city-protocol-cpu-"))
os.environ.update({"CITY_LOG_LEVEL": "WARNING", "CITY_DEBUG": "false", "DATABASE_URL": f"sqlite:///{SCRATCH / 'city.sqlite3'}"})
os.environ.pop("REDIS_URL", None)

import run  # noqa: E402
from handler import scope  # noqa: E402
from procs import free_port  # noqa: E402
from protocol_overhead import GOAL_ADDED_P50_MS, REFERENCE, STREAM_CHUNKS, Protocol, protocols, round_orders, upstream_env  # noqa: E402


async def one(app: Any, protocol: Protocol, body: bytes, token: str) -> tuple[int, bytes, float, float]:
    """One request through City's ASGI app: (status, body, wall seconds, CPU seconds of this process)."""
    headers = (
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"authorization", f"Bearer {token}".encode()),
    )
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    done = asyncio.Event()
    status, answer = 0, bytearray()

    async def receive() -> dict:
        if incoming:
            return incoming.pop()
        await done.wait()  # the disconnect comes after the answer, as from a kept-alive client
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            answer.extend(message.get("body", b""))

    cpu, wall = time.process_time(), time.perf_counter()
    await app(scope(protocol.path, "POST", headers), receive, send)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done.set()
    return status, bytes(answer), wall, cpu


async def measure(app: Any, token: str, stream: bool, requests: int, warmup: int) -> dict[str, dict[str, Any]]:
    routes = protocols()
    bodies = {p.name: json.dumps(p.body(stream)).encode() for p in routes}
    samples: dict[str, dict[str, list[float]]] = {p.name: {"cpu": [], "wall": []} for p in routes}
    for index, order in enumerate(round_orders(routes, warmup + requests)):
        for protocol in order:
            status, answer, wall, cpu = await one(app, protocol, bodies[protocol.name], token)
            problem = f"status {status}: {answer[:500]!r}" if status != 200 else protocol.check(answer, stream) if index == 0 else None
            if problem:
                raise RuntimeError(f"{protocol.name} ({'streamed' if stream else 'whole'}): {problem}")
            if index >= warmup:
                samples[protocol.name]["cpu"].append(cpu * 1e3)
                samples[protocol.name]["wall"].append(wall * 1e3)
    reference = samples[REFERENCE]
    rows = {}
    for protocol in routes:
        mine = samples[protocol.name]
        rows[protocol.name] = row = {
            "goal": protocol.goal and protocol.name != REFERENCE,
            "cpu_p50": statistics.median(mine["cpu"]),
            "cpu_mean": statistics.fmean(mine["cpu"]),
            "wall_p50": statistics.median(mine["wall"]),
            "added_cpu_paired_median": statistics.median(b - a for a, b in zip(reference["cpu"], mine["cpu"], strict=True)),
            "added_cpu_mean": statistics.fmean(mine["cpu"]) - statistics.fmean(reference["cpu"]),
            "added_wall_p50": statistics.median(mine["wall"]) - statistics.median(reference["wall"]),
            "added_wall_paired_median": statistics.median(b - a for a, b in zip(reference["wall"], mine["wall"], strict=True)),
        }
        print(
            f"  {'streamed' if stream else 'whole':8s} {protocol.name:24s} CPU p50 {row['cpu_p50']:.3f} ms (added {row['added_cpu_paired_median']:+.3f})  "
            f"wall p50 {row['wall_p50']:.3f} ms (added {row['added_wall_p50']:+.3f})",
            flush=True,
        )
    return rows


def report(cells: dict[str, dict[str, dict[str, Any]]], meta: dict[str, Any]) -> str:
    lines = [
        f"Commit {meta['commit']}; in-process (City's ASGI app called directly), SQLite, no Redis; {meta['cpus']} CPUs, "
        f"Python {meta['python']}; load average {meta['load_before']} before, {meta['load_after']} after; {meta['requests']} "
        f"requests a route and mode after {meta['warmup']} of warm-up, interleaved; upstream: bench/simulator.py, streams of "
        f"{STREAM_CHUNKS + 1} chunks.",
        "",
        f"    {meta['command']}",
    ]
    goals = []
    for mode, rows in cells.items():
        lines += [
            "",
            f"| {mode} | CPU p50 ms | CPU mean ms | added CPU, paired median ms | added CPU, mean ms | wall p50 ms | added wall p50 ms |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, row in rows.items():
            added = "reference | – " if name == REFERENCE else f"{row['added_cpu_paired_median']:+.3f} | {row['added_cpu_mean']:+.3f}"
            wall_added = "–" if name == REFERENCE else f"{row['added_wall_p50']:+.3f}"
            lines.append(f"| {name} | {row['cpu_p50']:.3f} | {row['cpu_mean']:.3f} | {added} | {row['wall_p50']:.3f} | {wall_added} |")
            if row["goal"]:
                ok = run.ok(row["added_wall_p50"] < GOAL_ADDED_P50_MS)
                goals.append(
                    f"- {ok} {name}, {mode}: adds {row['added_wall_p50']:+.3f} ms at p50 in-process, "
                    f"{row['added_cpu_paired_median']:+.3f} ms of CPU (goal < {GOAL_ADDED_P50_MS} ms)"
                )
    return "\n".join([*lines, "", *goals])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests a route and mode")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up requests a route and mode")
    args = parser.parse_args()
    command = " ".join([".venv/bin/python bench/protocol_cpu.py", *sys.argv[1:]])
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    warnings.filterwarnings("ignore", message="No directory at")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from city.identity import ADMIN_IDENTITY
    from studios import operations

    port = free_port()
    argv = [
        sys.executable,
        str(ROOT / "bench" / "simulator.py"),
        "--port",
        str(port),
        "--chunks",
        str(STREAM_CHUNKS),
        "--chunk-interval-ms",
        "0",
    ]
    simulator = subprocess.Popen(argv)
    os.environ.update(upstream_env(f"http://127.0.0.1:{port}"))
    try:
        studio = operations.create_studio("Protocol CPU", actor=ADMIN_IDENTITY)
        token = operations.issue_token(studio.id, "bench", expires_at=None, actor=ADMIN_IDENTITY)[1]
        from city.asgi import application

        async def measured() -> dict[str, dict[str, dict[str, Any]]]:
            reference = protocols()[0]
            body = json.dumps(reference.body(False)).encode()
            deadline = time.monotonic() + 30
            while (await one(application, reference, body, token))[0] != 200:  # the simulator is starting
                if time.monotonic() > deadline:
                    raise RuntimeError("City did not answer 200 within 30 s")
                await asyncio.sleep(0.2)
            cells = {}
            for stream in (False, True):
                cells["streamed" if stream else "whole"] = await measure(application, token, stream, args.requests, args.warmup)
            return cells

        import uvloop

        cells = uvloop.run(measured())
        meta = {
            **run.run_meta(command, load_before),
            "requests": args.requests,
            "warmup": args.warmup,
        }
        run.VAR.mkdir(parents=True, exist_ok=True)
        run.save_report("protocol_cpu", report(cells, meta), {"meta": meta, "cells": cells})
    finally:
        simulator.terminate()
        simulator.wait(10)


if __name__ == "__main__":
    main()
