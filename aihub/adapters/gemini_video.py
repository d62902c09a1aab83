"""Google's Veo through the Gemini API: `:predictLongRunning`, the operation polled, the video downloaded.
The GeminiAdapter methods of these names delegate here.

OpenAI's create → Veo's: `prompt` → `instances[0].prompt`; an input reference image →
`instances[0].image {bytesBase64Encoded, mimeType}`; `seconds` → `parameters.durationSeconds`;
`size` → `parameters.aspectRatio` and `parameters.resolution` (SIZES: 1280x720 is 16:9 at 720p …);
`negative_prompt` → `negativePrompt`. A size Veo has no such pair for is a 400 naming `size`.
The job's id is the operation's name (`models/…/operations/…`); its status is the operation's
`done` and `error`, its video the first of `response.generateVideoResponse.generatedSamples`,
downloaded with the API key only from the deployment's own host (a redirect too), never elsewhere.
"""

import base64
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import httpx
import orjson

from aihub.adapters import openai_shapes as oa
from aihub.adapters.base import MediaFile, MediaStream, Upstream, UpstreamError, error_from_response
from aihub.adapters.media_stream import stream_of

if TYPE_CHECKING:
    from aihub.adapters.gemini import GeminiAdapter

API_VERSION = "v1beta"
# OpenAI's "WIDTHxHEIGHT" → Veo's (aspectRatio, resolution).
SIZES = {
    "1280x720": ("16:9", "720p"),
    "720x1280": ("9:16", "720p"),
    "1920x1080": ("16:9", "1080p"),
    "1080x1920": ("9:16", "1080p"),
}
REFERENCE_TYPES = ("image/png", "image/jpeg", "image/webp")
# An operation's name as Gemini gives it; anything else is never put in a URL.
OPERATION_NAME = re.compile(r"^models/[A-Za-z0-9._-]+/operations/[A-Za-z0-9._-]+$")
MAX_REDIRECTS = 3


def predict_request(body: dict[str, Any], reference: MediaFile | None) -> dict[str, Any]:
    """The `:predictLongRunning` body for an OpenAI video create; UpstreamError 400 naming what Veo cannot take."""
    instance: dict[str, Any] = {"prompt": body.get("prompt") or ""}
    if reference is not None:
        if reference.content_type not in REFERENCE_TYPES:
            raise _refused(f"Veo takes a reference image as {', '.join(REFERENCE_TYPES)}, not {reference.content_type}.", "input_reference")
        instance["image"] = {"bytesBase64Encoded": base64.b64encode(reference.data).decode(), "mimeType": reference.content_type}
    parameters: dict[str, Any] = {}
    size = body.get("size")
    if size is not None:
        if size not in SIZES:
            raise _refused(f"Veo renders the sizes {', '.join(SIZES)}; '{size}' has no aspect ratio and resolution there.", "size")
        parameters["aspectRatio"], parameters["resolution"] = SIZES[size]
    seconds = body.get("seconds")
    if seconds is not None:
        try:
            parameters["durationSeconds"] = int(seconds)
        except (TypeError, ValueError):
            raise _refused("seconds must be a whole number of seconds.", "seconds") from None
    if body.get("negative_prompt"):
        parameters["negativePrompt"] = body["negative_prompt"]
    return {"instances": [instance], "parameters": parameters}


async def video_create(adapter: "GeminiAdapter", upstream: Upstream, body: dict[str, Any], reference: MediaFile | None) -> dict[str, Any]:
    payload = predict_request(body, reference)
    url = f"{upstream.base_url}/{API_VERSION}/models/{upstream.model.removeprefix('models/')}:predictLongRunning"
    async with oa.transport_errors(upstream.provider):
        response = await adapter.client.post(url, content=orjson.dumps(payload), headers=_headers(upstream))
    operation = _json(response, upstream)
    name = operation.get("name")
    if not isinstance(name, str) or not OPERATION_NAME.match(name):
        raise _malformed(upstream, "an operation without a name")
    return {"id": name, "object": "video", "status": "queued", "progress": 0}


