"""Speech recognition: POST /v1/ai/asr (City's parts), /v1/ai/audio/transcriptions and audio/translations (OpenAI's).

Every route: the audio checked (aihub/transcription_audio.py: 25 MB, its type, at most an hour) →
`admit` with the audio's seconds reserved (× the model's price per second, or its worst case in
tokens for the token-billed models, see `worst_asr`) → the upstream, asked for the richest shape
the model gives → the usage record in seconds (`units` the duration, rounded up), its cost from the
upstream's token usage where the model is billed by tokens → the answer in the shape asked for.

/v1/ai/asr takes a multipart upload (`file`, `model`, `language?`, `prompt?`) or JSON `{model,
data (base64, or a data: URL) | url, language?, prompt?, mime?}`; a `url` is fetched by
city/safe_fetch.py (never a private address, within the size and time limits).
"""

import base64
import binascii
import math
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpResponse, HttpResponseBase

from aihub.adapters import adapter_for
from aihub.adapters.base import MediaFile, Upstream
from aihub.adapters.openai_transcription import gives_segments
from aihub.catalog_types import ASR, Model
from aihub.estimate import Worst, count_tokens, worst_media
from aihub.pipeline import AiCall, admit, precheck
from aihub.transcription_audio import (
    AUDIO_TYPES,
    MAX_AUDIO_BYTES,
    Audio,
    check_size,
    measured,
    sniffed_extension,
    typed_file,
)
from aihub.transcription_render import FORMATS, NEEDS_SEGMENTS, openai_answer, parts_answer
from city.calls import Call
from city.errors import ApiError
from city.ids import new_id
from city.registry import USER, Action
from city.safe_fetch import FetchFailed, FetchRefused, FetchTooLarge, fetch

# The worst case of the token-billed models (gpt-4o-transcribe, gpt-4o-mini-transcribe), per second
# of audio. OpenAI's own estimate ($0.006 a minute at $6 per million audio tokens) is 1,000 audio
# tokens a minute, about 17 a second: 20 covers it. Speech runs at 2–4 tokens a second of text:
# 10 covers the fastest, with room. A prompt counts as its tokens plus a message's overhead.
AUDIO_TOKENS_PER_SECOND = 20
OUTPUT_TOKENS_PER_SECOND = 10
PROMPT_OVERHEAD_TOKENS = 16
# The fields each route takes (the file aside).
ASR_FIELDS = ("studio_id", "model", "data", "url", "mime", "language", "prompt")
TRANSCRIPTION_FIELDS = (
    "studio_id",
    "model",
    "language",
    "prompt",
    "response_format",
    "temperature",
    "timestamp_granularities",
    "include",
    "stream",
    "chunking_strategy",
)
TRANSLATION_FIELDS = ("studio_id", "model", "prompt", "response_format", "temperature")
GRANULARITIES = ("word", "segment")


# --- input ------------------------------------------------------------------------------------------


