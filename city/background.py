"""Work a request leaves running after its answer went out, finished before its server process ends.

An app hands such a task to `keep` (the AI hub's settlement of a call, whose reply from the ledger's
Redis is not waited for before the answer). A server stopping gracefully calls `drain` once it has
stopped taking requests and before it ends: uvicorn at the ASGI lifespan's shutdown
(city/invalidation.py answers the lifespan), Daphne before its reactor stops (city/daphne_server.py).
A process that dies instead leaves such work to what covers any crash (the ledger's reaper).
"""

import asyncio
import logging
import time

log = logging.getLogger("city.background")

# How long a stopping server waits for the work still running (a settlement waits at most for Redis's
# socket timeout and its pool, REDIS_TIMEOUT_SECONDS and the ledger's POOL_WAIT_SECONDS).
DRAIN_SECONDS = 15.0

_tasks: set[asyncio.Task[object]] = set()  # also holds them: a task nobody references may be collected


def keep(task: "asyncio.Task[object]") -> None:
    """Hold `task` until it ends, for `drain`."""
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def drain(timeout: float = DRAIN_SECONDS) -> None:
    """Wait until every kept task of this event loop has ended (also those started meanwhile), or `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    while True:
        running = [task for task in _tasks if task.get_loop() is loop and not task.done()]
        left = deadline - time.monotonic()
        if not running:
            return
        if left <= 0:
            log.warning("%d background tasks still running after %.0f s: the process ends without them", len(running), timeout)
            return
        await asyncio.wait(running, timeout=left)
