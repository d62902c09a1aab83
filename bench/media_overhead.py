"""What City adds to each media route, over calling the upstream directly.

    .venv/bin/python bench/media_overhead.py                 # SQLite, 200 requests a route, about 2 minutes
    DATABASE_URL=postgres://…/bench REDIS_URL=redis://…/5 .venv/bin/python bench/media_overhead.py
    … --quick                                                # 20 requests a route: a smoke run
    … --requests 500

One run, all on 127.0.0.1: OpenAI's loopback simulator (aihub/tests/upstream/openai_sim.py, in this
process, latency 0) and City as `make serve-prod` runs it (uvicorn, uvloop, httptools; --workers 1
by default) on a fresh database (a temporary SQLite file, migrated, or DATABASE_URL / REDIS_URL),
pointed at the simulator with `env/upsert` (OPENAI_API_KEY, OPENAI_BASE_URL) through the admin API;
one studio without a plan, one token. For each route:

- POST /v1/images/generations: gpt-image-1, quality low, 1024x1024 (GPT image models always answer base64);
- POST /v1/audio/speech: tts-1, about 200 characters, mp3 streamed: time to the first body byte and to the last;
- POST /v1/audio/transcriptions: whisper-1, multipart with a 1 MB WAV (made with the `wave` module);
- POST /v1/ai/tts: City's JSON answer (the audio as base64 parts); direct, the same audio/speech call
  City makes upstream;
- and, for reference, POST /v1/chat/completions (gpt-4o-mini, not streamed): City's plainest AI call
  in the same harness;

--warmup requests, then --requests measured ones, sequential on one kept-alive connection each,
interleaved in rounds (direct, City, direct, City …) so that both see the machine's load of the
moment. It reports p50/p90/p99 of each, City's added p50 and p99 (City − direct, and the median of
the rounds' paired differences), and City's server CPU per request (from /proc: the City process's
CPU over the route's measured requests, its background writer included, ÷ requests). It writes
var/bench/media.md and media.json, and stops every process it started (also on failure, Ctrl-C or
after --max-minutes).
"""

import http.client
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(1, str(BENCH_DIR.parent))  # the repository: the upstream simulators

import procs  # noqa: E402
import run  # noqa: E402

UPSTREAM_KEY = "sk-bench-openai-not-secret"
SPEECH_TEXT = (
    "City's media benchmark reads this sentence aloud: a lighthouse keeper counts the ships that pass, "
    "writes their names in a blue book, and at dawn sends the list to the harbour master by bicycle."
)
IMAGE_PROMPT = "A lighthouse on a cliff at dawn, watercolour."
WAV_BYTES = 1_000_000
BOUNDARY = "city-bench-media-boundary-7f3a"


# --- requests -------------------------------------------------------------------------------------


def wav_file(size: int = WAV_BYTES) -> bytes:
    """A `size`-byte WAV (16 kHz, 16-bit, mono) of deterministic noise, written with the `wave` module."""
    frames = (size - 44) // 2
    pattern = bytes((i * 37 + 11) % 256 for i in range(4096))
    samples = (pattern * (2 * frames // len(pattern) + 1))[: 2 * frames]
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(16_000)
        audio.writeframes(samples)
    return out.getvalue()


def multipart(fields: dict[str, str], file_field: str, filename: str, content_type: str, data: bytes) -> bytes:
    lines = []
    for name, value in fields.items():
        lines.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    lines.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    lines.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(lines)


@dataclass
class Route:
    name: str  # City's route, as the report names it
    city_path: str
    direct_path: str  # the simulator's route City calls upstream
    city_body: bytes
    direct_body: bytes
    content_type: str
    check: Callable[[bytes], str | None]  # a problem with City's answer, or None
    direct_check: Callable[[bytes], str | None]  # … with the simulator's
    first_byte: bool = False  # also report the time to the first body byte


def _json_check(test: Callable[[Any], bool], what: str) -> Callable[[bytes], str | None]:
    def check(body: bytes) -> str | None:
        try:
            return None if test(json.loads(body)) else f"not {what}: {body[:200]!r}"
        except (ValueError, LookupError, TypeError):
            return f"not {what}: {body[:200]!r}"

    return check


def _audio_check(body: bytes) -> str | None:
    return None if len(body) > 10_000 and body[:2] == b"\xff\xfb" else f"not mp3 audio: {len(body)} bytes, {body[:20]!r}"


def routes() -> list[Route]:
    image = json.dumps({"model": "gpt-image-1", "prompt": IMAGE_PROMPT, "quality": "low", "size": "1024x1024", "n": 1}).encode()
    speech = json.dumps({"model": "tts-1", "input": SPEECH_TEXT, "voice": "alloy"}).encode()
    image_check = _json_check(lambda a: bool(a["data"][0]["b64_json"]), "an image answer")
    transcript_check = _json_check(lambda a: bool(a["text"]), "a transcription")
    form = multipart({"model": "whisper-1"}, "file", "bench.wav", "audio/wav", wav_file())
    chat = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 50}).encode()
    chat_check = _json_check(lambda a: bool(a["choices"][0]["message"]["content"]), "a chat completion")
    return [
        # Not a media route: the reference, the same harness's figure for City's plainest AI call.
        Route(
            "POST /v1/chat/completions (reference)",
            "/v1/chat/completions",
            "/v1/chat/completions",
            chat,
            chat,
            "application/json",
            chat_check,
            chat_check,
        ),
        Route(
            "POST /v1/images/generations",
            "/v1/images/generations",
            "/v1/images/generations",
            image,
            image,
            "application/json",
            image_check,
            image_check,
        ),
        Route(
            "POST /v1/audio/speech",
            "/v1/audio/speech",
            "/v1/audio/speech",
            speech,
            speech,
            "application/json",
            _audio_check,
            _audio_check,
            True,
        ),
        Route(
            "POST /v1/audio/transcriptions",
            "/v1/audio/transcriptions",
            "/v1/audio/transcriptions",
            form,
            form,
            f"multipart/form-data; boundary={BOUNDARY}",
            transcript_check,
            transcript_check,
        ),
        Route(
            "POST /v1/ai/tts (JSON)",
            "/v1/ai/tts",
            "/v1/audio/speech",
            json.dumps({"model": "tts-1", "text": SPEECH_TEXT}).encode(),
            speech,
            "application/json",
            _json_check(lambda a: len(a["parts"][0]["data"]) > 10_000, "City's tts answer"),
            _audio_check,
        ),
    ]


