"""Veo video: `models/{model}:predictLongRunning`, `GET operations/{name}` and the file download, mixed into the provider's simulator.

As Google's Veo guide describes them: the create needs `x-goog-api-key`, one instance with a
prompt (and optionally an image `{bytesBase64Encoded, mimeType}`), and parameters among
aspectRatio 16:9 | 9:16, resolution 720p | 1080p, durationSeconds (4, 6 or 8; Veo 3.0: 8),
negativePrompt, personGeneration; anything else is Google's "Unknown name" 400. It answers an
operation `{name}`. Each GET of the operation moves it on: `{done: false}` until
`veo_polls_to_complete` polls, then `done` with `response.generateVideoResponse.generatedSamples
[0].video.uri` (a download URI on this host, which redirects once on this host to the bytes), or
`done` with `error` for an operation created while `veo_failure` was set. `veo_uri_base` puts the
URI on another host instead (City must refuse to send the key there).
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from dataclasses import dataclass
from typing import Any

from aihub.tests.upstream.openai_videos_sim import VIDEO_BYTES
from aihub.tests.upstream.sim import Received, Reply

CREATE = re.compile(r"^/v1beta/models/(?P<model>veo-[A-Za-z0-9.-]+):predictLongRunning$")
OPERATION = re.compile(r"^/v1beta/models/(?P<model>veo-[A-Za-z0-9.-]+)/operations/(?P<op>[a-z0-9]+)$")
DOWNLOAD = re.compile(r"^/v1beta/files/(?P<file>[a-z0-9]+):download$")
STORED = re.compile(r"^/sim-storage/(?P<file>[a-z0-9]+)\.mp4$")
PARAMETERS = {"aspectRatio", "resolution", "durationSeconds", "negativePrompt", "personGeneration"}


@dataclass
class SimOperation:
    name: str
    model: str
    prompt: str
    parameters: dict[str, Any]
    image: dict[str, Any] | None
    polls: int = 0
    failure: dict[str, Any] | None = None


class GeminiVideoRoutes:
    veo_polls_to_complete = 2
    veo_failure: dict[str, Any] | None = None  # e.g. {"code": 3, "message": "…"}
    veo_uri_base: str | None = None  # None: this simulator's own URL

    @property
    def operations(self) -> dict[str, SimOperation]:
        if "_operations" not in self.__dict__:
            self.__dict__["_operations"] = {}
            self.__dict__["_operations_lock"] = threading.Lock()
        return self.__dict__["_operations"]

    def gemini_video_route(self, request: Received) -> Reply | None:
        """The answer when `request` is one of these routes, else None."""
        create, operation = CREATE.match(request.path), OPERATION.match(request.path)
        download, stored = DOWNLOAD.match(request.path), STORED.match(request.path)
        if not (create or operation or download or stored):
            return None
        if stored:  # the redirect's target: a signed storage URL needs no key
            return Reply(200, VIDEO_BYTES, content_type="video/mp4")
        if not (request.headers.get("x-goog-api-key") or request.query.get("key")):
            return _error(403, "Method doesn't allow unregistered callers (callers without established identity).")
        self.operations  # noqa: B018  (made on first use)
        with self.__dict__["_operations_lock"]:
            if create and request.method == "POST":
                return self._create(create["model"], request.json)
            if operation and request.method == "GET":
                found = self.operations.get(request.path.removeprefix("/v1beta/"))
                if found is None:
                    return _error(404, "Operation not found.")
                found.polls += 1
                return Reply.json(self._operation(found))
            if download and request.method == "GET" and request.query.get("alt") == "media":
                return Reply(302, b"", headers={"Location": f"/sim-storage/{download['file']}.mp4"})
        return _error(404, f"The requested URL {request.path} was not found on this server.")

    def _create(self, model: str, body: Any) -> Reply:
        if not isinstance(body, dict) or not isinstance(body.get("instances"), list) or len(body["instances"]) != 1:
            return _error(400, "* PredictLongRunningRequest.instances: exactly one instance is required.")
        unknown = set(body) - {"instances", "parameters"}
        if unknown:
            return _error(400, f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}": Cannot find field.')
        instance, parameters = body["instances"][0], body.get("parameters") or {}
        if not isinstance(instance, dict) or not isinstance(instance.get("prompt"), str) or not instance["prompt"]:
            return _error(400, "* instances[0].prompt: prompt is required.")
        extra = set(instance) - {"prompt", "image"} or set(parameters) - PARAMETERS
        if extra:
            return _error(400, f'Invalid JSON payload received. Unknown name "{sorted(extra)[0]}": Cannot find field.')
        image = instance.get("image")
        if image is not None:
            if set(image) != {"bytesBase64Encoded", "mimeType"} or image["mimeType"] not in ("image/png", "image/jpeg", "image/webp"):
                return _error(400, "* instances[0].image: bytesBase64Encoded and mimeType (an image type) are required.")
            try:
                base64.b64decode(image["bytesBase64Encoded"], validate=True)
            except (binascii.Error, ValueError):
                return _error(400, "* instances[0].image.bytesBase64Encoded: not valid base64.")
        if parameters.get("aspectRatio", "16:9") not in ("16:9", "9:16"):
            return _error(400, "aspectRatio must be 16:9 or 9:16.")
        if parameters.get("resolution", "720p") not in ("720p", "1080p"):
            return _error(400, "resolution must be 720p or 1080p.")
        duration = parameters.get("durationSeconds", 8)
        allowed = (8,) if model.startswith("veo-3.0") else (4, 6, 8)
        if not isinstance(duration, int) or duration not in allowed:
            return _error(400, f"durationSeconds must be one of {allowed} for {model}.")
        name = f"models/{model}/operations/op{len(self.operations) + 1:04d}"
        self.operations[name] = SimOperation(name, model, instance["prompt"], parameters, image, failure=self.veo_failure)
        return Reply.json({"name": name})

    def _operation(self, op: SimOperation) -> dict[str, Any]:
        if op.polls < self.veo_polls_to_complete:
            return {"name": op.name, "done": False}
        if op.failure:
            return {"name": op.name, "done": True, "error": op.failure}
        base = self.veo_uri_base or self.url  # type: ignore[attr-defined]  # SimServer's
        file_id = op.name.rsplit("/", 1)[1]
        return {
            "name": op.name,
            "done": True,
            "response": {
                "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                "generateVideoResponse": {"generatedSamples": [{"video": {"uri": f"{base}/v1beta/files/{file_id}:download?alt=media"}}]},
            },
        }


def _error(status: int, message: str) -> Reply:
    words = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}
    return Reply.json({"error": {"code": status, "message": message, "status": words.get(status, "UNKNOWN")}}, status=status)
