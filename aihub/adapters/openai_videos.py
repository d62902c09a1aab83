"""OpenAI's videos API (POST /videos, GET /videos/{id}, GET /videos/{id}/content), served by OpenAI-compatible
video hosts: the OpenAICompatAdapter methods of these names delegate here.

A create goes as JSON, or as multipart/form-data when it carries an `input_reference` image (as
OpenAI's API takes it); `model` becomes the upstream's name. Answers are OpenAI's video objects,
passed on as they are; City keeps its own job (aihub/video_jobs.py) and shows its own id.
"""

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import orjson

from aihub.adapters import openai_shapes as oa
from aihub.adapters.base import MediaFile, MediaStream, Upstream, UpstreamError, error_from_response
from aihub.adapters.media_stream import opened

if TYPE_CHECKING:
    from aihub.adapters.openai_compat import OpenAICompatAdapter

# The fields of a create City sends on (anything else the route took stays in City).
CREATE_FIELDS = ("prompt", "seconds", "size")


async def video_create(
    adapter: "OpenAICompatAdapter", upstream: Upstream, body: dict[str, Any], reference: MediaFile | None
) -> dict[str, Any]:
    fields = {name: str(body[name]) for name in CREATE_FIELDS if body.get(name) is not None}
    fields["model"] = upstream.model
    headers = adapter.headers(upstream)
    url = f"{upstream.base_url}/videos"
    async with oa.transport_errors(upstream.provider):
        if reference is None:
            response = await adapter.client.post(url, content=orjson.dumps(fields), headers=headers)
        else:
            headers.pop("Content-Type")  # httpx writes multipart/form-data with its boundary
            files = {"input_reference": (reference.name, reference.data, reference.content_type)}
            response = await adapter.client.post(url, data=fields, files=files, headers=headers)
    return _video(response, upstream)


async def video_status(adapter: "OpenAICompatAdapter", upstream: Upstream, upstream_id: str) -> dict[str, Any]:
    async with oa.transport_errors(upstream.provider):
        response = await adapter.client.get(_video_url(upstream, upstream_id), headers=adapter.headers(upstream))
    return _video(response, upstream)


async def video_content(adapter: "OpenAICompatAdapter", upstream: Upstream, upstream_id: str) -> MediaStream:
    headers = {**adapter.headers(upstream), "Accept": "application/binary"}
    headers.pop("Content-Type")
    request = adapter.client.build_request(
        "GET", _video_url(upstream, upstream_id) + "/content", params={"variant": "video"}, headers=headers
    )
    return await opened(adapter.client, request, upstream.provider, default_type="video/mp4")


def _video_url(upstream: Upstream, upstream_id: str) -> str:
    return f"{upstream.base_url}/videos/{quote(upstream_id, safe='')}"


def _video(response: httpx.Response, upstream: Upstream) -> dict[str, Any]:
    """The upstream's video object, checked for what City reads of it."""
    if response.status_code >= 400:
        raise error_from_response(response.status_code, response.content, upstream.provider)
    video = oa.json_of(response.content, upstream.provider)
    if not isinstance(video.get("id"), str) or not video["id"] or not isinstance(video.get("status"), str):
        raise UpstreamError(
            f"The {upstream.provider} upstream answered with a video object without an id or a status.",
            status=502,
            retryable=True,
            code="upstream_error",
        )
    return video