class AudioRequest:
    """The input spec of the three routes: their fields, each checked (form fields arrive as strings)."""

    def __init__(self, title: str, fields: tuple[str, ...]) -> None:
        self.title, self.fields = title, fields

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        data = _nested_chunking(data) if "chunking_strategy" in self.fields else data
        for name in data:
            if name == "file":
                raise ApiError(
                    400, "file must be an uploaded file (a multipart/form-data part with a filename).", param="file", code="invalid_type"
                )
            if name not in self.fields:
                raise ApiError(
                    400, f"{name} is not a field of this API; it takes {', '.join(self.fields)}.", param=name, code="unknown_field"
                )
        clean = dict(data)
        for name in ("studio_id", "model", "data", "url", "mime", "language", "prompt", "chunking_strategy"):
            if name in clean and clean[name] is not None and not isinstance(clean[name], str):
                if name == "chunking_strategy" and isinstance(clean[name], dict):
                    continue
                raise ApiError(400, f"{name} must be a string.", param=name, code="invalid_type")
        response_format = clean.get("response_format")
        if response_format is not None and response_format not in FORMATS:
            raise ApiError(400, f"response_format must be one of {', '.join(FORMATS)}.", param="response_format", code="unsupported_value")
        if clean.get("temperature") is not None:
            clean["temperature"] = _temperature(clean["temperature"])
        if clean.get("stream") not in (None, False, "false", "False"):
            raise ApiError(
                400, "Streamed transcriptions are not supported by City; leave stream out.", param="stream", code="unsupported_value"
            )
        clean.pop("stream", None)
        for name, allowed in (("timestamp_granularities", GRANULARITIES), ("include", ("logprobs",))):
            if clean.get(name) is not None:
                values = clean[name] if isinstance(clean[name], list) else [clean[name]]
                if not all(isinstance(v, str) and v in allowed for v in values):
                    raise ApiError(400, f"{name} takes {' and '.join(allowed)}.", param=name, code="invalid_value")
                clean[name] = values
        if clean.get("timestamp_granularities") and clean.get("response_format") != "verbose_json":
            raise ApiError(
                400,
                "timestamp_granularities needs response_format verbose_json.",
                param="timestamp_granularities",
                code="invalid_value",
            )
        return clean

    def json_schema(self) -> dict[str, Any]:
        text = {"type": "string"}
        known: dict[str, Any] = {
            "studio_id": text,
            "model": text,
            "data": {"type": "string", "description": "The audio, base64 (or a data: URL)."},
            "url": {"type": "string", "description": "An http(s) URL of the audio; private addresses are refused."},
            "mime": {"type": "string", "description": "The audio's content type, e.g. audio/wav."},
            "language": {"type": "string", "description": "ISO-639-1 code of the spoken language."},
            "prompt": text,
            "response_format": {"enum": list(FORMATS)},
            "temperature": {"type": "number", "minimum": 0, "maximum": 1},
            "timestamp_granularities": {"type": "array", "items": {"enum": list(GRANULARITIES)}},
            "include": {"type": "array", "items": {"enum": ["logprobs"]}},
            "stream": {"const": False},
            "chunking_strategy": {"anyOf": [text, {"type": "object"}]},
        }
        properties = {name: known[name] for name in self.fields}
        properties["file"] = {"type": "string", "format": "binary", "description": "The audio file (multipart/form-data)."}
        return {"title": self.title, "type": "object", "properties": properties, "required": ["model"], "additionalProperties": False}


