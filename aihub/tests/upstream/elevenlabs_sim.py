"""A loopback ElevenLabs upstream: text to speech, as ElevenLabs' API reference describes it.

    POST /v1/text-to-speech/{voice_id}[/stream]?output_format=mp3_44100_128
    xi-api-key: …
    {"text", "model_id", "voice_settings": {"stability", "similarity_boost", "speed"}?}

answers audio bytes (streamed in chunks, Content-Type of the format); a body that is not JSON is a
422, as FastAPI answers it. Errors as ElevenLabs sends
them: `{"detail": {"status", "message"}}`, and validation errors `{"detail": [{"loc", "msg", "type"}]}`
with 422. Known voices: VOICES; models and their character limits: MODELS.
"""

from __future__ import annotations

import re
from typing import Any

from aihub.tests.upstream.openai_speech_sim import chunked, speech_audio
from aihub.tests.upstream.sim import Received, Reply, SimServer

VOICES = ("JBFqnCBsd6RMkjVDRZzb", "21m00Tcm4TlvDq8ikWAM")
MODELS = {"eleven_multilingual_v2": 10_000, "eleven_v3": 5_000, "eleven_flash_v2_5": 40_000, "eleven_turbo_v2_5": 40_000}
# output_format → (the simulator's format, Content-Type)
OUTPUT_FORMATS = {
    "mp3_44100_128": ("mp3", "audio/mpeg"),
    "mp3_22050_32": ("mp3", "audio/mpeg"),
    "pcm_24000": ("pcm", "audio/pcm"),
    "pcm_16000": ("pcm", "audio/pcm"),
    "opus_48000_128": ("opus", "audio/opus"),
}
_ROUTE = re.compile(r"/v1/text-to-speech/([^/]+)(/stream)?")


class ElevenLabsSim(SimServer):
    def error_body(self, status: int, message: str) -> Any:
        status_word = {401: "invalid_api_key", 404: "not_found", 429: "too_many_concurrent_requests"}.get(status, "internal_error")
        return {"detail": {"status": status_word, "message": message}}

    def handle(self, request: Received) -> Reply:
        found = _ROUTE.fullmatch(request.path.rstrip("/"))
        if request.method != "POST" or found is None:
            return Reply.json({"detail": "Not Found"}, status=404)
        if not request.headers.get("xi-api-key"):
            return self._detail(401, "needs_authorization", "Neither authorization header nor xi-api-key received, please provide one.")
        voice = found.group(1)
        body = request.json
        if not request.headers.get("content-type", "").startswith("application/json") or not isinstance(body, dict):
            return self._invalid(["body"], "Input should be a valid dictionary", "dict_type")
        text = body.get("text")
        if not isinstance(text, str):
            return self._invalid(["body", "text"], "Field required", "missing")
        model = body.get("model_id", "eleven_multilingual_v2")
        if model not in MODELS:
            return self._detail(400, "model_not_found", f"A model with model ID {model} does not exist.")
        output = request.query.get("output_format", "mp3_44100_128")
        if output not in OUTPUT_FORMATS:
            return self._invalid(["query", "output_format"], f"Input should be one of {', '.join(OUTPUT_FORMATS)}", "enum")
        settings = body.get("voice_settings") or {}
        speed = settings.get("speed", 1.0)
        if not isinstance(speed, (int, float)) or not 0.7 <= speed <= 1.2:
            return self._invalid(["body", "voice_settings", "speed"], "Input should be between 0.7 and 1.2", "less_than_equal")
        if len(text) > MODELS[model]:
            return self._detail(
                400, "max_character_limit_exceeded", f"Text is too long: {len(text)} characters; {model} takes at most {MODELS[model]}."
            )
        if voice not in VOICES:
            return self._detail(404, "voice_not_found", f"A voice with voice_id {voice} does not exist.")
        fmt, content_type = OUTPUT_FORMATS[output]
        return Reply(content_type=content_type, chunks=chunked(speech_audio(fmt, text, voice)))

    def _detail(self, status: int, word: str, message: str) -> Reply:
        return Reply.json({"detail": {"status": word, "message": message}}, status=status)

    def _invalid(self, loc: list[str], msg: str, kind: str) -> Reply:
        return Reply.json({"detail": [{"loc": loc, "msg": msg, "type": kind}]}, status=422)
