"""Video jobs: POST /v1/ai/video and GET /v1/ai/video/result (City's), and /v1/ai/videos (OpenAI's videos resource).

Create `{model, prompt, seconds?, size?, negative_prompt? (Veo), studio_id? (admin)}` as JSON, or
as multipart/form-data with an `input_reference` image (as OpenAI's SDK always sends it). Each
model's `meta` lists the `seconds` and `sizes` it renders (the first is the default); anything else
is a 400 naming the field. A job is admitted through the AI pipeline at seconds × the size's price
and settled at that once the upstream accepted it (the upstream bills what it renders, whether
anyone fetches it); one that then fails is refunded (aihub/refunds.py).

OpenAI's videos resource as the SDK calls it: POST /videos (create), GET /videos (list: `after`,
`limit` 1–100, `order` asc|desc; this studio's jobs, as last polled), GET /videos/{id} (retrieve),
DELETE /videos/{id}, GET /videos/{id}/content?variant=video (the MP4, served by City from its
storage; `thumbnail` and `spritesheet` are 400: City keeps the video only).
"""

import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpResponseBase, StreamingHttpResponse
from django.utils import timezone

from aihub.adapters import adapter_for
from aihub.adapters.base import MediaFile, Upstream
from aihub.catalog_types import VIDEO, Model
from aihub.estimate import worst_media
from aihub.models_video import COMPLETED, QUEUED, RUNNING, VideoJob
from aihub.pipeline import AiCall, admit
from aihub.upstreams import known_model
from aihub.video_jobs import VIDEO_ID, city_result, delete_content, detached, refresh, studio_job, video_object
from city.calls import Call
from city.errors import ApiError
from city.ids import new_id
from city.inputs import PassedOn
from city.registry import USER, Action

log = logging.getLogger("aihub.video")

MAX_PROMPT_CHARS = 10_000
MAX_REFERENCE_BYTES = 20 * 1024 * 1024
REFERENCE_TYPES = ("image/png", "image/jpeg", "image/webp")
CREATE_FIELDS = ("studio_id", "model", "prompt", "seconds", "size", "negative_prompt", "input_reference")
LIST_FIELDS = ("studio_id", "after", "limit", "order")
DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT = 20, 100
OPENAI_DEFAULT_MODEL = "sora-2"  # what OpenAI's API makes when a create names no model
CONTENT_CHUNK_BYTES = 256 * 1024


_STRING, _SECONDS = {"type": "string"}, {"type": ["string", "integer"]}
CREATE_SCHEMA = {
    "model": _STRING,
    "prompt": {"type": "string", "maxLength": MAX_PROMPT_CHARS},
    "seconds": _SECONDS,
    "size": _STRING,
    "negative_prompt": _STRING,
    "studio_id": _STRING,
}
VIDEO_REQUEST = PassedOn(CREATE_SCHEMA, ("model", "prompt"))
RESULT_REQUEST = PassedOn({"id": _STRING, "studio_id": _STRING}, ("id",))
VIDEOS_REQUEST = PassedOn({**CREATE_SCHEMA, "after": _STRING, "limit": {"type": ["string", "integer"]}, "order": _STRING})


# --- create ---------------------------------------------------------------------------------------


def _unknown_fields(data: dict[str, Any], known: tuple[str, ...]) -> None:
    for name in data:
        if name not in known:
            raise ApiError(400, f"{name} is not a field of this route; it takes {', '.join(known)}.", param=name, code="unknown_field")


