"""Refunds: a video job the upstream accepted (and City billed) that ends failed is given back, once.

A refund is a usage record of the job's call made negative (units and cost), with its own call id
(the job's + ":refund"), the job's route and modality, and status 200 with error code "refunded";
written at once, not through the writer's queue, so that it is durable before the ledger is told.
Then the ledger lowers this month's spend on each scope the call counted on (the studio, and the
token when there was one): Redis in one script, once per refund id; embedded, in process. Both
survive a restart, since a budget counter rebuilt from the usage records (aihub/spend.py) reads the
negative record too. The refund lands in the month it is made: a job billed on the last day of a
month and failed on the first of the next is refunded in the new month.

That a refund happens once across processes is the caller's claim on the job row (aihub/video_jobs.py);
the record (unique call id) and the Redis script (a marker) are idempotent besides, so a retry after a
lost answer changes nothing.
"""

import logging
from datetime import datetime

from asgiref.sync import sync_to_async

from aihub import ledger
from aihub.metering import insert_records
from aihub.models_video import VideoJob
from studios.spend import month_key

log = logging.getLogger("aihub.refunds")

REFUND_SUFFIX = ":refund"


def refund_record(job: VideoJob, when: datetime) -> dict[str, object]:
    """The usage record of `job`'s refund: its call, negated."""
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
        "cost": -job.cost,
        "latency_ms": 0,
        "ttft_ms": None,
        "status": 200,
        "error_code": "refunded",
        "route": job.route,
        "deployment": job.upstream_model[:200],
        "streamed": False,
        "cancelled": False,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "unit": "seconds",
        "units": -job.seconds,
    }


async def refund(job: VideoJob, when: datetime) -> bool:
    """Write the refund's record (dated `when`: the failure, so that a retry counts in the same month),
    then lower that month's spend; True once the ledger has it too (False: Redis did not answer, and a
    later poll of the job tries the ledger again)."""
    record = refund_record(job, when)
    await sync_to_async(insert_records)([record])
    scopes = [("studio", job.studio_id)]
    if job.token_id:
        scopes.append(("token", job.token_id))
    if not job.cost:
        return True
    try:
        await ledger.refund(str(record["call_id"]), job.studio_id, scopes, month_key(when), job.cost)
    except Exception as exc:  # RedisDown, or anything else: the record stands; the spend is lowered on a later try
        log.warning("could not lower the month's spend for the refund of %s yet: %s", job.call_id, type(exc).__name__)
        return False
    return True
