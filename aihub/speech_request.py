"""A text-to-speech request, as City's /v1/ai/tts and OpenAI's audio/speech take it: its shape (the
routes' InputSpecs), its checks against the model's catalog entry (voices, formats, length, speed,
instructions; aihub/catalog_speech.py), and what it costs.

Cost. Characters are billed as sent (`len(text)`, Unicode code points, as OpenAI and ElevenLabs
count them). gpt-4o-mini-tts bills tokens instead, and its raw-audio answer reports none, so City
counts them: the text and instructions as input tokens (aihub/estimate.py count_tokens), and audio
output tokens from the audio's length at AUDIO_TOKENS_PER_MINUTE (OpenAI's own estimate of the
model: $0.015 a minute at $12 per million audio tokens). That length is measured where the format
tells it (pcm, and wav's PCM data: 24 kHz, 16-bit, mono), else expected from the text at
EXPECTED_CHARACTERS_PER_SECOND over `speed`. The reservation assumes the slowest plausible speech
(SLOWEST_CHARACTERS_PER_SECOND, and no speed-up: instructions may ask for slow, dramatic reading)
and no less than SHORTEST_RESERVED_SECONDS (a word alone still makes a second or so of audio), and a
settlement never bills past it. A client that asks for OpenAI's speech events (`stream_format:
"sse"`) is billed the usage their last event reports instead, within the reservation too.
"""

import math
import re
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from aihub.catalog_types import Model
from aihub.estimate import Worst, count_tokens, worst_media
from aihub.openai_request import NUMBER, STRING, Choice, Either, JsonSchema, Object, Shape
from city.errors import ApiError

FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
MIME_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
DEFAULT_FORMAT = "mp3"  # OpenAI's default
MAX_INSTRUCTIONS_CHARACTERS = 4096  # OpenAI's CreateSpeechRequest.instructions maxLength
# ElevenLabs voice ids: 20 letters and digits. Checked before one is put in an upstream URL path.
ELEVENLABS_VOICE_ID = re.compile(r"[A-Za-z0-9]{20}")

AUDIO_TOKENS_PER_MINUTE = 1250
EXPECTED_CHARACTERS_PER_SECOND = 15  # about 150 words a minute at speed 1.0
SLOWEST_CHARACTERS_PER_SECOND = 8  # slow, deliberate reading
SHORTEST_RESERVED_SECONDS = 2
PCM_BYTES_PER_SECOND = 48_000  # 24,000 samples of 2 bytes
WAV_HEADER_BYTES = 44


@dataclass(frozen=True)
class Names:
    """A route's names for the fields that differ between City's API and OpenAI's."""

    text: str
    format: str


CITY_NAMES = Names("text", "format")
OPENAI_NAMES = Names("input", "response_format")


@dataclass(frozen=True)
class Speech:
    """One request, whichever route it came by."""

    model: str
    text: str
    voice: str | dict[str, Any] | None
    format: str | None
    speed: float | None
    instructions: str | None
    names: Names
    stream_format: str = "audio"  # OpenAI's route only: "sse" asks for OpenAI's speech events

    @property
    def characters(self) -> int:
        return len(self.text)

    @property
    def audio_format(self) -> str:
        return self.format or DEFAULT_FORMAT

    def with_format(self, fmt: str) -> "Speech":
        return replace(self, format=fmt)

    def upstream_body(self, model: Model) -> dict[str, Any]:
        """OpenAI's audio/speech body (every adapter takes that shape), the model's defaults filled in."""
        body: dict[str, Any] = {
            "model": model.id,
            "input": self.text,
            "voice": self.voice if self.voice is not None else model.meta.get("default_voice"),
            "response_format": self.audio_format,
        }
        if self.speed is not None:
            body["speed"] = self.speed
        if self.instructions:
            body["instructions"] = self.instructions
        if self.stream_format == "sse":
            body["stream_format"] = "sse"
        return body


# --- The routes' input specs --------------------------------------------------------------------

CUSTOM_VOICE = Object({"id": STRING}, required=["id"], noun='an object {"id": "voice_…"}')


class SpeechInput:
    """A route's InputSpec: its fields' types, and no field it does not know."""

    def __init__(self, title: str, fields: dict[str, Shape], required: list[str], names: Names) -> None:
        self.title, self.names = title, names
        self.shape = Object(fields, required=required)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        for name in data:
            if name not in self.shape.fields:
                raise ApiError(
                    400,
                    f"{name} is not a field of this API: it takes {', '.join(self.shape.fields)}.",
                    param=name,
                    code="unknown_field",
                )
        self.shape.check(data, "")
        if data[self.names.text] == "":
            raise ApiError(400, f"{self.names.text} must not be empty: the text to speak.", param=self.names.text, code="invalid_value")
        return data

    def speech(self, data: dict[str, Any]) -> Speech:
        """The validated data as a Speech."""
        speed = data.get("speed")
        return Speech(
            model=data["model"],
            text=data[self.names.text],
            voice=data.get("voice"),
            format=data.get(self.names.format),
            speed=float(speed) if speed is not None else None,
            instructions=data.get("instructions"),
            names=self.names,
            stream_format=data.get("stream_format") or "audio",
        )

    def json_schema(self) -> JsonSchema:
        schema = {"title": self.title, **self.shape.schema()}
        schema["additionalProperties"] = False
        return schema


