"""A process that reserves against the ledger's Redis, for the tests that need a second process.

    python -m aihub.tests.ledger_worker '<json>'   (REDIS_URL and DATABASE_URL in the environment)

mode "calls": once `workers` processes are ready, make `calls` calls in `lanes` concurrent lanes
(retrying each 429), counting the calls in flight across processes in Redis (`inflight` now, `peak`
the most ever); "hold": reserve one call, print
"reserved" and wait to be killed.
"""

import asyncio
import json
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "city.settings")
django.setup()

import redis  # noqa: E402

from aihub import ledger  # noqa: E402
from aihub.metering import writer  # noqa: E402
from aihub.tests.ledgers import make_record, make_reservation  # noqa: E402
from city.errors import ApiError  # noqa: E402

COUNT = "local n = redis.call('INCR', KEYS[1]) if n > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], n) end return n"


async def calls(spec: dict) -> None:
    counter = redis.asyncio.Redis.from_url(os.environ["REDIS_URL"])
    await counter.incr(spec["ready"])
    while int(await counter.get(spec["ready"]) or 0) < spec["workers"]:  # start together
        await asyncio.sleep(0.005)

    async def one(i: int) -> None:
        r = make_reservation(spec["studio_id"], f"{spec['prefix']}-{i}", ledger.ScopeLimits(**spec["scope"]))
        while True:
            try:
                await ledger.reserve(r)
                break
            except ApiError as error:
                assert error.status == 429, error.message
                await asyncio.sleep(0.002)
        await counter.eval(COUNT, 2, spec["inflight"], spec["peak"])
        await asyncio.sleep(0.01)
        await counter.decr(spec["inflight"])
        await ledger.settle(r.call_id, r.studio_id, cost=1, tokens=r.tokens, record=make_record(r.studio_id, r.call_id, 1))

    async def lane(start: int) -> None:
        for i in range(start, spec["calls"], spec["lanes"]):
            await one(i)

    await asyncio.gather(*(lane(start) for start in range(spec["lanes"])))
    await counter.aclose()


async def hold(spec: dict) -> None:
    r = make_reservation(spec["studio_id"], spec["call_id"], ledger.ScopeLimits(**spec["scope"]), cost=spec["cost"])
    await ledger.reserve(r)
    print("reserved", flush=True)
    time.sleep(600)


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    asyncio.run(calls(spec) if spec["mode"] == "calls" else hold(spec))
    writer.close()
