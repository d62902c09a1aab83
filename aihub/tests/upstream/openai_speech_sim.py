"""OpenAI speech: POST /audio/speech, mixed into the provider's simulator.

Checked as OpenAI's API reference ("Create speech") describes the request: a bearer key, a JSON body
of known fields only, `model`, `input` (at most 4,096 characters) and `voice` required, the voice one
of the model's, `response_format` one of six, `speed` 0.25–4.0, `instructions` not for tts-1 and
tts-1-hd. The answer is audio of the asked format (`speech_audio`: deterministic, so a test can
compare what reached it byte for byte), streamed in CHUNK_BYTES chunks with the format's Content-Type;
with `stream_format: "sse"` (gpt-4o-mini-tts only), OpenAI's speech events (`speech_events`).
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from collections.abc import Callable
from typing import Any

from aihub.tests.upstream.sim import Received, Reply, sse

CHUNK_BYTES = 4096
MAX_INPUT = 4096
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse", "marin", "cedar")
# The voices tts-1 and tts-1-hd lack.
NEWER_VOICES = ("ballad", "verse", "marin", "cedar")
MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
FIELDS = ("model", "input", "voice", "instructions", "response_format", "speed", "stream_format")
SECONDS_PER_CHARACTER = 1 / 15  # how long the simulated speech runs
AUDIO_TOKENS_PER_MINUTE = 1250  # gpt-4o-mini-tts's audio output tokens, by OpenAI's pricing page
MP3_FRAME = 417  # bytes of an MPEG-1 Layer III frame at 128 kbit/s, 44.1 kHz, unpadded
MP3_HEADER = b"\xff\xfb\x90\x64"  # its frame header: sync, MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, stereo


def speech_audio(fmt: str, text: str, voice: str = "", seconds: float | None = None) -> bytes:
    """The audio the simulators make for `text`: the format's real framing around deterministic noise."""
    length = seconds if seconds is not None else max(len(text), 1) * SECONDS_PER_CHARACTER
    seed = hashlib.sha256(f"{fmt}|{voice}|{text}".encode()).digest()
    if fmt in ("pcm", "wav"):
        samples = _noise(seed, int(length * 24_000) * 2)
        return _wav_header(len(samples)) + samples if fmt == "wav" else samples
    if fmt == "mp3":
        frames = max(1, int(length * 44_100 / 1152))
        return b"".join(MP3_HEADER + _noise(seed + bytes([i % 256]), MP3_FRAME - 4) for i in range(frames))
    body = _noise(seed, int(length * 4_000))  # about 32 kbit/s
    prefix = {"opus": b"OggS\x00\x02", "flac": b"fLaC\x00\x00\x00\x22", "aac": b"\xff\xf1\x50\x80"}[fmt]
    return prefix + body


def _noise(seed: bytes, size: int) -> bytes:
    block = hashlib.sha512(seed).digest()
    return (block * (size // len(block) + 1))[:size]


def _wav_header(data_bytes: int) -> bytes:
    """RIFF/WAVE, PCM, 24 kHz, 16-bit, mono: the form OpenAI's wav takes."""
    rate, channels, bits = 24_000, 1, 16
    block = channels * bits // 8
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def chunked(audio: bytes, size: int = CHUNK_BYTES) -> list[bytes]:
    return [audio[i : i + size] for i in range(0, len(audio), size)] or [b""]


def speech_events(text: str, audio: bytes, output_tokens: int | None = None) -> list[str]:
    """OpenAI's speech events for `audio`: a `speech.audio.delta` per chunk, then `speech.audio.done`
    with the usage (the simulator's own count: a token per 4 characters in, and out the audio's length
    at AUDIO_TOKENS_PER_MINUTE, OpenAI's rate; or `output_tokens`)."""
    deltas = [sse({"type": "speech.audio.delta", "audio": base64.b64encode(piece).decode()}) for piece in chunked(audio)]
    seconds = max(len(text), 1) * SECONDS_PER_CHARACTER
    input_tokens = -(-len(text) // 4)
    if output_tokens is None:
        output_tokens = math.ceil(seconds * AUDIO_TOKENS_PER_MINUTE / 60)
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}
    return [*deltas, sse({"type": "speech.audio.done", "usage": usage})]


class SpeechRoutes:
    error_body: Callable[[int, str], Any]  # OpenAISim's error shape
    # The output tokens the speech events report, in place of the simulator's count (None).
    speech_output_tokens: int | None = None

    def speech_route(self, request: Received) -> Reply | None:
        """The answer when `request` is one of these routes, else None."""
        if request.method != "POST" or not request.path.rstrip("/").endswith("/audio/speech"):
            return None
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth.removeprefix("Bearer ").strip():
            return self._refuse(401, "You didn't provide an API key.", None, "invalid_api_key")
        if not request.headers.get("content-type", "").startswith("application/json") or not isinstance(request.json, dict):
            return self._refuse(400, "The body must be a JSON object.", None, None)
        body: dict[str, Any] = request.json
        unknown = [name for name in body if name not in FIELDS]
        if unknown:
            return self._refuse(400, f"Unrecognized request argument supplied: {unknown[0]}", unknown[0], "unknown_parameter")
        for name in ("model", "input", "voice"):
            if body.get(name) in (None, ""):
                return self._refuse(400, f"Missing required parameter: '{name}'.", name, "missing_required_parameter")
        model, text, voice = body["model"], body["input"], body["voice"]
        if model not in MODELS:
            return self._refuse(404, f"The model `{model}` does not exist or you do not have access to it.", "model", "model_not_found")
        if not isinstance(text, str) or len(text) > MAX_INPUT:
            return self._refuse(400, f"Invalid 'input': string too long. Expected a string with maximum length {MAX_INPUT}.", "input", None)
        voices = VOICES if model == "gpt-4o-mini-tts" else tuple(v for v in VOICES if v not in NEWER_VOICES)
        if not (isinstance(voice, dict) and model == "gpt-4o-mini-tts") and voice not in voices:
            listed = ", ".join(f"'{v}'" for v in voices)
            return self._refuse(400, f"Invalid value: '{voice}'. Supported values are: {listed}.", "voice", "invalid_value")
        fmt = body.get("response_format", "mp3")
        if fmt not in CONTENT_TYPES:
            return self._refuse(400, f"Invalid value: '{fmt}'.", "response_format", "invalid_value")
        speed = body.get("speed", 1.0)
        if not isinstance(speed, (int, float)) or isinstance(speed, bool) or not 0.25 <= speed <= 4.0:
            return self._refuse(400, f"Invalid 'speed': {speed}. Expected a value from 0.25 to 4.0.", "speed", "invalid_value")
        if body.get("instructions") is not None and model != "gpt-4o-mini-tts":
            return self._refuse(400, f"instructions are not supported with {model}.", "instructions", "unsupported_parameter")
        audio = speech_audio(fmt, text, voice if isinstance(voice, str) else voice["id"])
        if body.get("stream_format", "audio") == "sse":
            if model != "gpt-4o-mini-tts":
                return self._refuse(400, f"stream_format 'sse' is not supported with {model}.", "stream_format", "invalid_value")
            return Reply.sse(speech_events(text, audio, self.speech_output_tokens))
        return Reply(content_type=CONTENT_TYPES[fmt], chunks=chunked(audio))

    def _refuse(self, status: int, message: str, param: str | None, code: str | None) -> Reply:
        error = self.error_body(status, message)
        error["error"].update(param=param, code=code)
        return Reply.json(error, status=status)