def _nested_chunking(data: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI SDK sends an object field in multipart as one field per key, `chunking_strategy[type]`
    and so on: gather them back into the object."""
    found = {name[len("chunking_strategy[") : -1]: value for name, value in data.items() if _is_chunking_key(name)}
    if not found:
        return data
    if "chunking_strategy" in data:
        raise ApiError(400, "Send chunking_strategy once: as a string or as its fields.", param="chunking_strategy", code="invalid_value")
    for key, value in found.items():
        if not key or not isinstance(value, str):
            raise ApiError(400, f"chunking_strategy[{key}] must be one string.", param="chunking_strategy", code="invalid_value")
    rest = {name: value for name, value in data.items() if not _is_chunking_key(name)}
    return {**rest, "chunking_strategy": found}


def _is_chunking_key(name: str) -> bool:
    return name.startswith("chunking_strategy[") and name.endswith("]")


def _temperature(value: Any) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or not 0 <= number <= 1:
        raise ApiError(400, "temperature must be a number from 0 to 1.", param="temperature", code="invalid_value")
    return number


ASR_REQUEST = AudioRequest("AsrRequest", ASR_FIELDS)
TRANSCRIPTION_REQUEST = AudioRequest("CreateTranscriptionRequest", TRANSCRIPTION_FIELDS)
TRANSLATION_REQUEST = AudioRequest("CreateTranslationRequest", TRANSLATION_FIELDS)


# --- the audio ----------------------------------------------------------------------------------------


async def uploaded(call: Call) -> MediaFile | None:
    """The multipart `file`, checked for size (before it is read) and type; None when none was sent."""
    files = call.files.get("file") or []
    if len(files) > 1:
        raise ApiError(400, "Send one file.", param="file", code="invalid_value")
    if not files:
        return None
    upload: UploadedFile = files[0]
    check_size(upload.size or 0)
    data = await sync_to_async(upload.read)()  # a large upload is spooled to disk
    return typed_file(upload.name or "", data, upload.content_type or "")


def from_base64(value: str, mime: str | None) -> MediaFile:
    if value.startswith("data:"):
        header, _, value = value.partition(",")
        mime = mime or header[5:].split(";")[0]
    if len(value) * 3 // 4 > MAX_AUDIO_BYTES + 2:  # over the limit before decoding it
        check_size(len(value) * 3 // 4, "data")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "data must be the audio in base64 (or a data: URL).", param="data", code="invalid_value") from None
    check_size(len(data), "data")
    return typed_file(_name_for(data, mime), data, mime or "", param="data")


async def from_url(url: str, mime: str | None) -> MediaFile:
    try:
        fetched = await fetch(url, max_bytes=MAX_AUDIO_BYTES)
    except FetchTooLarge:
        raise ApiError(
            413, f"The audio at the URL is over the limit of {MAX_AUDIO_BYTES:,} bytes (25 MB).", param="url", code="file_too_large"
        ) from None
    except FetchRefused as exc:
        raise ApiError(400, str(exc), param="url", code="url_not_allowed") from None
    except FetchFailed as exc:
        raise ApiError(400, str(exc), param="url", code="url_unreachable") from None
    name = PurePosixPath(urlsplit(fetched.url).path).name
    content_type = mime or fetched.content_type
    if PurePosixPath(name).suffix.lower().lstrip(".") not in AUDIO_TYPES:  # /download.php?id=… names nothing
        name = _name_for(fetched.data, content_type)
    return typed_file(name, fetched.data, content_type, param="url")


def _name_for(data: bytes, mime: str | None) -> str:
    """A name for audio sent without one: its sniffed type when its content type says nothing."""
    sniffed = sniffed_extension(data)
    return f"audio.{sniffed}" if sniffed and not mime else "audio"


async def asr_audio(call: Call) -> Audio:
    """The one audio of a /v1/ai/asr request: `file`, `data` or `url`."""
    sources = [name for name in ("data", "url") if call.data.get(name)] + (["file"] if call.files.get("file") else [])
    if len(sources) != 1:
        raise ApiError(
            400,
            "Send the audio once: a multipart `file`, or JSON with `data` (base64) or `url`.",
            param="file" if not sources else sources[1],
            code="missing_field" if not sources else "invalid_value",
        )
    mime = call.data.get("mime")
    if sources[0] == "file":
        file = await uploaded(call)
        assert file is not None
        return measured(file)
    if sources[0] == "data":
        return measured(from_base64(call.data["data"], mime), "data")
    return measured(await from_url(call.data["url"], mime), "url")


async def openai_audio(call: Call) -> Audio:
    file = await uploaded(call)
    if file is None:
        raise ApiError(400, "file is required: send the audio as a multipart/form-data file part.", param="file", code="missing_field")
    return measured(file)


# --- cost ----------------------------------------------------------------------------------------------


def token_billed(model: Model) -> bool:
    return bool(model.input_price or model.output_price)


def worst_asr(model: Model, audio: Audio, prompt: str | None) -> Worst:
    """Seconds × the price a second; for token-billed models the worst case in tokens (see the constants)
    at no price a second, which also covers billing the duration when no usage comes back."""
    if not token_billed(model):
        return worst_media(model, audio.units)
    prompt_tokens = count_tokens(model, prompt) + PROMPT_OVERHEAD_TOKENS if prompt else 0
    return worst_media(
        model,
        audio.units,
        0,
        input_tokens=audio.units * AUDIO_TOKENS_PER_SECOND + prompt_tokens,
        output_tokens=audio.units * OUTPUT_TOKENS_PER_SECOND,
    )


def bill(ai: AiCall, audio: Audio, answer: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """Put what was used on the meter: the seconds (measured; else the upstream's; else the estimate)
    and, for token-billed models, the upstream's tokens (or, without them, the seconds at the model's
    price a second). Never past what was reserved: the reservation is what the plan's cap and budget
    were checked against, and an estimated duration or the upstream's token count can run over it.
    Returns the duration and the usage an OpenAI json answer shows."""
    meter, model = ai.meter, ai.model
    reported = answer.get("duration")
    seconds = audio.seconds
    if not audio.measured and isinstance(reported, (int, float)) and not isinstance(reported, bool) and reported > 0:
        seconds = float(reported)
    meter.units = min(max(1, math.ceil(seconds)), meter.worst_units)
    usage = answer.get("usage")
    if token_billed(model):
        tokens = _token_usage(usage)
        if tokens is not None:
            given, made = tokens
            meter.prompt_tokens, meter.completion_tokens = min(given, meter.ceiling[0]), min(made, meter.ceiling[1])
            return seconds, usage  # type: ignore[return-value]  # _token_usage checked it is a dict
        meter.unit_price = model.unit_price
    return seconds, {"type": "duration", "seconds": meter.units}


def _token_usage(usage: Any) -> tuple[int, int] | None:
    if not isinstance(usage, dict) or usage.get("type") != "tokens":
        return None
    given, made = usage.get("input_tokens"), usage.get("output_tokens")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (given, made)):
        return None
    return given, made  # type: ignore[return-value]  # checked just above


def city_usage(ai: AiCall) -> dict[str, int]:
    usage = {"seconds": ai.meter.units}
    if ai.meter.prompt_tokens or ai.meter.completion_tokens:
        usage.update(input_tokens=ai.meter.prompt_tokens, output_tokens=ai.meter.completion_tokens)
    return usage


# --- the upstream ----------------------------------------------------------------------------------


def no_method(model_id: str, what: str) -> ApiError:
    return ApiError(400, f"The model '{model_id}' does not offer {what}.", param="model", code="unsupported_model")


def upstream_body(data: dict[str, Any]) -> dict[str, Any]:
    return {
        k: data[k] for k in ("language", "prompt", "temperature", "timestamp_granularities", "include", "chunking_strategy") if k in data
    }


# --- the routes ------------------------------------------------------------------------------------


async def asr(call: Call) -> HttpResponseBase:
    """POST /v1/ai/asr: the transcript as City's parts."""
    if call.data.get("url") is not None:
        await precheck(call, call.data.get("model"), (ASR,))  # a refused caller makes City fetch nothing
    audio = await asr_audio(call)
    body = upstream_body(call.data)
    ai = await admit(call, call.data.get("model"), (ASR,), "asr", lambda model: worst_asr(model, audio, body.get("prompt")))
    async with ai:
        answer = await ai.answer(lambda up: adapter_for(up).transcribe(up, body, audio.file))
        seconds, _ = bill(ai, audio, answer)
        return await ai.respond(parts_answer(new_id("asr"), ai.model.id, answer, round(seconds, 3), city_usage(ai)))


async def transcriptions(call: Call) -> HttpResponseBase:
    """POST /v1/ai/audio/transcriptions: OpenAI's answer in the response_format asked for."""
    return await _openai_route(call, "transcribe")


async def translations(call: Call) -> HttpResponseBase:
    """POST /v1/ai/audio/translations: the audio's speech in English, as OpenAI answers it."""
    return await _openai_route(call, "translate")


async def _openai_route(call: Call, task: str) -> HttpResponseBase:
    audio = await openai_audio(call)
    body = upstream_body(call.data)
    response_format = call.data.get("response_format") or "json"
    model_id = call.data.get("model")

    def prepare(upstreams: list[Upstream]) -> None:
        segments = all(up.adapter == "deepgram" or gives_segments(up.model) for up in upstreams)
        if task == "translate" and not all(up.adapter == "openai" and gives_segments(up.model) for up in upstreams):
            raise no_method(str(model_id), "translations (OpenAI translates with whisper-1)")
        if response_format in NEEDS_SEGMENTS and not segments:
            raise ApiError(
                400,
                f"response_format '{response_format}' is not available with '{model_id}', which gives no segments: use json or text.",
                param="response_format",
                code="unsupported_value",
            )

    ai = await admit(call, model_id, (ASR,), "asr", lambda model: worst_asr(model, audio, body.get("prompt")), prepare)
    async with ai:
        if task == "translate":
            answer = await ai.answer(lambda up: adapter_for(up).translate(up, body, audio.file))
        else:
            answer = await ai.answer(lambda up: adapter_for(up).transcribe(up, body, audio.file))
        seconds, usage = bill(ai, audio, answer)
        rendered = openai_answer(
            answer,
            response_format,
            task=task,
            duration=round(seconds, 3),
            usage=usage,
            seconds=ai.meter.units,
            granularities=call.data.get("timestamp_granularities") or [],
            language=call.data.get("language"),
        )
        if isinstance(rendered, str):
            return await ai.respond_with(HttpResponse(rendered, content_type="text/plain; charset=utf-8"))
        return await ai.respond(rendered)


JSON_OR_TEXT = ("application/json", "text/plain")

ACTIONS: tuple[Action, ...] = (
    Action(
        "asr",
        asr,
        allow=(USER,),
        input=ASR_REQUEST,
        upload=True,
        description="Speech to text: a multipart `file`, or JSON with base64 `data` or a `url` → the transcript as parts, "
        "with language, duration and segments when the model gives them.",
    ),
    Action(
        "audio/transcriptions",
        transcriptions,
        allow=(USER,),
        input=TRANSCRIPTION_REQUEST,
        upload=True,
        responds=JSON_OR_TEXT,
        description="OpenAI audio transcriptions (multipart): json, text, srt, vtt or verbose_json where the model gives segments.",
    ),
    Action(
        "audio/translations",
        translations,
        allow=(USER,),
        input=TRANSLATION_REQUEST,
        upload=True,
        responds=JSON_OR_TEXT,
        description="OpenAI audio translations to English (multipart, whisper-1).",
    ),
)
ALIASES: dict[str, str] = {"audio/transcriptions": "audio/transcriptions", "audio/translations": "audio/translations"}
