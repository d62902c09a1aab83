"""Video jobs as any City process sees them: the row (aihub/models_video.py) is the truth, the upstream asked
only when a poll finds the job running and not checked within CHECK_INTERVAL.

A poll (`refresh`):
- running job: claim the check with a conditional UPDATE of `checked_at` (one process in a
  CHECK_INTERVAL asks, the others answer the row as it stands), ask the upstream, write its status
  and progress; when the upstream says completed, claim the download (`fetching_at`), store the
  video in Django's default_storage, and only then mark the job completed, so that a completed job's
  content is always there to serve. A download that fails is released and tried by a later poll
  (a claim older than FETCH_STALE is taken over: its process may have died);
- failed job: claim the refund (`refunded` False → True) and refund it (aihub/refunds.py); if the
  ledger could not be told (Redis away), a later poll retries that step;
- a job whose create never heard the upstream's answer (no upstream id: its process died mid-create)
  is failed once PENDING_STALE has passed, and one still running RUN_LIMIT after its creation is given
  up on; both are refunded what their call was billed.
The upstream work runs in a task of its own, so that a client that leaves mid-poll does not cut a
download or a refund in half. Jobs nobody polls are polled by `manage.py purge_media` (`sweep`).
"""

import asyncio
import logging
import re
import tempfile
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db.models import Q
from django.utils import timezone

from aihub import refunds
from aihub.adapters import adapter_for, pool
from aihub.adapters.base import Adapter, MediaStream, Upstream, UpstreamError
from aihub.catalog import models_by_id
from aihub.models_video import COMPLETED, FAILED, IN_PROGRESS, QUEUED, RUNNING, VideoJob
from aihub.upstreams import resolve
from city.errors import ApiError

log = logging.getLogger("aihub.video")

CHECK_INTERVAL = timedelta(seconds=1)
FETCH_STALE = timedelta(seconds=120)
# A create takes its job's row before it asks the upstream; a row still without an upstream id this
# long after is a create whose process died (far past any create's timeouts and retries).
PENDING_STALE = timedelta(minutes=30)
# A job running this long after its creation is given up on (no video API takes a day to render).
RUN_LIMIT = timedelta(hours=24)
# `sweep` asks the upstream about a running job nobody has polled for this long.
SWEEP_AFTER = timedelta(minutes=10)
# The largest video City stores (a 12-second 1080p clip is tens of MB).
MAX_VIDEO_BYTES = 1024 * 1024 * 1024
SPOOL_BYTES = 8 * 1024 * 1024  # a video larger than this is spooled to a temporary file on its way to storage
MIME_EXTENSIONS = {"video/mp4": "mp4", "video/webm": "webm", "video/quicktime": "mov"}

VIDEO_ID = re.compile(r"^video_[0-9a-z]{26}$")

_running: set[asyncio.Task[Any]] = set()


def epoch(when: Any) -> int | None:
    return int(when.timestamp()) if when is not None else None


def video_object(job: VideoJob) -> dict[str, Any]:
    """The job as OpenAI's video object, City's id in place of the upstream's."""
    return {
        "id": job.id,
        "object": "video",
        "model": job.model,
        "status": job.status,
        "progress": job.progress,
        "created_at": epoch(job.created_at),
        "completed_at": epoch(job.completed_at),
        "expires_at": epoch(job.expires_at),
        "seconds": str(job.seconds),
        "size": job.size,
        "prompt": job.prompt,
        "remixed_from_video_id": None,
        "error": {"code": job.error_code, "message": job.error_message} if job.status == FAILED else None,
    }


def content_url(job: VideoJob) -> str:
    return f"{settings.CITY_PUBLIC_URL}/v1/ai/videos/{job.id}/content"


def city_result(job: VideoJob) -> dict[str, Any]:
    """City's shape: the video object, with the video as a part once it is ready."""
    result = video_object(job)
    result["usage"] = {"seconds": job.seconds}
    if job.status == COMPLETED and not job.purged:
        result["parts"] = [{"type": "video", "url": content_url(job), "mime": job.content_type or "video/mp4"}]
    return result