class Client:
    """One kept-alive HTTP/1.1 connection (http.client: little of the client's own time in the figures)."""

    def __init__(self, url: str, token: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.host, self.port, self.token = host, int(port), token
        self.connection: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes, content_type: str) -> tuple[int, bytes, float, float]:
        """(status, body, ms to the first body byte, ms to the last)."""
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.connection.connect()
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": content_type, "Content-Length": str(len(body))}
        start = time.perf_counter()
        self.connection.request("POST", path, body=body, headers=headers)
        response = self.connection.getresponse()
        first = response.read1(65536)
        first_at = time.perf_counter()
        rest = response.read()
        done = time.perf_counter()
        if response.will_close:
            self.close()
        return response.status, first + rest, 1000 * (first_at - start), 1000 * (done - start)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


# --- numbers --------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100), interpolated between the closest ranks (numpy's default)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p90": percentile(values, 90), "p99": percentile(values, 99)}


def compare(direct: Sequence[float], city: Sequence[float]) -> dict[str, Any]:
    """Both sides' percentiles, City's added p50 and p99 (City − direct), and the median of the rounds' paired differences."""
    d, c = summary(direct), summary(city)
    return {
        "direct": d,
        "city": c,
        "added_p50": c["p50"] - d["p50"],
        "added_p99": c["p99"] - d["p99"],
        "added_paired_median": statistics.median(b - a for a, b in zip(direct, city, strict=True)),
    }


