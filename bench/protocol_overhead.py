"""What the Responses API and the Messages API add over chat completions, on the same upstream, in one run.

    .venv/bin/python bench/protocol_overhead.py              # SQLite, 1,000 requests a route and mode, about 1 minute
    DATABASE_URL=postgres://…/bench REDIS_URL=redis://…/5 .venv/bin/python bench/protocol_overhead.py
    … --quick                                                # 50 requests a route and mode: a smoke run

All on 127.0.0.1: the benchmark's lean OpenAI-compatible upstream (bench/simulator.py; streams of 21
chunks sent at once) and City as `make serve-prod` runs it (uvicorn, uvloop, httptools; --workers 1
by default) on a fresh database, `deepseek-v4-flash` pointed at the simulator with `env/upsert`
(DeepSeek speaks chat completions only, so City translates the other protocols for it; OpenAI's own
deployments get the Responses API as it is). The same question is asked in each protocol City
speaks, with `max_tokens` 50:

- `POST /v1/chat/completions`: the reference, City's path with no translation;
- `POST /v1/responses` with `store: false`: translated to a chat body and the answer back to a response;
- `POST /v1/responses` stored (the API's default): the same, plus the stored response's database row;
- `POST /v1/messages` (Anthropic's Messages API): translated to a chat body and back to a message.

Every answer is checked (its text, and a stream's closing event). Each route is sent --requests
times answered whole and --requests times streamed, sequentially, one kept-alive connection per
route, interleaved request by request (each round in a shuffled order) so that all see the
machine's load of the moment, and none always follows the same route: a stored response's write ends
after its answer, and would otherwise always slow the route after it. The report gives each route's p50 / p90 / p99, what it adds
over chat completions at p50 and p99, the median of the rounds' paired differences, and City's CPU
per request (the City process's CPU time around each request, summed per route). Goal (issue 11):
translation adds under 0.3 ms at p50. It writes var/bench/protocols.md and protocols.json, and stops
every process it started (also on failure, Ctrl-C or after --max-minutes).
"""

import json
import os
import random
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import procs  # noqa: E402
import run  # noqa: E402
from media_overhead import Client, summary  # noqa: E402
from simulator import COMPLETION_TEXT  # noqa: E402

MODEL = "deepseek-v4-flash"  # priced (the reservation does real arithmetic), on a provider that speaks chat only
QUESTION = "Say hello to the benchmark."
UPSTREAM_KEY = "sk-bench-deepseek-not-secret"
STREAM_CHUNKS = 20  # the simulator's chunks after the first
GOAL_ADDED_P50_MS = 0.3
REFERENCE = "chat/completions"


def upstream_env(url: str) -> dict[str, str]:
    """The env that points MODEL's provider at the simulator."""
    return {"DEEPSEEK_API_KEY": UPSTREAM_KEY, "DEEPSEEK_BASE_URL": url}


@dataclass
class Protocol:
    name: str  # as the report names it
    path: str
    body: Callable[[bool], dict[str, Any]]  # the request, streamed or not
    check: Callable[[bytes, bool], str | None]  # a problem with City's answer, or None
    goal: bool = True  # the translation goal applies


def _problem(answer: bytes, stream: bool, whole: Callable[[Any], bool], last_event: bytes) -> str | None:
    """None when a whole answer passes `whole`, or when a stream ends with `last_event` having carried text."""
    try:
        if stream:
            good = last_event in answer[-2000:] and b"tok " in answer
        else:
            good = whole(json.loads(answer))
    except (ValueError, LookupError, TypeError):
        good = False
    return None if good else f"unexpected answer: {answer[:300]!r} … {answer[-300:]!r}"