TTS_REQUEST = SpeechInput(
    "TextToSpeechRequest",
    {
        "model": STRING,
        "text": STRING,
        "voice": STRING,
        "format": Choice(*FORMATS),
        "speed": NUMBER,
        "instructions": STRING,
        "studio_id": STRING,
    },
    ["model", "text"],
    CITY_NAMES,
)
SPEECH_REQUEST = SpeechInput(
    "CreateSpeechRequest",
    {
        "model": STRING,
        "input": STRING,
        "voice": Either(STRING, CUSTOM_VOICE, noun='a voice name or an object {"id": "voice_…"}'),
        "instructions": STRING,
        "response_format": Choice(*FORMATS),
        "speed": NUMBER,
        "stream_format": Choice("audio", "sse"),
        "studio_id": STRING,
    },
    ["model", "input", "voice"],
    OPENAI_NAMES,
)


# --- Checks against the model -------------------------------------------------------------------


def check_for_model(model: Model, ask: Speech) -> None:
    """What the model takes, from its catalog entry; a 400 naming the first field it does not."""
    meta, names = model.meta, ask.names
    limit = meta.get("max_characters")
    if isinstance(limit, int) and ask.characters > limit:
        raise ApiError(
            400,
            f"{names.text} is {ask.characters:,} characters long; {model.id} takes at most {limit:,} a request: split the text.",
            param=names.text,
            code="text_too_long",
        )
    _check_voice(model, ask.voice)
    formats = meta.get("formats") or FORMATS
    if ask.audio_format not in formats:
        raise ApiError(
            400,
            f"{names.format} '{ask.audio_format}' is not one {model.id} can answer; it answers {', '.join(formats)}.",
            param=names.format,
            code="unsupported_value",
        )
    speed = meta.get("speed")
    if ask.speed is not None and isinstance(speed, dict) and not speed["min"] <= ask.speed <= speed["max"]:
        raise ApiError(
            400,
            f"speed must be from {speed['min']} to {speed['max']} for {model.id} (1.0 is normal).",
            param="speed",
            code="invalid_value",
        )
    if ask.stream_format == "sse" and not meta.get("sse"):
        raise ApiError(
            400,
            f"{model.id} answers no speech events: leave out stream_format 'sse' to have the audio streamed (gpt-4o-mini-tts takes it).",
            param="stream_format",
            code="unsupported_value",
        )
    if ask.instructions is not None:
        if not meta.get("instructions"):
            raise ApiError(
                400, f"{model.id} takes no instructions (gpt-4o-mini-tts does).", param="instructions", code="unsupported_parameter"
            )
        if len(ask.instructions) > MAX_INSTRUCTIONS_CHARACTERS:
            raise ApiError(
                400,
                f"instructions are {len(ask.instructions):,} characters long; at most {MAX_INSTRUCTIONS_CHARACTERS:,} are taken.",
                param="instructions",
                code="text_too_long",
            )


def _check_voice(model: Model, voice: str | dict[str, Any] | None) -> None:
    if voice is None:
        return
    voices = model.meta.get("voices")
    if isinstance(voice, dict):
        if not model.meta.get("custom_voices"):
            raise ApiError(400, f"{model.id} takes no custom voices: name one of its voices.", param="voice", code="invalid_value")
        return
    if voices is None:
        if ELEVENLABS_VOICE_ID.fullmatch(voice) is None:
            raise ApiError(
                400,
                f"voice must be an ElevenLabs voice id for {model.id}: 20 letters and digits, such as "
                f"'{model.meta.get('default_voice')}' (ElevenLabs' GET /v1/voices lists yours).",
                param="voice",
                code="invalid_value",
            )
        return
    if voice not in voices:
        raise ApiError(
            400,
            f"voice '{voice[:50]}' is not a voice of {model.id}; its voices are {', '.join(voices)}.",
            param="voice",
            code="invalid_value",
        )


# --- Cost ---------------------------------------------------------------------------------------


def token_priced(model: Model) -> bool:
    return bool(model.input_price or model.output_price)


def input_tokens(model: Model, ask: Speech) -> int:
    return count_tokens(model, ask.text) + (count_tokens(model, ask.instructions) if ask.instructions else 0)


def audio_tokens(characters: int, speed: float, characters_per_second: int) -> int:
    """Audio tokens of `characters` read at `characters_per_second` × `speed`, rounded up."""
    seconds = Fraction(characters) / (characters_per_second * Fraction(str(speed)))
    return math.ceil(seconds * AUDIO_TOKENS_PER_MINUTE / 60)


def worst_speech(model: Model, ask: Speech) -> Worst:
    if not token_priced(model):
        return worst_media(model, ask.characters)
    slowest = min(ask.speed or 1.0, 1.0)
    shortest = -(-SHORTEST_RESERVED_SECONDS * AUDIO_TOKENS_PER_MINUTE // 60)
    return worst_media(
        model,
        ask.characters,
        input_tokens=input_tokens(model, ask),
        output_tokens=max(audio_tokens(ask.characters, slowest, SLOWEST_CHARACTERS_PER_SECOND), shortest),
    )


def speech_tokens(ask: Speech, audio_bytes: int | None) -> int:
    """The audio output tokens of what was made: measured from PCM's length, else expected from the text."""
    if audio_bytes is not None and ask.audio_format in ("pcm", "wav"):
        samples = audio_bytes - (WAV_HEADER_BYTES if ask.audio_format == "wav" else 0)
        return math.ceil(Fraction(max(samples, 0), PCM_BYTES_PER_SECOND) * AUDIO_TOKENS_PER_MINUTE / 60)
    return audio_tokens(ask.characters, ask.speed or 1.0, EXPECTED_CHARACTERS_PER_SECOND)


def usage_of(model: Model, ask: Speech, prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """The `usage` of City's JSON answer."""
    usage = {"characters": ask.characters}
    if token_priced(model):
        usage.update(input_tokens=prompt_tokens, output_tokens=completion_tokens)
    return usage