async def video_status(adapter: "GeminiAdapter", upstream: Upstream, upstream_id: str) -> dict[str, Any]:
    return video_of(upstream_id, await _operation(adapter, upstream, upstream_id))


def video_of(name: str, operation: dict[str, Any]) -> dict[str, Any]:
    """An operation as OpenAI's video object: running, completed (a video to fetch) or failed."""
    if not operation.get("done"):
        return {"id": name, "object": "video", "status": "in_progress", "progress": 0}
    error = operation.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        return {
            "id": name,
            "object": "video",
            "status": "failed",
            "error": {"code": str(code) if code is not None else "upstream_error", "message": str(error.get("message") or "")[:2000]},
        }
    if _video_uri(operation) is None:
        reasons = (((operation.get("response") or {}).get("generateVideoResponse") or {}).get("raiMediaFilteredReasons")) or []
        message = "; ".join(str(r) for r in reasons) if isinstance(reasons, list) else ""
        return {
            "id": name,
            "object": "video",
            "status": "failed",
            "error": {"code": "content_filtered", "message": message or "Veo made no video for this prompt."},
        }
    return {"id": name, "object": "video", "status": "completed", "progress": 100}


async def video_content(adapter: "GeminiAdapter", upstream: Upstream, upstream_id: str) -> MediaStream:
    uri = _video_uri(await _operation(adapter, upstream, upstream_id))
    if uri is None:
        raise UpstreamError("The Veo operation has no video to download.", status=404, retryable=False, code="video_not_ready")
    for _ in range(MAX_REDIRECTS + 1):
        if not _same_host(uri, upstream.base_url):
            # The key goes only to the host it belongs to.
            raise _malformed(upstream, "a video URI on another host")
        request = adapter.client.build_request("GET", uri, headers={"x-goog-api-key": upstream.api_key or ""})
        async with oa.transport_errors(upstream.provider):
            response = await adapter.client.send(request, stream=True)
        if response.status_code in (301, 302, 303, 307, 308) and response.headers.get("location"):
            await response.aclose()
            uri = urljoin(uri, response.headers["location"])
            continue
        return await stream_of(response, upstream.provider, default_type="video/mp4")
    raise _malformed(upstream, "too many redirects for the video")


async def _operation(adapter: "GeminiAdapter", upstream: Upstream, name: str) -> dict[str, Any]:
    if not OPERATION_NAME.match(name):
        raise UpstreamError("Not a Veo operation name.", status=404, retryable=False, code="video_not_found")
    async with oa.transport_errors(upstream.provider):
        response = await adapter.client.get(f"{upstream.base_url}/{API_VERSION}/{name}", headers=_headers(upstream))
    return _json(response, upstream)


def _video_uri(operation: dict[str, Any]) -> str | None:
    response = operation.get("response") or {}
    samples = (response.get("generateVideoResponse") or {}).get("generatedSamples") if isinstance(response, dict) else None
    if not isinstance(samples, list) or not samples or not isinstance(samples[0], dict):
        return None
    uri = (samples[0].get("video") or {}).get("uri")
    return uri if isinstance(uri, str) and uri else None


def _same_host(uri: str, base_url: str) -> bool:
    a, b = urlsplit(uri), urlsplit(base_url)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def _headers(upstream: Upstream) -> dict[str, str]:
    return {"Content-Type": "application/json", "Accept": "application/json", "x-goog-api-key": upstream.api_key or ""}


def _json(response: httpx.Response, upstream: Upstream) -> dict[str, Any]:
    if response.status_code >= 400:
        error = error_from_response(response.status_code, response.content, upstream.provider)
        if 400 <= response.status_code < 500:
            error.code = None  # Google's numeric code and status word are not OpenAI's codes
            error.error_type = "invalid_request_error"
        raise error
    return oa.json_of(response.content, upstream.provider)


def _refused(message: str, param: str) -> UpstreamError:
    return UpstreamError(message, status=400, retryable=False, code="invalid_value", error_type="invalid_request_error", param=param)


def _malformed(upstream: Upstream, what: str) -> UpstreamError:
    return UpstreamError(f"The {upstream.provider} upstream answered with {what}.", status=502, retryable=True, code="upstream_error")