def report(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The markdown table: a row per route (and one more for a route's time to the first byte)."""

    def cells(s: dict[str, float]) -> str:
        return f"{s['p50']:.2f} / {s['p90']:.2f} / {s['p99']:.2f}"

    lines = [
        f"Commit {meta['commit']}; City: {meta['city']}; {meta['database']}; {meta['cpus']} CPUs, Python {meta['python']}; "
        f"load average {meta['load_before']} before, {meta['load_after']} after; {meta['requests']} requests a side and route "
        f"after {meta['warmup']} of warm-up, sequential, interleaved (direct, City, …); upstream: OpenAI's simulator, latency 0.",
        "",
        f"    {meta['command']}",
        "",
        "| route | direct p50 / p90 / p99 ms | City p50 / p90 / p99 ms | added p50 ms | added p99 ms | added, paired median ms | City CPU ms/request |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        for label, key in (("", "total"), (", first byte", "first_byte")):
            if key not in row:
                continue
            m = row[key]
            cpu = f"{row['cpu_ms_per_request']:.2f}" if key == "total" else ""
            lines.append(
                f"| {row['route']}{label} | {cells(m['direct'])} | {cells(m['city'])} | {m['added_p50']:+.2f} | {m['added_p99']:+.2f} | "
                f"{m['added_paired_median']:+.2f} | {cpu} |"
            )
    lines.append("")
    lines.append(
        "Bodies: "
        + "; ".join(f"{row['route']} sends {row['request_bytes']:,} B, gets {row['city_answer_bytes']:,} B from City" for row in rows)
        + "."
    )
    lines.append(f"Non-200 answers: {meta['errors']}; tracebacks in City's log: {meta['errors_logged']}.")
    return "\n".join(lines)


# --- the run --------------------------------------------------------------------------------------


def measure(route: Route, direct: Client, city: Client, city_pids: Callable[[], list[int]], requests: int, warmup: int) -> dict:
    def one(client: Client, path: str, body: bytes) -> tuple[bytes, float, float]:
        status, answer, first, total = client.post(path, body, route.content_type)
        if status != 200:
            raise RuntimeError(f"{route.name} ({'City' if client is city else 'direct'}) answered {status}: {answer[:300]!r}")
        return answer, first, total

    for index in range(warmup):
        direct_answer, *_ = one(direct, route.direct_path, route.direct_body)
        city_answer, *_ = one(city, route.city_path, route.city_body)
        if index == 0:
            for side, problem in (("direct", route.direct_check(direct_answer)), ("City", route.check(city_answer))):
                if problem is not None:
                    raise RuntimeError(f"{route.name} ({side}): {problem}")
    firsts: dict[str, list[float]] = {"direct": [], "city": []}
    totals: dict[str, list[float]] = {"direct": [], "city": []}
    pids = city_pids()
    cpu_before = sum(procs.cpu_seconds(pid) for pid in pids)
    for _ in range(requests):
        _, first, total = one(direct, route.direct_path, route.direct_body)
        firsts["direct"].append(first)
        totals["direct"].append(total)
        city_answer, first, total = one(city, route.city_path, route.city_body)
        firsts["city"].append(first)
        totals["city"].append(total)
    cpu = sum(procs.cpu_seconds(pid) for pid in pids) - cpu_before
    row: dict[str, Any] = {
        "route": route.name,
        "total": compare(totals["direct"], totals["city"]),
        "cpu_ms_per_request": 1000 * cpu / requests,
        "request_bytes": len(route.city_body),
        "city_answer_bytes": len(city_answer),
        "samples": {"direct_ms": totals["direct"], "city_ms": totals["city"]},
    }
    if route.first_byte:
        row["first_byte"] = compare(firsts["direct"], firsts["city"])
        row["samples"].update({"direct_first_byte_ms": firsts["direct"], "city_first_byte_ms": firsts["city"]})
    t, c = row["total"], row["cpu_ms_per_request"]
    print(
        f"  {route.name:40s} direct p50 {t['direct']['p50']:7.2f} ms  City p50 {t['city']['p50']:7.2f} ms  "
        f"added p50 {t['added_p50']:+.2f} p99 {t['added_p99']:+.2f} ms  City CPU {c:.2f} ms/request",
        flush=True,
    )
    return row


def main() -> None:
    args = run.counted_args("What City adds to each media route (see bench/README.md).", 200, 20, quick=(20, 5))
    command = " ".join([".venv/bin/python bench/media_overhead.py", *sys.argv[1:]])
    run.VAR.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-media-"))
    if not args.database_url:
        args.database_url = f"sqlite:///{scratch / 'city.sqlite3'}"
    started: list = []
    procs.stop_after(args.max_minutes)
    try:
        from aihub.tests.upstream.openai_sim import OpenAISim

        load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"bench: load average {load_before}; preparing {args.database_url.split('@')[-1]}", flush=True)
        run.prepare_database(args)
        sim = OpenAISim().start()
        sim.latency_seconds = 0.0
        started.append(sim)
        city = run.City(args, "uvicorn", args.workers)
        started.append(city)
        city.admin("POST", "/v1/env/upsert", {"key": "OPENAI_API_KEY", "value": UPSTREAM_KEY})
        city.admin("POST", "/v1/env/upsert", {"key": "OPENAI_BASE_URL", "value": f"{sim.url}/v1"})
        studio = city.admin("POST", "/v1/studios/create", {"name": "Bench media"})
        token = city.admin("POST", "/v1/studios/tokens/apply", {"studio_id": studio["id"], "name": "bench"})["token"]
        direct, through_city = Client(sim.url, UPSTREAM_KEY), Client(city.url, token)
        rows = []
        for route in routes():
            run.wait_until_ok(lambda route=route: through_city.post(route.city_path, route.city_body, route.content_type)[:2], route.name)
            rows.append(measure(route, direct, through_city, city.pids, args.requests, args.warmup))
            sim.reset()  # its request records, not to hold every upload in memory
        direct.close()
        through_city.close()
        meta = {
            **run.run_meta(command, load_before, args),
            "requests": args.requests,
            "warmup": args.warmup,
            "errors": 0,  # measure() stops the run at the first one
            "errors_logged": city.errors_logged(),
        }
        table = report(rows, meta)
        run.save_report("media", table, {"meta": meta, "rows": rows})
    finally:
        procs.stop_all(started)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
