"""Deepgram's pre-recorded speech-to-text: `POST {base}/v1/listen`, the audio as the body.

Request (developers.deepgram.com/reference/speech-to-text-api/listen): the model and options in the
query (`model`, `smart_format`, `punctuate`, `utterances`, and `language` or `detect_language`), the
key as `Authorization: Token <key>`, the raw audio with its Content-Type. The answer
`{metadata: {request_id, duration, channels, …}, results: {channels: [{alternatives: [{transcript,
confidence, words: [{word, start, end, confidence, punctuated_word}]}], detected_language?}],
utterances?: [{start, end, transcript, …}]}}` becomes OpenAI's verbose_json shape: text, language,
duration, segments (one per utterance) and words. Deepgram has no translation, and no free-text
prompt (its `keyterm` is a different thing): a `prompt` is not sent.
Errors come as `{err_code, err_msg, request_id}`.
"""

from typing import Any

import httpx
import orjson
from typing_extensions import override

from aihub.adapters import openai_shapes as oa
from aihub.adapters.base import Adapter, MediaFile, Upstream, UpstreamError, error_from_response, error_from_transport

_RETRYABLE_4XX = {408, 409, 429}


class DeepgramAdapter(Adapter):
    @override
    async def transcribe(self, upstream: Upstream, body: dict[str, Any], audio: MediaFile) -> dict[str, Any]:
        params = {"model": upstream.model, "smart_format": "true", "punctuate": "true", "utterances": "true"}
        language = body.get("language")
        if isinstance(language, str) and language:
            params["language"] = language
        else:
            params["detect_language"] = "true"
        headers = {"Content-Type": audio.content_type or "application/octet-stream", "Accept": "application/json"}
        if upstream.api_key:
            headers["Authorization"] = f"Token {upstream.api_key}"
        try:
            response = await self.client.post(upstream.base_url + "/v1/listen", params=params, content=audio.data, headers=headers)
        except httpx.HTTPError as exc:
            raise error_from_transport(exc, upstream.provider) from None
        if response.status_code >= 400:
            raise _error(response.status_code, response.content, upstream.provider)
        return verbose_from_deepgram(oa.json_of(response.content, upstream.provider))


def verbose_from_deepgram(answer: dict[str, Any]) -> dict[str, Any]:
    """Deepgram's answer as OpenAI's verbose_json (see the module docstring); a 502 when it is not in
    Deepgram's shape (a list where an object belongs, a null time), never a crash of City's."""
    try:
        return _verbose(answer)
    except (AttributeError, TypeError, ValueError, KeyError, IndexError):
        raise UpstreamError("Deepgram answered in a shape City does not know.", status=502, retryable=True, code="upstream_error") from None


def _verbose(answer: dict[str, Any]) -> dict[str, Any]:
    metadata = answer.get("metadata") or {}
    results = answer.get("results") or {}
    channels = results.get("channels") or [{}]
    channel = channels[0] if isinstance(channels[0], dict) else {}
    alternative = (channel.get("alternatives") or [{}])[0]
    transcript = alternative.get("transcript")
    if not isinstance(transcript, str):
        raise UpstreamError("Deepgram answered without a transcript.", status=502, retryable=True, code="upstream_error")
    verbose: dict[str, Any] = {"task": "transcribe", "text": transcript}
    if isinstance(channel.get("detected_language"), str):
        verbose["language"] = channel["detected_language"]
    if isinstance(metadata.get("duration"), (int, float)):
        verbose["duration"] = float(metadata["duration"])
    verbose["segments"] = [
        {
            "id": index,
            "seek": 0,
            "start": float(u.get("start", 0.0)),
            "end": float(u.get("end", 0.0)),
            "text": str(u.get("transcript", "")),
            # Whisper's decoding details, which Deepgram has no counterpart for: neutral values.
            "tokens": [],
            "temperature": 0.0,
            "avg_logprob": 0.0,
            "compression_ratio": 0.0,
            "no_speech_prob": 0.0,
        }
        for index, u in enumerate(results.get("utterances") or [])
        if isinstance(u, dict)
    ]
    verbose["words"] = [
        {"word": str(w.get("punctuated_word") or w.get("word", "")), "start": float(w.get("start", 0.0)), "end": float(w.get("end", 0.0))}
        for w in alternative.get("words") or []
        if isinstance(w, dict)
    ]
    return verbose


def _error(status: int, body: bytes, provider: str) -> UpstreamError:
    """Deepgram's `{err_code, err_msg}`: its message and code on a 4xx; a 5xx as every adapter maps it."""
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    if not (400 <= status < 500 and isinstance(data, dict) and isinstance(data.get("err_msg"), str)):
        return error_from_response(status, body, provider)
    code = data.get("err_code")
    return UpstreamError(
        f"Deepgram refused the request: {data['err_msg'][:500]}",
        status=status,
        retryable=status in _RETRYABLE_4XX,
        code=str(code)[:100] if isinstance(code, str) else None,
    )
