"""OpenAI-compatible videos: POST /videos, GET /videos/{id}, GET /videos/{id}/content, GET /videos, DELETE /videos/{id},
mixed into the provider's simulator.

As OpenAI's API reference describes them: a create (JSON, or multipart/form-data with an
`input_reference` image) needs a bearer key, a prompt, a known model, seconds "4" | "8" | "12" and
a size the model renders, and refuses other fields; it answers a video object `queued`. Each GET of
the video moves it on: `in_progress` (progress 50) until `video_polls_to_complete` polls have been
made (or `video_seconds_to_complete` have passed, when set), then `completed` (or `failed` with an
error, for a job created while `video_failure` was set). The content of a completed video is VIDEO_BYTES (MP4-like: it starts with an `ftyp` box).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from aihub.tests.upstream.sim import Received, Reply

CREATED = 1_767_225_600
# A tiny deterministic MP4-like payload: an `ftyp` box (major brand mp42), then `free` and `mdat` boxes.
VIDEO_BYTES = (
    b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00\x00\x00\x08free" + b"\x00\x00\x00\x18mdat" + b"city-sim-frames!!"[:16]
)
SIZES = {"sora-2": ("720x1280", "1280x720"), "sora-2-pro": ("720x1280", "1280x720", "1024x1792", "1792x1024")}
SECONDS = ("4", "8", "12")
FIELDS = {"prompt", "model", "seconds", "size", "input_reference"}
ROUTE = re.compile(r"^(?:/v1)?/videos(?:/(?P<id>[^/]+))?(?P<content>/content)?$")


@dataclass
class SimVideo:
    id: str
    model: str
    prompt: str
    seconds: str
    size: str
    polls: int = 0
    created: float = field(default_factory=time.monotonic)
    failure: dict[str, str] | None = None
    reference: tuple[str, str, bytes] | None = None  # (file name, content type, bytes)
    deleted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class VideosRoutes:
    # Switches (instance attributes once set; these are the defaults).
    video_polls_to_complete = 2
    video_seconds_to_complete: float | None = None  # set: a video completes this long after its creation instead
    video_failure: dict[str, str] | None = None  # set: jobs created now end failed with this error

    @property
    def videos(self) -> dict[str, SimVideo]:
        if "_videos" not in self.__dict__:
            self.__dict__["_videos"] = {}
            self.__dict__["_videos_lock"] = threading.Lock()
        return self.__dict__["_videos"]

    def videos_route(self, request: Received) -> Reply | None:
        """The answer when `request` is one of these routes, else None."""
        route = ROUTE.match(request.path)
        if route is None:
            return None
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return _error(401, "You didn't provide an API key.", code="invalid_api_key")
        video_id, content = route["id"], route["content"]
        self.videos  # noqa: B018  (made on first use: the simulator's __init__ is SimServer's)
        with self.__dict__["_videos_lock"]:
            if video_id is None:
                if request.method == "POST":
                    return self._create(request)
                if request.method == "GET":
                    return Reply.json({"object": "list", "data": [self._object(v) for v in self.videos.values() if not v.deleted]})
                return _error(405, "Method not allowed.")
            video = self.videos.get(video_id)
            if video is None or video.deleted:
                return _error(404, f"Video with id '{video_id}' not found.", param="video_id", code="video_not_found")
            if content:
                if request.query.get("variant", "video") != "video":
                    return _error(404, "This variant is not available for this video.", param="variant")
                if self._state(video)[0] != "completed":
                    return _error(404, "Video is not ready yet, use GET /v1/videos/{video_id} to check status.", code="video_not_ready")
                return Reply(200, VIDEO_BYTES, content_type="video/mp4")
            if request.method == "DELETE":
                video.deleted = True
                return Reply.json({"id": video.id, "object": "video.deleted", "deleted": True})
            video.polls += 1
            return Reply.json(self._object(video))

    def _create(self, request: Received) -> Reply:
        content_type = request.headers.get("content-type", "")
        reference = None
        if content_type.startswith("multipart/form-data"):
            fields, files = _multipart(content_type, request.body)
            if "input_reference" in files:
                reference = files.pop("input_reference")
            if files:
                return _error(400, f"Unexpected file field '{next(iter(files))}'.", param=next(iter(files)))
        elif content_type.startswith("application/json") and isinstance(request.json, dict):
            fields = request.json
        else:
            return _error(400, "Send the body as application/json or multipart/form-data.")
        unknown = set(fields) - FIELDS
        if unknown:
            name = sorted(unknown)[0]
            return _error(400, f"Unrecognized request argument supplied: {name}", param=name, code="unknown_parameter")
        prompt, model = fields.get("prompt"), fields.get("model", "sora-2")
        if not isinstance(prompt, str) or not prompt:
            return _error(400, "Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter")
        if model not in SIZES:
            return _error(400, f"Invalid value: '{model}'. Supported values are: 'sora-2' and 'sora-2-pro'.", param="model")
        seconds, size = str(fields.get("seconds", "4")), fields.get("size", "720x1280")
        if seconds not in SECONDS:
            return _error(400, f"Invalid value: '{seconds}'. Supported values are: '4', '8', and '12'.", param="seconds")
        if size not in SIZES[model]:
            return _error(400, f"Invalid value: '{size}' for model {model}.", param="size")
        video = SimVideo(f"video_sim{len(self.videos) + 1:04d}", model, prompt, seconds, size, reference=reference)
        video.failure = self.video_failure
        self.videos[video.id] = video
        return Reply.json(self._object(video))

    def _state(self, video: SimVideo) -> tuple[str, int]:
        if video.polls == 0:
            return "queued", 0
        if self.video_seconds_to_complete is not None:
            running = time.monotonic() - video.created < self.video_seconds_to_complete
        else:
            running = video.polls < self.video_polls_to_complete
        if running:
            return "in_progress", 50
        return ("failed", 100) if video.failure else ("completed", 100)

    def _object(self, video: SimVideo) -> dict[str, Any]:
        status, progress = self._state(video)
        return {
            "id": video.id,
            "object": "video",
            "model": video.model,
            "status": status,
            "progress": progress,
            "created_at": CREATED,
            "completed_at": CREATED + 60 if status in ("completed", "failed") else None,
            "expires_at": CREATED + 86_400 if status == "completed" else None,
            "seconds": video.seconds,
            "size": video.size,
            "prompt": video.prompt,
            "remixed_from_video_id": None,
            "error": video.failure if status == "failed" else None,
        }


def _error(status: int, message: str, *, param: str | None = None, code: str | None = None) -> Reply:
    return Reply.json({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}, status=status)


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, tuple[str, str, bytes]]]:
    """A multipart/form-data body as (fields, files: name → (file name, content type, bytes)), read with the stdlib."""
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files[str(name)] = (filename, part.get_content_type(), payload)
        else:
            fields[str(name)] = payload.decode()
    return fields, files
