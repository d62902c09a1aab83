"""Refunds: a video job the upstream accepted (and City billed) that ends failed is given back, once.

A refund is a usage record of the job's call made negative (units and cost), with its own call id
(the job's + ":refund"), the job's route and modality, and status 200 with error code "refunded";
written at once, not through the writer's queue, so that it is durable before the ledger is told.
It gives back what the call was billed: its usage record's cost and units when that is written
(a create whose process died is billed by the ledger's reaper, at its worst case), else the job's
own (the settle of a create that heard the upstream's answer, its record still in the writer's
queue). It is dated as the call was, so it lands in the month (and the hour's rollups) the charge did:
that month's spend goes back to what it was without the job, and never below it.
Then the ledger lowers that month's spend on each scope the call counted on (the studio, and the
token when there was one): Redis in one script, once per refund id; embedded, in process. Both
survive a restart, since a budget counter rebuilt from the usage records (aihub/spend.py) reads the
negative record too.

That a refund happens once across processes is the caller's claim on the job row (aihub/video_jobs.py);
the record (unique call id) and the Redis script (a marker) are idempotent besides, so a retry after a
lost answer changes nothing.
"""

import logging
from datetime import datetime

from asgiref.sync import sync_to_async

from aihub import ledger
from aihub.metering import REFUNDED, insert_records
from aihub.models import UsageRecord
from aihub.models_video import VideoJob
from studios.spend import month_key

log = logging.getLogger("aihub.refunds")

REFUND_SUFFIX = ":refund"


def refund_record(job: VideoJob, when: datetime, cost: int, units: int) -> dict[str, object]:
    """The usage record of `job`'s refund: its call's `cost` and `units`, negated, dated `when` (the call's)."""
    return {
        "created_at": when,
        "call_id": job.call_id + REFUND_SUFFIX,
        "studio_id": job.studio_id,
        "token_id": job.token_id,
        "account_id": job.account_id,
        "request_id": job.request_id,
        "model": job.model,
        "provider": job.provider,
        "modality": "video",
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "usage_estimated": False,
        "cost": -cost,
        "latency_ms": 0,
        "ttft_ms": None,
        "status": 200,
        "error_code": REFUNDED,
        "route": job.route,
        "deployment": job.upstream_model[:200],
        "streamed": False,
        "cancelled": False,
        "cached_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "unit": "seconds",
        "units": -units,
    }


async def refund(job: VideoJob) -> bool:
    """Write the refund's record, then lower the charge's month's spend; True once the ledger has it too
    (False: the call's billing is not known yet, or Redis did not answer; a later poll of the job tries
    again, and changes nothing twice)."""
    charged = await UsageRecord.objects.filter(call_id=job.call_id).values("cost", "units", "created_at").afirst()
    if charged is not None:
        cost, units, when = charged["cost"], charged["units"], charged["created_at"]
    elif job.upstream_id:
        cost, units, when = job.cost, job.seconds, job.created_at
    else:
        return False  # a create that died mid-way: its call is billed by the reaper, then refunded
    if cost <= 0:
        return True  # billed nothing: nothing to give back
    record = refund_record(job, when, cost, units)
    await sync_to_async(insert_records)([record])
    scopes = [("studio", job.studio_id)]
    if job.token_id:
        scopes.append(("token", job.token_id))
    try:
        await ledger.refund(str(record["call_id"]), job.studio_id, scopes, month_key(when), cost)
    except Exception as exc:  # RedisDown, or anything else: the record stands; the spend is lowered on a later try
        log.warning("could not lower the month's spend for the refund of %s yet: %s", job.call_id, type(exc).__name__)
        return False
    return True
