"""Where City spends a streamed chat completion's time before its first byte, in-process.

    .venv/bin/python bench/stream_profile.py [--requests 2000] [--profile]

City's ASGI application is called directly (no server, no client socket) with a user token, for
`POST /v1/chat/completions` with `"stream": true` against `bench/simulator.py` (a subprocess on
127.0.0.1, as in `make bench`), which sends the first chunk and, at once, the last. It prints,
per request: the time from the call to the first body byte City sends, the whole request, and
CPU time, next to the same for the upstream alone (an aiohttp client straight to the simulator).
`--profile` adds a cProfile of the City requests, sorted by own time.
"""

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VAR = Path(tempfile.mkdtemp(prefix="city-stream-profile-"))
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "city.settings",
        "ADMIN_SECRET_KEY": "bench-admin-key-not-secret-0123456789",
        "CITY_SECRET_KEY": "bench-city-key-not-secret-0123456789",
        "CITY_LOG_LEVEL": "WARNING",
        "CITY_DEBUG": "false",
        "DATABASE_URL": f"sqlite:///{VAR / 'city.sqlite3'}",
    }
)
os.environ.pop("REDIS_URL", None)

from bench.handler import one as call  # noqa: E402  (after the environment is set)
from bench.handler import scope as asgi_scope  # noqa: E402
from bench.procs import free_port  # noqa: E402
from bench.simulator import SHORT_STREAM_MARK  # noqa: E402

BODY = b'{"model": "local-chat", "stream": true, "messages": [{"role": "user", "content": "' + SHORT_STREAM_MARK + b' Say hello."}]}'


def scope(token: str) -> dict:
    headers = (
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
        (b"authorization", f"Bearer {token}".encode()),
    )
    return asgi_scope("/v1/chat/completions", "POST", headers)


async def one(app, request_scope: dict) -> tuple[float, float]:
    """Seconds to the first body byte and to the end of one streamed request."""
    status, first, total = await call(app, request_scope, BODY)
    if status != 200:
        raise RuntimeError(f"City answered {status}")
    return first, total


async def direct(session, url: str) -> tuple[float, float]:
    started = time.perf_counter()
    first = 0.0
    async with session.post(
        url, data=BODY.replace(b"local-chat", b"bench-model"), headers={"Content-Type": "application/json"}
    ) as response:
        async for _ in response.content.iter_any():
            first = first or time.perf_counter()
    return first - started, time.perf_counter() - started


def report(name: str, timings: list[tuple[float, float]], cpu_s: float) -> None:
    ttfb = statistics.median(t[0] for t in timings) * 1e3
    total = statistics.median(t[1] for t in timings) * 1e3
    print(f"  {name:8s} first byte p50 {ttfb:6.3f} ms   whole p50 {total:6.3f} ms   CPU {cpu_s / len(timings) * 1e3:6.3f} ms/request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--pause-ms", type=float, default=0.0, help="idle time between two requests (an idle server)")
    args = parser.parse_args()

    import warnings

    warnings.filterwarnings("ignore", message="No directory at")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from city.identity import ADMIN_IDENTITY
    from studios import operations

    port = free_port()
    simulator = subprocess.Popen([sys.executable, str(ROOT / "bench" / "simulator.py"), "--port", str(port)])
    os.environ["LOCAL_OPENAI_BASE_URL"] = f"http://127.0.0.1:{port}/v1"
    os.environ["LOCAL_OPENAI_MODEL"] = "bench-model"
    try:
        studio = operations.create_studio("Profile", actor=ADMIN_IDENTITY)
        token = operations.issue_token(studio.id, "profile", expires_at=None, actor=ADMIN_IDENTITY)[1]
        from city.asgi import application

        async def run() -> None:
            import aiohttp

            request_scope = scope(token)
            deadline = time.monotonic() + 30
            while True:  # the simulator is starting (slowly on a busy machine)
                try:
                    await one(application, request_scope)
                    break
                except (RuntimeError, OSError):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
            for _ in range(200):
                await one(application, request_scope)
            async with aiohttp.ClientSession() as session:
                url = f"http://127.0.0.1:{port}/v1/chat/completions"
                for _ in range(200):
                    await direct(session, url)
                cpu = time.process_time()
                timings = []
                for _ in range(args.requests):
                    timings.append(await direct(session, url))
                    await asyncio.sleep(args.pause_ms / 1e3)
                report("direct", timings, time.process_time() - cpu)
            profiler = cProfile.Profile() if args.profile else None
            cpu = time.process_time()
            if profiler:
                profiler.enable()
            timings = []
            for _ in range(args.requests):
                timings.append(await one(application, request_scope))
                await asyncio.sleep(args.pause_ms / 1e3)
            if profiler:
                profiler.disable()
            report("City", timings, time.process_time() - cpu)
            if profiler:
                pstats.Stats(profiler).sort_stats("tottime").print_stats(40)

        print(f"streamed chat completions in-process, {args.requests} each; load average {os.getloadavg()[0]:.2f}")
        import uvloop

        uvloop.run(run())
    finally:
        simulator.terminate()
        simulator.wait(10)


if __name__ == "__main__":
    main()
