"""Prometheus metrics for every City process, one registry however many processes serve.

One process (Daphne, `make run`): prometheus_client's default registry, in memory; nothing to set up.

Several processes (`make serve-prod`: `uvicorn --workers N`): a scrape reaches one worker, which must
answer for all of them. prometheus_client's multiprocess mode does that: with PROMETHEUS_MULTIPROC_DIR
set before prometheus_client is imported, every process writes its values to memory-mapped files in
that directory (one file per process and metric type) and a scrape sums the files. The directory must
be empty when the server starts (a file left from an earlier run would be summed in), so the Makefile
empties it before it starts uvicorn, whose supervisor then spawns the workers with it set. A dead
worker's counters stay in its file, as they should (a total never goes down); its "live" gauges
(reservations outstanding) are dropped at the next scrape (`mark_process_dead`), since what it held
died with it. uvicorn started some other way with --workers and without the variable still serves, but
each worker counts only its own calls: a warning at start says so.

The metrics of the apps are defined in their own modules (aihub/metrics.py); City's own is the count
of /v1 answers by route and status (city/dispatch.py). `CITY_METRICS=off` makes every metric a no-op.
"""

import logging
import multiprocessing
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings

log = logging.getLogger("city.metrics")

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or ""
if MULTIPROC_DIR:
    # prometheus_client opens its files there as the first metric is made; the Makefile creates it,
    # a process started another way may not have.
    Path(MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = MULTIPROC_DIR
else:
    # Set but empty means one process here; prometheus_client would take it as "files in the current directory".
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.pop("prometheus_multiproc_dir", None)

import prometheus_client  # noqa: E402  (reads PROMETHEUS_MULTIPROC_DIR as it is imported)
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess  # noqa: E402

ENABLED: bool = settings.CITY_METRICS

LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def _warn_if_one_worker_of_many() -> None:
    parent = multiprocessing.parent_process()
    if ENABLED and not MULTIPROC_DIR and parent is not None and multiprocessing.current_process().name.startswith("SpawnProcess"):
        log.warning(
            "this process is one of several workers but PROMETHEUS_MULTIPROC_DIR is not set: /metrics shows only the "
            "process that answers the scrape (make serve-prod sets it; see city/metrics.py)"
        )


_warn_if_one_worker_of_many()


class _Off:
    """A metric when CITY_METRICS is off: every call is a no-op."""

    def labels(self, *values: str) -> "_Off":
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def dec(self, amount: float = 1) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass


OFF: Any = _Off()


def counter(name: str, documentation: str, labels: tuple[str, ...]) -> Any:
    return Counter(name, documentation, labels) if ENABLED else OFF


def histogram(name: str, documentation: str, labels: tuple[str, ...], buckets: tuple[float, ...]) -> Any:
    return Histogram(name, documentation, labels, buckets=buckets) if ENABLED else OFF


def live_gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Any:
    """A gauge of what this process holds now; across processes, the sum of the living ones."""
    return Gauge(name, documentation, labels, multiprocess_mode="livesum") if ENABLED else OFF


def cached_labels(metric: Any) -> Callable[..., Any]:
    """`metric.labels(*values)`, memoised: the hot path finds a bound child in a dict instead of
    prometheus_client's validation and lock (label sets are few: routes × models × statuses)."""
    children: dict[tuple[str, ...], Any] = {}

    def child(*values: str) -> Any:
        found = children.get(values)
        if found is None:
            found = children[values] = metric.labels(*values)
        return found

    return child


# /v1 answers by route ("service/action", or "unknown" for a path that names none) and HTTP status.
http_requests = counter("city_http_requests_total", "Answers to /v1 requests, by route and HTTP status.", ("route", "status"))
_http_request = cached_labels(http_requests)


def count_http(route: str, status: int) -> None:
    """One /v1 answer counted; a metric that cannot be written (a full disk, its directory removed)
    is logged, never turned into the answer's failure."""
    try:
        _http_request(route, str(status)).inc()
    except Exception:
        log.exception("could not count a /v1 answer")


def render() -> tuple[bytes, str]:
    """The exposition text of every process's metrics, and its content type."""
    if MULTIPROC_DIR:
        drop_dead_processes(MULTIPROC_DIR)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = prometheus_client.REGISTRY
    return prometheus_client.generate_latest(registry), prometheus_client.CONTENT_TYPE_LATEST


def drop_dead_processes(directory: str) -> None:
    """A worker that died (uvicorn restarts it under a new pid) holds nothing any more: drop its live gauges."""
    pids = {int(m.group(1)) for name in os.listdir(directory) if (m := LIVE_GAUGE_FILE.match(name))}
    for pid in pids:
        if not _alive(pid):
            try:
                multiprocess.mark_process_dead(pid, directory)
            except FileNotFoundError:
                pass  # another worker, answering a scrape at the same moment, removed it first


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