def _seconds(model: Model, value: object) -> int:
    allowed: list[int] = model.meta["seconds"]
    if value is None or value == "":
        return allowed[0]
    try:
        seconds = int(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    except ValueError:
        seconds = None
    if seconds not in allowed:
        raise ApiError(
            400,
            f"seconds must be one of {', '.join(map(str, allowed))} for '{model.id}' (got {str(value)[:20]!r}).",
            param="seconds",
            code="invalid_value",
        )
    return seconds


def _size(model: Model, value: object) -> str:
    allowed: list[str] = model.meta["sizes"]
    if value is None or value == "":
        return allowed[0]
    if value not in allowed:
        raise ApiError(
            400, f"size must be one of {', '.join(allowed)} for '{model.id}' (got {str(value)[:20]!r}).", param="size", code="invalid_value"
        )
    return str(value)


def _prompt(value: object) -> str:
    if value is None or value == "":
        raise ApiError(400, "prompt is required: describe the video.", param="prompt", code="missing_field")
    if not isinstance(value, str):
        raise ApiError(400, "prompt must be a string.", param="prompt", code="invalid_type")
    if len(value) > MAX_PROMPT_CHARS:
        raise ApiError(
            400, f"prompt is {len(value):,} characters, over the limit of {MAX_PROMPT_CHARS:,}.", param="prompt", code="prompt_too_long"
        )
    return value


def _reference(call: Call) -> MediaFile | None:
    if "input_reference" in call.data:
        raise ApiError(
            400, "input_reference must be an image file sent as multipart/form-data.", param="input_reference", code="invalid_type"
        )
    found: list[UploadedFile] = call.files.get("input_reference", [])
    if not found:
        return None
    upload = found[0]
    content_type = (upload.content_type or "").split(";")[0].strip()
    if content_type not in REFERENCE_TYPES:
        raise ApiError(
            400,
            f"input_reference must be an image ({', '.join(REFERENCE_TYPES)}), not {content_type or 'an unknown type'}.",
            param="input_reference",
            code="unsupported_file_type",
        )
    if (upload.size or 0) > MAX_REFERENCE_BYTES:
        raise ApiError(
            413,
            f"input_reference is {upload.size:,} bytes, over the limit of {MAX_REFERENCE_BYTES:,}.",
            param="input_reference",
            code="file_too_large",
        )
    return MediaFile(upload.name or "reference", upload.read(), content_type)


def create_request(call: Call, default_model: str | None) -> tuple[Model, dict[str, Any], MediaFile | None]:
    """(the model, the OpenAI create body for the adapter, the reference image); 4xx naming the first bad field."""
    data = call.data
    _unknown_fields(data, CREATE_FIELDS)
    model = known_model(data.get("model") or default_model)
    if VIDEO not in model.modalities:
        raise ApiError(400, f"The model '{model.id}' does not make videos.", param="model", code="unsupported_model")
    body: dict[str, Any] = {
        "prompt": _prompt(data.get("prompt")),
        "seconds": _seconds(model, data.get("seconds")),
        "size": _size(model, data.get("size")),
    }
    negative = data.get("negative_prompt")
    if negative is not None:
        if model.deployments[0].adapter != "gemini":
            raise ApiError(400, f"negative_prompt is a Veo parameter; '{model.id}' does not take it.", param="negative_prompt")
        if not isinstance(negative, str) or len(negative) > MAX_PROMPT_CHARS:
            raise ApiError(400, f"negative_prompt must be a string of at most {MAX_PROMPT_CHARS:,} characters.", param="negative_prompt")
        body["negative_prompt"] = negative
    return model, body, _reference(call)


async def start_job(call: Call, default_model: str | None, shape: Callable[[VideoJob], dict[str, Any]]) -> HttpResponseBase:
    model, body, reference = create_request(call, default_model)
    seconds, size = body["seconds"], body["size"]
    price = model.unit_prices.get(size, model.unit_price)
    ai = await admit(call, model.id, needs=(VIDEO,), modality="video", worst_of=lambda m: worst_media(m, seconds, price))
    # Made to its end even if the client leaves: an upstream that accepted renders (and bills) the video,
    # and the studio finds its job in GET /v1/videos.
    return await detached(_create_job(call, ai, model, body, reference, shape))


def _deployment_index(model: Model, upstream: Upstream) -> int:
    found = (i for i, d in enumerate(model.deployments) if d.provider == upstream.provider and d.base_url_env == upstream.base_url_env)
    return next(found, 0)


async def _create_job(
    call: Call, ai: AiCall, model: Model, body: dict[str, Any], reference: MediaFile | None, shape: Callable[[VideoJob], dict[str, Any]]
) -> HttpResponseBase:
    seconds = body["seconds"]
    chosen: list[Upstream] = []

    async def attempt(upstream: Upstream) -> dict[str, Any]:
        chosen[:] = [upstream]
        return await adapter_for(upstream).video_create(upstream, body, reference)

    async with ai:
        meter, identity, first = ai.meter, call.identity, ai.upstreams[0]
        # The row before the upstream is asked: a process that dies once the upstream accepted leaves a
        # job without an upstream id, which is failed and refunded (video_jobs.PENDING_STALE), not a
        # charge (the ledger's reaper bills the dead call) with nothing to show for it.
        job = await VideoJob.objects.acreate(
            id=new_id("video"),
            studio_id=meter.studio_id,
            token_id=identity.token_id,
            account_id=identity.account_id,
            request_id=call.request_id,
            route=call.action.name,
            model=model.id,
            provider=first.provider,
            deployment_index=_deployment_index(model, first),
            upstream_model=first.model,
            base_url_env=first.base_url_env,
            upstream_id="",
            status=QUEUED,
            prompt=body["prompt"],
            seconds=seconds,
            size=body["size"],
            call_id=meter.call_id,
            created_at=meter.created_at,  # the call's: a refund is dated (and lands in the month) as the charge
        )
        try:
            video = await ai.answer(attempt)
        except Exception:
            await VideoJob.objects.filter(pk=job.pk, upstream_id="").adelete()
            raise
        meter.units = seconds  # accepted: the upstream renders (and bills) the whole clip
        upstream = chosen[0]
        status = video.get("status")
        # A job the upstream failed at once is "queued" here: the first poll records the failure and refunds it.
        accepted: dict[str, Any] = {
            "provider": upstream.provider,
            "deployment_index": _deployment_index(model, upstream),
            "upstream_model": upstream.model,
            "base_url_env": upstream.base_url_env,
            "upstream_id": video["id"],
            "status": status if status in RUNNING else QUEUED,
            "cost": meter.record(200)["cost"],
        }
        if not await VideoJob.objects.filter(pk=job.pk, upstream_id="", status=QUEUED).aupdate(**accepted):
            log.warning("video job %s was given up on before its upstream accepted it; it stays failed and refunded", job.id)
            job = await VideoJob.objects.aget(pk=job.pk)
        else:
            for name, value in accepted.items():
                setattr(job, name, value)
        return await ai.respond(shape(job))


# --- handlers -------------------------------------------------------------------------------------


async def video(call: Call) -> HttpResponseBase:
    """POST /v1/ai/video: start a job; City's shape."""
    return await start_job(call, None, city_result)


async def video_result(call: Call) -> dict[str, Any]:
    """GET /v1/ai/video/result?id=…: the job now; with `parts` once completed."""
    _unknown_fields(call.data, ("id", "studio_id"))
    job = await refresh(await studio_job(call.studio_id(), call.data.get("id")))
    return city_result(job)


async def videos(call: Call) -> Any:
    """/v1/ai/videos[/{id}[/content]]: OpenAI's videos resource."""
    method, parts = call.request.method, [p for p in call.subpath.split("/") if p]
    if not parts:
        if method == "POST":
            return await start_job(call, OPENAI_DEFAULT_MODEL, video_object)
        if method == "GET":
            return await _list(call)
    elif len(parts) == 1:
        if method == "GET":
            return video_object(await refresh(await _job(call, parts[0])))
        if method == "DELETE":
            return await _delete(call, parts[0])
    elif len(parts) == 2 and parts[1] == "content" and method == "GET":
        return await _content(call, parts[0])
    raise ApiError(404, f"No such route: {method} /v1/videos/{call.subpath}.", code="unknown_route")


async def _job(call: Call, job_id: str) -> VideoJob:
    _unknown_fields(call.data, ("studio_id", "variant"))
    return await studio_job(call.studio_id(), job_id)


async def _list(call: Call) -> dict[str, Any]:
    _unknown_fields(call.data, LIST_FIELDS)
    limit_raw = call.data.get("limit")
    try:
        limit = DEFAULT_LIST_LIMIT if limit_raw in (None, "") else int(limit_raw)
    except (TypeError, ValueError):
        limit = 0
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise ApiError(400, f"limit must be a whole number from 1 to {MAX_LIST_LIMIT}.", param="limit", code="invalid_value")
    order = call.data.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise ApiError(400, "order must be asc or desc.", param="order", code="invalid_value")
    rows = VideoJob.objects.filter(studio_id=call.studio_id(), deleted=False)
    after = call.data.get("after")
    if after:
        if not isinstance(after, str) or not VIDEO_ID.match(after):
            raise ApiError(400, "after must be a video id (video_…).", param="after", code="invalid_value")
        rows = rows.filter(id__gt=after) if order == "asc" else rows.filter(id__lt=after)
    # Ids are ULIDs: their order is their creation order.
    found = [job async for job in rows.order_by("id" if order == "asc" else "-id")[: limit + 1]]
    data = [video_object(job) for job in found[:limit]]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(found) > limit,
    }


