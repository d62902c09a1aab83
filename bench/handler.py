"""City's ASGI overhead in-process: Django's stock ASGI handler (full MIDDLEWARE) vs City's /v1/ app.

    .venv/bin/python bench/handler.py [--requests 3000]

No server and no socket: each request is one call of the ASGI application, so what is measured is
the handler itself. The route is `GET /v1/services` (no database), through

- `stock`: `django.core.asgi.get_asgi_application()`, settings.MIDDLEWARE (sessions, CSRF, auth,
  messages… each hook a hop to a thread) and a new thread per request (ThreadSensitiveContext);
- `City`: `city.asgi.application`, which routes /v1/ to city/apiapp.py's ApiApp.

It prints wall-clock and CPU time per request (CPU of every thread of this process).
"""

import argparse
import asyncio
import os
import time

import in_process

ROOT = in_process.configure()
os.environ.setdefault("CITY_LOG_LEVEL", "WARNING")


def scope(path: str, method: str = "GET", headers: tuple[tuple[bytes, bytes], ...] = ()) -> dict:
    """An HTTP request's ASGI scope for 127.0.0.1, with `headers` after the Host header."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }


async def one(app, request_scope: dict, body: bytes = b"") -> tuple[int, float, float]:
    """One request: (status, seconds to the first body byte, seconds to the end).

    The disconnect arrives only after the response, as from a keep-alive client.
    """
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    done = asyncio.Event()
    status, first = 0, 0.0

    async def receive() -> dict:
        if incoming:
            return incoming.pop()
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal status, first
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message.get("body") and not first:
            first = time.perf_counter()

    started = time.perf_counter()
    await app(request_scope, receive, send)
    ended = time.perf_counter()
    done.set()
    return status, first - started, ended - started


async def measure(app, requests: int) -> tuple[float, float]:
    request_scope = scope("/v1/services")
    for _ in range(200):  # warm-up
        assert (await one(app, request_scope))[0] == 200
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(requests):
        await one(app, request_scope)
    return (time.perf_counter() - wall) / requests * 1e6, (time.process_time() - cpu) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    import warnings

    warnings.filterwarnings("ignore", message="No directory at")  # servestatic, before collectstatic
    from django.core.asgi import get_asgi_application

    stock = get_asgi_application()
    from city.asgi import application

    async def run() -> None:
        print(f"GET /v1/services in-process, {args.requests} requests each; load average {os.getloadavg()[0]:.2f}")
        for name, app in (("stock Django ASGI handler", stock), ("City (city.asgi)", application)):
            wall, cpu = await measure(app, args.requests)
            print(f"  {name:28s} {wall:8.0f} µs wall  {cpu:8.0f} µs CPU per request")

    try:
        import uvloop
    except ImportError:
        asyncio.run(run())
    else:
        uvloop.run(run())


if __name__ == "__main__":
    main()
