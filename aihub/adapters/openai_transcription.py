"""OpenAI audio/transcriptions and audio/translations: the OpenAICompatAdapter methods of these names delegate here.

The upstream is asked for verbose_json where the model gives it (whisper-1: segments, words,
language, duration) and json otherwise (gpt-4o-transcribe, gpt-4o-mini-transcribe: text and token
usage); City renders the format the client asked for from that (aihub/transcription_render.py).
"""

from typing import TYPE_CHECKING, Any

import httpx
import orjson

from aihub.adapters import openai_shapes as oa
from aihub.adapters.base import MediaFile, Upstream, UpstreamError, error_from_response, error_from_transport

if TYPE_CHECKING:
    from aihub.adapters.openai_compat import OpenAICompatAdapter

# The fields passed on as the client sent them; `model` and `response_format` are the adapter's.
PASSED_ON = ("language", "prompt", "temperature", "include", "chunking_strategy")


def gives_segments(upstream_model: str) -> bool:
    """Whether the model answers verbose_json (segments, words), so srt and vtt can be made from it."""
    return upstream_model.startswith("whisper")


async def transcribe(adapter: "OpenAICompatAdapter", upstream: Upstream, body: dict[str, Any], audio: MediaFile) -> dict[str, Any]:
    return await _post(adapter, upstream, "/audio/transcriptions", body, audio)


async def translate(adapter: "OpenAICompatAdapter", upstream: Upstream, body: dict[str, Any], audio: MediaFile) -> dict[str, Any]:
    if not gives_segments(upstream.model):
        raise NotImplementedError  # OpenAI translates with whisper-1 only
    return await _post(adapter, upstream, "/audio/translations", {k: v for k, v in body.items() if k != "language"}, audio)


async def _post(adapter: "OpenAICompatAdapter", upstream: Upstream, path: str, body: dict[str, Any], audio: MediaFile) -> dict[str, Any]:
    fields: list[tuple[str, str]] = [("model", upstream.model)]
    verbose = gives_segments(upstream.model)
    fields.append(("response_format", "verbose_json" if verbose else "json"))
    for name in PASSED_ON:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, dict):
            # Objects as the OpenAI SDK sends them: `chunking_strategy[type]`, one field per key.
            fields.extend((f"{name}[{key}]", _field(item)) for key, item in value.items())
            continue
        for item in value if isinstance(value, list) else [value]:
            # Arrays as the OpenAI SDK sends them: `include[]` once per item.
            fields.append((f"{name}[]" if isinstance(value, list) else name, _field(item)))
    if verbose:
        for granularity in body.get("timestamp_granularities") or ["segment"]:
            fields.append(("timestamp_granularities[]", granularity))
    headers = {"Accept": "application/json"}
    if upstream.api_key:
        headers["Authorization"] = f"Bearer {upstream.api_key}"
    form: dict[str, list[str]] = {}
    for name, value in fields:
        form.setdefault(name, []).append(value)
    try:
        response = await adapter.client.post(
            upstream.base_url + path, data=form, files={"file": (audio.name, audio.data, audio.content_type)}, headers=headers
        )
    except httpx.HTTPError as exc:
        raise error_from_transport(exc, upstream.provider) from None
    if response.status_code >= 400:
        raise error_from_response(response.status_code, response.content, upstream.provider)
    answer = oa.json_of(response.content, upstream.provider)
    if not isinstance(answer.get("text"), str):
        raise UpstreamError(
            f"The {upstream.provider} upstream answered a transcription without its text.",
            status=502,
            retryable=True,
            code="upstream_error",
        )
    return answer


def _field(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