async def _delete(call: Call, job_id: str) -> dict[str, Any]:
    job = await _job(call, job_id)
    if await VideoJob.objects.filter(pk=job.pk, deleted=False).aupdate(deleted=True):
        await delete_content(job)
    return {"id": job.id, "object": "video.deleted", "deleted": True}


async def _content(call: Call, job_id: str) -> HttpResponseBase:
    variant = call.data.get("variant") or "video"
    if variant != "video":
        if variant in ("thumbnail", "spritesheet"):
            raise ApiError(400, f"City keeps the video only, not its {variant}; ask for variant=video.", param="variant")
        raise ApiError(400, "variant must be video, thumbnail or spritesheet.", param="variant", code="invalid_value")
    job = await refresh(await _job(call, job_id))
    if job.purged or (job.expires_at is not None and job.expires_at <= timezone.now()):
        raise ApiError(404, f"The video '{job.id}' expired and was deleted; City keeps videos for a limited time.", code="video_expired")
    if job.status != COMPLETED:
        raise ApiError(
            409, f"The video '{job.id}' is {job.status}; its content is there once it is completed.", code="video_not_ready", param="id"
        )
    try:
        stored = await sync_to_async(default_storage.open)(job.content_name, "rb")
    except FileNotFoundError:  # deleted or purged since the row was read
        raise ApiError(404, f"The video '{job.id}' was deleted or has expired.", param="id", code="video_expired") from None
    response = StreamingHttpResponse(_read(stored), content_type=job.content_type or "video/mp4")
    response["Content-Length"] = str(job.content_bytes)
    return response


