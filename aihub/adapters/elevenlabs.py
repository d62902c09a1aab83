"""ElevenLabs' text-to-speech API, behind OpenAI's audio/speech shape.

Wire format (ElevenLabs API reference, "Stream speech"):
    POST {base}/v1/text-to-speech/{voice_id}/stream?output_format=mp3_44100_128
    xi-api-key: …
    {"text", "model_id", "voice_settings": {"speed"}?}
answers the audio bytes as they are made. Errors: `{"detail": {"status", "message"}}`, and FastAPI's
validation errors `{"detail": [{"loc", "msg", "type"}]}` with 422.

From OpenAI's body: `input` is the text, `voice` the voice id (the route checked its form),
`response_format` an output format of ElevenLabs' (OUTPUT_FORMATS; the route refuses the others),
`speed` voice_settings.speed (0.7–1.2, checked by the route too).
"""

from typing import Any
from urllib.parse import quote

import orjson
from typing_extensions import override

from aihub.adapters.base import Adapter, MediaStream, Upstream, UpstreamError, error_from_response
from aihub.adapters.media_stream import opened

# OpenAI's formats → ElevenLabs' output_format of the same kind: OpenAI's pcm is 24 kHz 16-bit mono,
# its opus an Ogg stream at 48 kHz. aac, flac and wav have no ElevenLabs equivalent.
OUTPUT_FORMATS = {"mp3": "mp3_44100_128", "pcm": "pcm_24000", "opus": "opus_48000_128"}
# ElevenLabs error statuses that are about the request's voice: the route names the field.
VOICE_ERRORS = ("voice_not_found", "voice_does_not_exist", "invalid_voice_id")


class ElevenLabsAdapter(Adapter):
    def headers(self, upstream: Upstream) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "*/*"}
        if upstream.api_key:
            headers["xi-api-key"] = upstream.api_key
        return headers

    @override
    async def speech(self, upstream: Upstream, body: dict[str, Any]) -> MediaStream:
        fmt = body.get("response_format") or "mp3"
        output_format = OUTPUT_FORMATS.get(fmt)
        if output_format is None:
            raise UpstreamError(
                f"ElevenLabs cannot answer {fmt}; it answers {', '.join(OUTPUT_FORMATS)}.",
                status=400,
                retryable=False,
                code="unsupported_value",
                param="response_format",
            )
        payload: dict[str, Any] = {"text": body["input"], "model_id": upstream.model}
        if body.get("speed") is not None:
            payload["voice_settings"] = {"speed": body["speed"]}
        url = f"{upstream.base_url}/v1/text-to-speech/{quote(str(body['voice']), safe='')}/stream"
        request = self.client.build_request(
            "POST", url, params={"output_format": output_format}, content=orjson.dumps(payload), headers=self.headers(upstream)
        )
        return await opened(self.client, request, upstream.provider, error_of)


def error_of(status: int, body: bytes, provider: str) -> UpstreamError:
    """ElevenLabs' error shapes → UpstreamError: the status mapped as for every provider, the message
    and code ElevenLabs gave (`detail.status` is its code), a voice error naming `voice`."""
    error = error_from_response(status, b"", provider)
    try:
        detail = orjson.loads(body).get("detail") if body else None
    except (orjson.JSONDecodeError, AttributeError):
        detail = None
    if isinstance(detail, dict):
        message, code = detail.get("message"), detail.get("status")
        if isinstance(message, str) and message:
            error.message = message[:2000] if status < 500 else f"The upstream provider failed with status {status}: {message[:2000]}"
        if isinstance(code, str) and status < 500:
            error.code = code
            if code in VOICE_ERRORS:
                error.status, error.retryable, error.param = 400, False, "voice"
    elif isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        location = [str(part) for part in first.get("loc") or () if part != "body"]
        error.message = f"ElevenLabs refused the request: {first.get('msg') or 'invalid'} ({'.'.join(location) or 'body'})."
        error.code = "invalid_request"
    elif status < 500:
        error = error_from_response(status, body, provider)
    return error
