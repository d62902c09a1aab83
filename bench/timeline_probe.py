"""The per-request timeline probe, loaded into each City process by bench/timeline.py (not by City).

    uvicorn --app-dir bench timeline_probe:application …     # what timeline.py runs

It serves `city.asgi.application` unchanged and records, with `time.perf_counter_ns()` (the same
monotonic clock in every process of the machine):

- each request: when the server called the app, when the response started and when its last byte
  went out, the process's CPU time over it, and its id (a context variable that follows it into
  Django's sync threads);
- every garbage collection (`gc.callbacks`): generation, start, end;
- the event loop's lag: a thread asks the loop to run a callback every LAG_SAMPLE_MS and records how
  late it ran (a callback runs late only while the loop is busy or cannot get the GIL);
- each database query (Django's `execute_wrapper`, on every connection as it is made): thread, the
  statement's first words, start, end, and the request it served, if any;
- each Redis command or pipeline (redis.asyncio's `execute_command` and `Pipeline.execute`, the
  library's methods wrapped here, not City's);
- each job on City's sync threads (`city.apiapp.RequestThread.submit`): when it was submitted, began
  and ended: the wait for a busy thread shows as the gap;
- each upstream HTTP request (aiohttp's `ClientSession._request`): start and end.

On SIGUSR1 the process writes everything to $CITY_TIMELINE_DIR/<pid>.json and starts afresh (the
driver sends it after each load cell). Nothing here is imported by City or its tests.
"""

import asyncio
import contextvars
import gc
import itertools
import os
import signal
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import orjson

from city.asgi import application as city_application

LAG_SAMPLE_MS = 2.0
OUT = Path(os.environ.get("CITY_TIMELINE_DIR", "var/bench/timeline"))

now = time.perf_counter_ns
request_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("timeline_request", default=None)
_ids = itertools.count(1)
requests: list[dict[str, Any]] = []
events: list[tuple] = []  # (kind, start_ns, end_ns, request id or None, thread name, detail)


def event(kind: str, start: int, end: int, detail: str = "") -> None:
    events.append((kind, start, end, request_id.get(), threading.current_thread().name, detail))


# --- event-loop lag -------------------------------------------------------------------------------


def _lag_sampler(loop: asyncio.AbstractEventLoop) -> None:
    def ran(asked: int) -> None:
        late = now() - asked
        if late > 200_000:  # keep only lags over 0.2 ms: the rest is the loop's ordinary turn
            events.append(("loop_lag", asked, now(), None, "loop", ""))

    while not loop.is_closed():
        loop.call_soon_threadsafe(ran, now())
        time.sleep(LAG_SAMPLE_MS / 1000)


_sampler_started = threading.Lock()


def _start_lag_sampler() -> None:
    if _sampler_started.acquire(blocking=False):
        threading.Thread(target=_lag_sampler, args=(asyncio.get_running_loop(),), name="timeline-lag", daemon=True).start()


async def application(scope: dict, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        await city_application(scope, receive, send)
        return
    _start_lag_sampler()
    rid = next(_ids)
    token = request_id.set(rid)
    record: dict[str, Any] = {"id": rid, "path": scope["path"], "start": now(), "cpu_start": time.process_time_ns()}

    async def timed_send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            record["status"] = message["status"]
            record["response_start"] = now()
        elif message["type"] == "http.response.body" and message.get("body") and "first_body" not in record:
            record["first_body"] = now()
        await send(message)

    try:
        await city_application(scope, receive, timed_send)
    finally:
        record["end"] = now()
        record["cpu_ns"] = time.process_time_ns() - record.pop("cpu_start")
        requests.append(record)
        request_id.reset(token)


# --- garbage collection ---------------------------------------------------------------------------

_gc_started = [0]


def _gc_callback(phase: str, info: dict) -> None:
    if phase == "start":
        _gc_started[0] = now()
    else:
        events.append(("gc", _gc_started[0], now(), None, threading.current_thread().name, f"gen{info['generation']}"))


gc.callbacks.append(_gc_callback)


# --- the database ---------------------------------------------------------------------------------


def _db_wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    start = now()
    try:
        return execute(sql, params, many, context)
    finally:
        words = " ".join(sql.split()[:4])[:60]
        event("db", start, now(), f"{'many ' if many else ''}{words}")


def _on_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    connection.execute_wrappers.append(_db_wrapper)


from django.db.backends.signals import connection_created  # noqa: E402

connection_created.connect(_on_connection)


# --- Redis, City's sync threads, upstream HTTP ------------------------------------------------------


def _timed_async(cls: type, name: str, kind: str, detail: Any) -> None:
    original = getattr(cls, name)

    async def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = now()
        try:
            return await original(self, *args, **kwargs)
        finally:
            event(kind, start, now(), detail(self, args))

    setattr(cls, name, timed)


import aiohttp  # noqa: E402
import redis.asyncio.client  # noqa: E402

_timed_async(redis.asyncio.client.Redis, "execute_command", "redis", lambda self, args: str(args[0]) if args else "")
_timed_async(redis.asyncio.client.Pipeline, "execute", "redis", lambda self, args: f"pipeline of {len(self.command_stack)}")
_timed_async(aiohttp.ClientSession, "_request", "upstream", lambda self, args: str(args[1])[-40:] if len(args) > 1 else "")

from city.apiapp import RequestThread  # noqa: E402

_submit = RequestThread.submit


def _timed_submit(self: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    submitted = now()
    rid = request_id.get()

    def job(*a: Any, **k: Any) -> Any:
        began = now()
        try:
            return fn(*a, **k)
        finally:
            events.append(("sync_wait", submitted, began, rid, threading.current_thread().name, ""))
            events.append(("sync_job", began, now(), rid, threading.current_thread().name, getattr(fn, "__qualname__", "")[:60]))

    return _submit(self, job, *args, **kwargs)


RequestThread.submit = _timed_submit  # type: ignore[method-assign]


# --- the dump ---------------------------------------------------------------------------------------


def _dump(signum: int, frame: Any) -> None:
    global requests, events
    taken_requests, taken_events = requests, events
    requests, events = [], []
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{os.getpid()}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps({"pid": os.getpid(), "requests": taken_requests, "events": taken_events}))
    tmp.rename(path)


signal.signal(signal.SIGUSR1, _dump)