async def _read(stored: Any) -> AsyncGenerator[bytes, None]:
    try:
        while chunk := await sync_to_async(stored.read)(CONTENT_CHUNK_BYTES):
            yield chunk
    finally:
        await sync_to_async(stored.close)()


# The routes, added to the ai service (aihub/services.py), and their /v1/… twins (Service.aliases).
ACTIONS: tuple[Action, ...] = (
    Action(
        "video",
        video,
        allow=(USER,),
        input=VIDEO_REQUEST,
        upload=True,
        description="Start a video job: {model, prompt, seconds?, size?} (or multipart with an input_reference image) → {id, status, …}.",
    ),
    Action(
        "video/result",
        video_result,
        methods=("GET",),
        allow=(USER,),
        input=RESULT_REQUEST,
        description="A video job now (?id=…); once completed, parts [{type: video, url, mime}].",
    ),
    Action(
        "videos",
        videos,
        methods=("GET", "POST", "DELETE"),
        allow=(USER,),
        input=VIDEOS_REQUEST,
        upload=True,
        subpaths=True,
        description="OpenAI's videos: create, list, /videos/{id} retrieve and delete, /videos/{id}/content the MP4.",
        responds=("application/json", "video/mp4"),
    ),
)
ALIASES: dict[str, str] = {"videos": "videos"}