async def studio_job(studio_id: str, job_id: object) -> VideoJob:
    """The studio's job of that id; 404 for any other (another studio's, deleted, unknown)."""
    if not isinstance(job_id, str) or not job_id:
        raise ApiError(400, "Name the video: id is required.", param="id", code="missing_field")
    job = None
    if VIDEO_ID.match(job_id):  # anything else is no id of City's (and never reaches a query: PostgreSQL refuses NUL)
        job = await VideoJob.objects.filter(pk=job_id, studio_id=studio_id, deleted=False).afirst()
    if job is None:
        raise ApiError(404, f"No video '{job_id[:60]!r}' in this studio.", param="id", code="video_not_found")
    return job


T = TypeVar("T")


async def detached(work: Coroutine[Any, Any, T]) -> T:
    """`work`'s result, the work run to its end even if the caller is cancelled (the client left).

    The caller waits for it even then, and is cancelled only once it is done: the work's database calls
    run on the request's thread (asgiref's ThreadSensitiveContext), which is gone once the request's
    handler returns, so work left running after that would fail at its next query."""
    task = asyncio.ensure_future(work)
    _running.add(task)
    task.add_done_callback(_running.discard)
    left = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                raise
            left = True
    if left:
        raise asyncio.CancelledError
    return result


async def refresh(job: VideoJob) -> VideoJob:
    """The job now, after asking the upstream if it is time to (see the module docstring)."""
    if job.deleted:
        return job
    if job.status in RUNNING or (job.status == FAILED and not job.refund_settled):
        await detached(_refresh(job))
        job = await VideoJob.objects.aget(pk=job.pk)
    return job


async def _refresh(job: VideoJob) -> None:
    now = timezone.now()
    if job.status in RUNNING and not job.upstream_id:
        if job.created_at <= now - PENDING_STALE:
            await _fail(job, "create_lost", "City lost this job while the upstream was asked to start it.", pending=True)
            job = await VideoJob.objects.aget(pk=job.pk)
    elif job.status in RUNNING and job.created_at <= now - RUN_LIMIT:
        await _fail(job, "timed_out", f"The video was not ready {RUN_LIMIT.total_seconds() / 3600:g} hours after it was asked for.")
        job = await VideoJob.objects.aget(pk=job.pk)
    elif job.status in RUNNING and await _claim_check(job):
        await _ask_upstream(job)
        job = await VideoJob.objects.aget(pk=job.pk)
    if job.status == FAILED and not job.refund_settled:
        await _refund_once(job)


async def _claim_check(job: VideoJob, *statuses: str) -> bool:
    now = timezone.now()
    stale = Q(checked_at__isnull=True) | Q(checked_at__lte=now - CHECK_INTERVAL)
    return await VideoJob.objects.filter(stale, pk=job.pk, status__in=statuses or RUNNING).aupdate(checked_at=now) == 1


async def upstream_of(job: VideoJob) -> Upstream | None:
    """The job's upstream, resolved from the runtime env now (None: its model or env is gone)."""
    model = models_by_id().get(job.model)
    if model is None or job.deployment_index >= len(model.deployments):
        return None
    return await resolve(model, model.deployments[job.deployment_index])


async def _ask_upstream(job: VideoJob) -> None:
    upstream = await upstream_of(job)
    if upstream is None:
        log.warning("video job %s cannot be polled: model %s has no callable deployment now", job.id, job.model)
        return
    adapter = adapter_for(upstream)
    try:
        video = await adapter.video_status(upstream, job.upstream_id)
    except UpstreamError as exc:
        if exc.status == 404:
            await _fail(job, "upstream_job_lost", "The upstream no longer knows this video job.")
        else:
            log.warning("polling video job %s failed: %s", job.id, exc.message)
        return
    status = video.get("status")
    if status == FAILED:
        error = video.get("error")
        error = error if isinstance(error, dict) else {}
        await _fail(job, str(error.get("code") or "upstream_error")[:100], str(error.get("message") or "The upstream failed the video."))
    elif status == COMPLETED:
        await _fetch(job, upstream, adapter)
    else:
        progress = video.get("progress")
        progress = max(0, min(99, progress)) if isinstance(progress, int) and not isinstance(progress, bool) else job.progress
        await VideoJob.objects.filter(pk=job.pk, status__in=RUNNING).aupdate(
            status=IN_PROGRESS if status == IN_PROGRESS else QUEUED, progress=max(progress, job.progress)
        )


async def _fail(job: VideoJob, code: str, message: str, pending: bool = False) -> None:
    rows = VideoJob.objects.filter(pk=job.pk, status__in=RUNNING)
    if pending:  # only while its create has still not written the upstream's id
        rows = rows.filter(upstream_id="")
    await rows.aupdate(status=FAILED, error_code=code, error_message=message[:2000], completed_at=timezone.now())


