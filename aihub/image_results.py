"""Images made for a client that left mid-call, kept for pickup by request id.

The upstream made (and billed) them whether or not anyone took them, so City bills them too and keeps
them: each base64 image as a file through Django's default storage, under
`media/images/<studio_id>/<request_id>/`, URLs (DALL·E's, valid for an hour) as they came, and a
KeptImages row. `GET /v1/ai/image/result?request_id=…` answers them in City's image shape, to the
same studio, until CITY_MEDIA_RETENTION_HOURS have passed; `purge_expired(now)` deletes them after.
"""

import base64
import binascii
import logging
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import close_old_connections, connections
from django.utils import timezone

from aihub.models_images import KeptImages
from city.errors import ApiError

log = logging.getLogger("aihub.images")

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def _folder_part(value: str) -> str:
    """A request id as a folder name: a client may choose its own, so only safe characters pass."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in value)[:100] or "request"


def keep(
    *, request_id: str, studio_id: str, call_id: str, model: str, answer_id: str, parts: list[dict[str, Any]], usage: dict[str, int]
) -> KeptImages:
    """Store the parts (City's image parts, `data` base64 or `url`) and their row (sync: storage and ORM)."""
    now = timezone.now()
    folder = f"media/images/{_folder_part(studio_id)}/{_folder_part(request_id)}"
    files: list[dict[str, Any]] = []
    for index, part in enumerate(parts):
        entry = {key: part[key] for key in ("mime", "revised_prompt") if part.get(key)}
        if part.get("data"):
            try:
                content = base64.b64decode(part["data"], validate=True)
            except (binascii.Error, ValueError):
                log.warning("image %s of request %s is not base64; not kept", index, request_id)
                continue
            name = f"{folder}/{call_id}-{index}.{EXTENSIONS.get(part.get('mime', ''), 'png')}"
            entry["path"] = default_storage.save(name, ContentFile(content))
        elif part.get("url"):
            entry["url"] = part["url"]
        files.append(entry)
    return KeptImages.objects.create(
        request_id=request_id,
        studio_id=studio_id,
        call_id=call_id,
        model=model,
        answer_id=answer_id,
        files=files,
        usage=usage,
        created_at=now,
        expires_at=now + timedelta(hours=settings.CITY_MEDIA_RETENTION_HOURS),
    )


def _keep_detached(**kwargs: Any) -> KeptImages:
    # The client has left, so the request's thread context has ended: this runs on a thread of its
    # own, which keeps no database connection open after it.
    close_old_connections()
    try:
        return keep(**kwargs)
    finally:
        connections.close_all()


akeep = sync_to_async(_keep_detached, thread_sensitive=False)


def not_found(request_id: str) -> ApiError:
    return ApiError(
        404,
        f"No kept images for request '{request_id[:200]}' in this studio: only a call whose client left before the answer keeps its "
        f"images, for {settings.CITY_MEDIA_RETENTION_HOURS} hours.",
        param="request_id",
        code="not_found",
    )


def pickup(studio_id: str, request_id: str) -> dict[str, Any]:
    """City's image answer for the studio's kept request; 404 when there is none, or no longer (sync)."""
    kept = (
        KeptImages.objects.filter(studio_id=studio_id, request_id=request_id, expires_at__gt=timezone.now()).order_by("-created_at").first()
    )
    if kept is None:
        raise not_found(request_id)
    parts = []
    for entry in kept.files:
        part: dict[str, Any] = {"type": "image"}
        if "path" in entry:
            try:
                with default_storage.open(entry["path"], "rb") as stored:
                    part["data"] = base64.b64encode(stored.read()).decode("ascii")
            except FileNotFoundError:
                raise not_found(request_id) from None  # purged under our feet
        else:
            part["url"] = entry["url"]
        part["mime"] = entry.get("mime", "image/png")
        if entry.get("revised_prompt"):
            part["revised_prompt"] = entry["revised_prompt"]
        parts.append(part)
    return {"id": kept.answer_id, "model": kept.model, "parts": parts, "usage": kept.usage, "request_id": kept.request_id}


def purge_expired(now: datetime) -> int:
    """Delete the kept images expired at `now` (rows and files); the number of rows deleted."""
    deleted = 0
    for kept in KeptImages.objects.filter(expires_at__lte=now).iterator():
        try:
            for entry in kept.files:
                if "path" in entry:
                    default_storage.delete(entry["path"])
        except OSError:
            log.exception("could not delete the kept images of request %s; the next purge tries again", kept.request_id)
            continue
        deleted += KeptImages.objects.filter(pk=kept.pk).delete()[0]
    return deleted
