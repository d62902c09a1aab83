"""The settings of the Python runtime that a server process needs for an even tail latency.

They were found with bench/timeline.py (per-request timelines under load; bench/README.md has the
numbers), and all apply to server processes only (the last of settings.CITY_SERVER_STARTUP, which
city/asgi.py runs once the app is built), not to tests or commands.

**The start-up heap, frozen.** A full (generation 2) collection walks every tracked object of the
process: Django, the catalog, the tokenizer's tables, every module. On a City worker that took about
130 ms, during which no request moved, every few seconds under load: the usage records and
reservations that wait a moment before they are written survive long enough to be promoted and
trigger it. Objects made at start-up live as long as the process, so `gc.freeze()` moves them to a
generation the collector never scans; what requests make is collected as before. A second freeze
after the first requests (`freeze_warm_heap`) takes in what they load once (connections, the
tokenizer's encodings, compiled templates and patterns).

**Young collections less often** (GC_THRESHOLDS), for processes that hold many requests open.

**The GIL handed back sooner.** The usage writer and the ledger keeper are threads: while one runs
Python code, the event loop that wants the GIL back after each socket wait waits up to the switch
interval, 5 ms by default, so a request that crossed a usage-writer batch took three or four such
waits. At SWITCH_INTERVAL_SECONDS the loop waits at most that long; a thread that runs alone never
switches, so this costs nothing when the loop is idle or alone.
"""

import gc
import sys

SWITCH_INTERVAL_SECONDS = 0.0005
# Collections of the youngest generation after this many net allocations: CPython 3.13's default
# (3.11's is 700). With 1,000 streams open, collections took 40% of a worker's CPU at 700: each one
# walks every young object still alive, and an open stream keeps many alive. Larger steps walk them
# less often (7,000 cut that share to 16% in-process, bench/run.py --streams-open); 2,000 keeps each
# young collection short (about 1-2 ms) so that it does not become a tail of its own.
GC_THRESHOLDS = (2000, 10, 10)
WARM_REQUESTS = 2000  # requests after which a worker's lazily built state is in place


_applied = False


def apply_at_start() -> None:
    """Once the app is built: collect what start-up left behind, freeze the rest, and set the switch interval."""
    global _applied
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    _applied = True


def freeze_warm_heap() -> None:
    """Freeze again once the first requests have loaded what a worker loads only once (servers only).
    No collection first: on a warm worker it stalled the loop 50-110 ms (bench/timeline_probe.py);
    frozen without one, the few requests' garbage of the moment is kept for good, once."""
    if _applied:
        gc.freeze()