def protocols() -> list[Protocol]:
    def chat(stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 50}
        # Usage in the stream, as the Responses and Messages streams always carry it.
        return body | {"stream": True, "stream_options": {"include_usage": True}} if stream else body

    def responses(store: bool) -> Callable[[bool], dict[str, Any]]:
        def body(stream: bool) -> dict[str, Any]:
            request: dict[str, Any] = {"model": MODEL, "input": QUESTION, "max_output_tokens": 50}
            if not store:
                request["store"] = False
            return request | {"stream": True} if stream else request

        return body

    def messages(stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": QUESTION}]}
        return body | {"stream": True} if stream else body

    def response_text(answer: Any) -> str:
        return "".join(part["text"] for item in answer["output"] if item["type"] == "message" for part in item["content"])

    return [
        Protocol(
            REFERENCE,
            "/v1/chat/completions",
            chat,
            lambda a, s: _problem(a, s, lambda r: r["choices"][0]["message"]["content"] == COMPLETION_TEXT, b"data: [DONE]"),
        ),
        Protocol(
            "responses, store: false",
            "/v1/responses",
            responses(store=False),
            lambda a, s: _problem(a, s, lambda r: response_text(r) == COMPLETION_TEXT, b"response.completed"),
        ),
        Protocol(
            "responses, stored",
            "/v1/responses",
            responses(store=True),
            lambda a, s: _problem(
                a, s, lambda r: response_text(r) == COMPLETION_TEXT and r["id"].startswith("resp_"), b"response.completed"
            ),
            goal=False,  # storing is a database write, not translation
        ),
        Protocol(
            "messages",
            "/v1/messages",
            messages,
            lambda a, s: _problem(a, s, lambda r: r["content"][0]["text"] == COMPLETION_TEXT, b"message_stop"),
        ),
    ]


def round_orders(routes: list[Protocol], rounds: int, seed: int = 11) -> list[list[Protocol]]:
    """The routes' order in each round, shuffled (the same every run): each route goes first, last and
    after each other route about as often, so that what one leaves behind (a stored response's write
    finishing after its answer) is not charged to one other route."""
    shuffler = random.Random(seed)
    orders = []
    for _ in range(rounds):
        order = list(routes)
        shuffler.shuffle(order)
        orders.append(order)
    return orders


# --- numbers --------------------------------------------------------------------------------------


def added(reference: Sequence[float], route: Sequence[float]) -> dict[str, Any]:
    """The route's percentiles, what it adds over the reference at p50 and p99, and the median of the
    rounds' paired differences (the two were measured one right after the other)."""
    r, c = summary(reference), summary(route)
    return {
        "route": c,
        "added_p50": c["p50"] - r["p50"],
        "added_p99": c["p99"] - r["p99"],
        "added_paired_median": statistics.median(b - a for a, b in zip(reference, route, strict=True)),
    }


def report(cells: dict[str, dict[str, dict[str, Any]]], meta: dict[str, Any]) -> str:
    """A table per mode (whole, streamed): a row per protocol, and the goal checked for those it applies to."""
    lines = [
        f"Commit {meta['commit']}; City: {meta['city']}; {meta['database']}; {meta['cpus']} CPUs, Python {meta['python']}; "
        f"load average {meta['load_before']} before, {meta['load_after']} after; {meta['requests']} requests a route and mode "
        f"after {meta['warmup']} of warm-up, sequential, interleaved; upstream: bench/simulator.py, latency 0, "
        f"streams of {STREAM_CHUNKS + 1} chunks; model {MODEL}.",
        "",
        f"    {meta['command']}",
    ]
    goals = []
    for mode, rows in cells.items():
        lines += [
            "",
            f"| {mode} | p50 / p90 / p99 ms | added p50 ms | added p99 ms | added, paired median ms | City CPU ms/request |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, row in rows.items():
            s = row["route"]
            added_ms = (
                "reference | – | –"
                if name == REFERENCE
                else f"{row['added_p50']:+.2f} | {row['added_p99']:+.2f} | {row['added_paired_median']:+.2f}"
            )
            lines.append(f"| {name} | {s['p50']:.2f} / {s['p90']:.2f} / {s['p99']:.2f} | {added_ms} | {row['cpu_ms_per_request']:.2f} |")
            if row.get("goal"):
                ok = run.ok(row["added_p50"] < GOAL_ADDED_P50_MS)
                goals.append(f"- {ok} {name}, {mode}: adds {row['added_p50']:+.2f} ms at p50 (goal < {GOAL_ADDED_P50_MS} ms)")
    lines += ["", *goals, f"- non-200 answers: 0 (the run stops at the first); tracebacks in City's log: {meta['errors_logged']}"]
    return "\n".join(lines)


# --- the run --------------------------------------------------------------------------------------


def measure(
    routes: list[Protocol], clients: dict[str, Client], stream: bool, pids: list[int], requests: int, warmup: int
) -> dict[str, dict[str, Any]]:
    """Every route `requests` times, interleaved (each round shuffled), after `warmup` rounds."""
    bodies = {p.name: json.dumps(p.body(stream)).encode() for p in routes}
    totals: dict[str, list[float]] = {p.name: [] for p in routes}
    cpu: dict[str, float] = dict.fromkeys(totals, 0.0)
    for index, order in enumerate(round_orders(routes, warmup + requests)):
        for protocol in order:
            cpu_before = sum(procs.cpu_seconds(pid) for pid in pids)
            status, answer, _, total = clients[protocol.name].post(protocol.path, bodies[protocol.name], "application/json")
            problem = f"status {status}: {answer[:500]!r}" if status != 200 else protocol.check(answer, stream) if index == 0 else None
            if problem:
                raise RuntimeError(f"{protocol.name} ({'streamed' if stream else 'whole'}): {problem}")
            if index >= warmup:
                totals[protocol.name].append(total)
                cpu[protocol.name] += sum(procs.cpu_seconds(pid) for pid in pids) - cpu_before
    rows = {}
    for protocol in routes:
        row = added(totals[REFERENCE], totals[protocol.name])
        row.update(cpu_ms_per_request=1000 * cpu[protocol.name] / requests, goal=protocol.goal and protocol.name != REFERENCE)
        row["samples_ms"] = totals[protocol.name]
        rows[protocol.name] = row
        print(
            f"  {'streamed' if stream else 'whole':8s} {protocol.name:24s} p50 {row['route']['p50']:6.2f} ms  p99 {row['route']['p99']:6.2f} ms  "
            f"added p50 {row['added_p50']:+.2f} p99 {row['added_p99']:+.2f} ms  CPU {row['cpu_ms_per_request']:.2f} ms/request",
            flush=True,
        )
    return rows


def main() -> None:
    args = run.counted_args(
        "What /v1/responses and /v1/messages add over /v1/chat/completions (see bench/README.md).", 1000, 100, quick=(50, 10)
    )
    command = " ".join([".venv/bin/python bench/protocol_overhead.py", *sys.argv[1:]])
    run.VAR.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-protocols-"))
    if not args.database_url:
        args.database_url = f"sqlite:///{scratch / 'city.sqlite3'}"
    started: list = []
    procs.stop_after(args.max_minutes)
    try:
        load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"bench: load average {load_before}; preparing {args.database_url.split('@')[-1]}", flush=True)
        run.prepare_database(args)
        port = procs.free_port()
        argv = [
            sys.executable,
            str(BENCH_DIR / "simulator.py"),
            "--port",
            str(port),
            "--chunks",
            str(STREAM_CHUNKS),
            "--chunk-interval-ms",
            "0",
        ]
        simulator = procs.Proc("simulator", argv, env=dict(os.environ), log_dir=run.VAR, cwd=run.ROOT)
        started.append(simulator)
        upstream = f"http://{procs.LOOPBACK}:{port}"
        simulator.wait_ready(f"{upstream}/v1/models")
        city = run.City(args, "uvicorn", args.workers)
        started.append(city)
        for key, value in upstream_env(upstream).items():
            city.admin("POST", "/v1/env/upsert", {"key": key, "value": value})
        studio = city.admin("POST", "/v1/studios/create", {"name": "Bench protocols"})
        token = city.admin("POST", "/v1/studios/tokens/apply", {"studio_id": studio["id"], "name": "bench"})["token"]
        routes = protocols()
        clients = {p.name: Client(city.url, token) for p in routes}
        reference_body = json.dumps(protocols()[0].body(False)).encode()
        run.wait_until_ok(lambda: clients[REFERENCE].post("/v1/chat/completions", reference_body, "application/json")[:2], MODEL)
        cells = {}
        for stream in (False, True):
            cells["streamed" if stream else "whole"] = measure(routes, clients, stream, city.pids(), args.requests, args.warmup)
        for client in clients.values():
            client.close()
        meta = {
            **run.run_meta(command, load_before, args),
            "requests": args.requests,
            "warmup": args.warmup,
            "errors_logged": city.errors_logged(),
        }
        table = report(cells, meta)
        run.save_report("protocols", table, {"meta": meta, "cells": cells})
    finally:
        procs.stop_all(started)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