async def _fetch(job: VideoJob, upstream: Upstream, adapter: Adapter) -> None:
    now = timezone.now()
    free = Q(fetching_at__isnull=True) | Q(fetching_at__lte=now - FETCH_STALE)
    if await VideoJob.objects.filter(free, pk=job.pk, status__in=RUNNING).aupdate(fetching_at=now, progress=99) != 1:
        return  # another poll is downloading it
    try:
        stream = await adapter.video_content(upstream, job.upstream_id)
        name, size = await _store(job, stream)
    except (UpstreamError, OSError, VideoTooLarge) as exc:
        log.warning("downloading video job %s failed: %s", job.id, getattr(exc, "message", type(exc).__name__))
        await VideoJob.objects.filter(pk=job.pk, fetching_at=now).aupdate(fetching_at=None)
        return
    stored = timezone.now()
    updated = await VideoJob.objects.filter(pk=job.pk, status__in=RUNNING, deleted=False).aupdate(
        status=COMPLETED,
        progress=100,
        completed_at=stored,
        expires_at=stored + timedelta(hours=settings.CITY_MEDIA_RETENTION_HOURS),
        content_name=name,
        content_type=stream.content_type,
        content_bytes=size,
    )
    if not updated:  # deleted (or failed) meanwhile: the file has no job to serve it
        await sync_to_async(default_storage.delete)(name)


class VideoTooLarge(Exception):
    pass


async def _store(job: VideoJob, stream: MediaStream) -> tuple[str, int]:
    """The video into default_storage under media/video/<studio>/<job>.<ext>: (its name, its size)."""
    extension = MIME_EXTENSIONS.get(stream.content_type.split(";")[0].strip(), "mp4")
    size = 0
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        try:
            async for chunk in stream.chunks:
                size += len(chunk)
                if size > MAX_VIDEO_BYTES:
                    raise VideoTooLarge
                spool.write(chunk)
        finally:
            await stream.chunks.aclose()
        spool.seek(0)
        name = await sync_to_async(default_storage.save)(f"media/video/{job.studio_id}/{job.id}.{extension}", File(spool))
    return name, size


async def _refund_once(job: VideoJob) -> None:
    if not job.refunded:
        if await VideoJob.objects.filter(pk=job.pk, status=FAILED, refunded=False).aupdate(refunded=True) != 1:
            return  # another process refunds it
    elif not await _claim_check(job, FAILED):
        return  # the ledger step of an earlier refund is retried at most once per CHECK_INTERVAL
    if await refunds.refund(job):
        await VideoJob.objects.filter(pk=job.pk).aupdate(refund_settled=True)


async def delete_content(job: VideoJob) -> None:
    if job.content_name:
        await sync_to_async(default_storage.delete)(job.content_name)


def purge_expired(now: Any) -> int:
    """Delete the stored videos whose retention ended by `now` (sync: manage.py purge_media); how many."""
    purged = 0
    for job in VideoJob.objects.filter(expires_at__lte=now, purged=False, deleted=False).exclude(content_name="").iterator():
        default_storage.delete(job.content_name)
        purged += VideoJob.objects.filter(pk=job.pk, purged=False).update(purged=True)
    return purged


def sweep(now: Any) -> int:
    """Poll the jobs nobody polls (sync: manage.py purge_media): running ones not checked for SWEEP_AFTER,
    and failed ones whose refund is not settled, so that each reaches its end and a failed one its
    refund; how many were polled."""
    stale = Q(checked_at__isnull=True) | Q(checked_at__lte=now - SWEEP_AFTER)
    found = Q(status__in=RUNNING) & stale | Q(status=FAILED, refund_settled=False)
    ids = list(VideoJob.objects.filter(found, deleted=False, created_at__lte=now).values_list("pk", flat=True))
    if ids:
        async_to_sync(_sweep)(ids)
    return len(ids)


async def _sweep(ids: list[str]) -> None:
    try:
        for job_id in ids:
            try:
                job = await VideoJob.objects.filter(pk=job_id).afirst()
                if job is not None:
                    await refresh(job)
            except Exception:  # one job's trouble stops no other's
                log.exception("sweeping video job %s failed", job_id)
    finally:
        await pool.close_all()
