"""Text-to-speech: POST /v1/ai/tts (City's parts, or raw audio) and /v1/ai/audio/speech (OpenAI's).

/v1/ai/tts `{model, text, voice?, format?, speed?, instructions?, studio_id?}` answers
`{id, model, parts: [{type: "audio", data (base64), mime}], usage: {characters, input_tokens?,
output_tokens?}}`; with `Accept: audio/*` (or one audio type, which picks the format when `format`
is not given) it answers the audio itself, streamed as the upstream makes it.
/v1/ai/audio/speech and its twin /v1/audio/speech take OpenAI's CreateSpeechRequest and answer the
audio, streamed, as OpenAI does; with `stream_format: "sse"` (gpt-4o-mini-tts), OpenAI's speech
events as the upstream sends them, whose last one reports the usage City bills.

Each call reserves its characters (and, for token-priced models, its worst-case tokens; see
aihub/speech_request.py) before the upstream call. Retries and fail-over happen before the first
byte (the adapters check the status before handing the audio over). A streamed call is billed when
the upstream's answer ends, before City's ends; a client that leaves mid-stream is billed the same
(the upstream bills the text it was sent) and recorded as 499; an upstream that breaks mid-stream
is recorded as 502 and billed, and the audio's connection cut short (its events end with an error
event instead; see `relayed`).
"""

import asyncio
import base64
import logging
from collections.abc import AsyncGenerator, Sequence
from typing import Any, cast

import orjson
from django.http import HttpResponseBase

from aihub.adapters import adapter_for
from aihub.adapters.base import MediaStream, Upstream, UpstreamError
from aihub.catalog_types import TTS
from aihub.metering import CLIENT_CLOSED, Meter
from aihub.pipeline import AiCall, admit
from aihub.speech_request import (
    DEFAULT_FORMAT,
    FORMATS,
    MIME_TYPES,
    SPEECH_REQUEST,
    TTS_REQUEST,
    Speech,
    check_for_model,
    speech_tokens,
    token_priced,
    usage_of,
    worst_speech,
)
from aihub.streaming import EventStreamResponse, data_frame, error_payload
from aihub.upstreams import known_model
from city.calls import Call
from city.errors import ApiError
from city.ids import new_id
from city.registry import USER, Action

log = logging.getLogger("aihub.speech")

# The most audio City holds to answer as base64 JSON; longer audio is asked for with Accept: audio/*.
MAX_BUFFERED_AUDIO_BYTES = 32 * 1024 * 1024
# Accept types that name a format (beside MIME_TYPES' own).
AUDIO_TYPE_FORMATS = {
    **{mime: fmt for fmt, mime in MIME_TYPES.items()},
    "audio/mp3": "mp3",
    "audio/ogg": "opus",
    "audio/x-flac": "flac",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
}


async def tts(call: Call) -> HttpResponseBase:
    """POST /v1/ai/tts: City's parts, or the raw audio when the client accepts audio."""
    ask = TTS_REQUEST.speech(call.data)
    model = known_model(ask.model)
    takes = (model.meta.get("formats") or FORMATS) if TTS in model.modalities else FORMATS
    raw = raw_audio_format(call.request.headers.get("Accept", ""), ask, takes)
    if raw is not None:
        ask = ask.with_format(raw)
    ai = await admitted(call, ask)
    async with ai:
        body = ask.upstream_body(ai.model)
        if raw is not None:
            ai.meter.streamed = True
            stream = cast(MediaStream, await ai.answer(lambda up: opened(up, body)))
            return streamed(ai, stream, ask)
        audio = cast(bytes, await ai.answer(lambda up: whole(up, body, ai.meter, ask)))
        settle(ai.meter, ask, len(audio))
        answer = {
            "id": new_id("tts"),
            "model": ai.model.id,
            "parts": [{"type": "audio", "data": base64.b64encode(audio).decode(), "mime": MIME_TYPES[ask.audio_format]}],
            "usage": usage_of(ai.model, ask, ai.meter.prompt_tokens, ai.meter.completion_tokens),
        }
        return await ai.respond(answer)


async def audio_speech(call: Call) -> HttpResponseBase:
    """POST /v1/ai/audio/speech (and /v1/audio/speech): OpenAI's, the audio (or its events) streamed."""
    ask = SPEECH_REQUEST.speech(call.data)
    ai = await admitted(call, ask)
    async with ai:
        ai.meter.streamed = True
        body = ask.upstream_body(ai.model)
        stream = cast(MediaStream, await ai.answer(lambda up: opened(up, body)))
        return streamed(ai, stream, ask)


def streamed(ai: AiCall, stream: MediaStream, ask: Speech) -> EventStreamResponse:
    """The opened upstream answer relayed to the client: the audio, or (sse) OpenAI's speech events."""
    if ask.stream_format == "sse":
        response = ai.events(relayed(ai.meter, stream, ask, SpeechDone()))
    else:
        response = ai.events(relayed(ai.meter, stream, ask), content_type=MIME_TYPES[ask.audio_format])
    closed_with(response, ai.meter, stream, ask)
    return response


# Upstream answers being closed for responses never relayed: a task nobody holds may be collected.
_closing: set["asyncio.Task[None]"] = set()


def closed_with(response: EventStreamResponse, meter: Meter, stream: MediaStream, ask: Speech) -> None:
    """A client gone after the upstream answered but before `relayed` began (Django drops the
    response unsent and only calls its close()): the call is billed as `relayed` bills a client
    that leaves, and the upstream answer closed then, not when the garbage collector finds it.
    After a relay this changes nothing: the meter is finished and the stream closed."""
    loop = asyncio.get_running_loop()

    def close() -> None:  # Django calls it from a worker thread (sync_to_async)
        if not loop.is_closed():
            loop.call_soon_threadsafe(_never_relayed, meter, stream, ask)

    # What HttpResponseBase.close() runs (Django registers its own closers there); the stubs omit it.
    response._resource_closers.append(close)  # type: ignore[attr-defined]


def _never_relayed(meter: Meter, stream: MediaStream, ask: Speech) -> None:
    if not meter.finished:
        settle(meter, ask, None)
        meter.finish(CLIENT_CLOSED, "client_closed")
    task = asyncio.ensure_future(_close(stream))
    _closing.add(task)
    task.add_done_callback(_closing.discard)


async def _close(stream: MediaStream) -> None:
    try:
        await stream.chunks.aclose()
    except RuntimeError:  # being relayed after all: the relay closes it
        pass


async def admitted(call: Call, ask: Speech) -> AiCall:
    """The model's own checks, then the pipeline's (plans, limits, the reservation)."""
    model = known_model(ask.model)
    if TTS in model.modalities:  # otherwise admit() names what the model serves
        check_for_model(model, ask)
    return await admit(call, ask.model, (TTS,), TTS, lambda m: worst_speech(m, ask))


# `ai.answer` is typed for JSON answers; these attempts answer audio (the casts above).
async def opened(upstream: Upstream, body: dict[str, object]) -> MediaStream:
    return await adapter_for(upstream).speech(upstream, body)


async def whole(upstream: Upstream, body: dict[str, object], meter: Meter, ask: Speech) -> bytes:
    """The whole audio, read within the attempt: a break mid-answer is retried like any failure."""
    stream = await opened(upstream, body)
    pieces: list[bytes] = []
    size = 0
    try:
        async for chunk in stream.chunks:
            if not size:
                meter.first_token()
            size += len(chunk)
            if size > MAX_BUFFERED_AUDIO_BYTES:
                # The request's to change (its text, or Accept), so a 4xx; billed, as the upstream made the audio.
                settle(meter, ask, size)
                raise UpstreamError(
                    f"The audio of this {ask.names.text} is longer than {MAX_BUFFERED_AUDIO_BYTES // (1024 * 1024)} MiB, too "
                    "long for a JSON answer: ask with Accept: audio/* to have it streamed, or split the text.",
                    status=400,
                    retryable=False,
                    code="audio_too_large",
                    param=ask.names.text,
                )
            pieces.append(chunk)
    finally:
        await stream.chunks.aclose()
    return b"".join(pieces)


async def relayed(meter: Meter, stream: MediaStream, ask: Speech, done: "SpeechDone | None" = None) -> AsyncGenerator[bytes, None]:
    """The audio (with `done`, OpenAI's speech events, their usage read on the way) as it arrives.
    The call is settled once the upstream's answer ends, before this generator does
    (`AiCall.events` waits for the settlement before the response's end goes out)."""
    size = 0
    try:
        async for chunk in stream.chunks:
            if not size:
                meter.first_token()
            size += len(chunk)
            if done is not None:
                done.feed(chunk)
            yield chunk
        if done is None:
            settle(meter, ask, size)
        else:
            settle(meter, ask, None, done.finished())
        meter.finish(200)
    except UpstreamError as exc:
        settle(meter, ask, None, _reported(done))  # the upstream ran, and bills the text it was sent
        meter.finish(exc.status, exc.code or "upstream_error")
        log.warning("the %s upstream broke off the audio of call %s: %s", meter.provider, meter.call_id, exc.message)
        if done is not None:
            yield data_frame(error_payload(exc))
        else:
            # Raw audio has no place for an error: the connection is cut before the body's end
            # (uvicorn, and City's Daphne), so that the client knows its audio is short rather than
            # saving a clean, truncated 200.
            raise AudioBrokenOff(exc.message) from None
    except Exception:
        log.exception("relaying the audio of call %s from %s failed", meter.call_id, meter.provider)
        settle(meter, ask, None, _reported(done))
        meter.finish(500, "internal_error")
    finally:
        if not meter.finished:  # the client left; billed before the close's await, which may be cut short
            settle(meter, ask, None, _reported(done))
            meter.finish(CLIENT_CLOSED, "client_closed")
        await stream.chunks.aclose()


class AudioBrokenOff(Exception):
    """The upstream broke off raw audio already streaming: the response must end incomplete."""


def _reported(done: "SpeechDone | None") -> dict[str, Any] | None:
    """The usage the speech events reported before the stream ended early (a client that left just
    after the last event still has it billed), if any."""
    return done.finished() if done is not None else None


def settle(meter: Meter, ask: Speech, audio_bytes: int | None, reported: dict[str, Any] | None = None) -> None:
    """The call's usage: its characters; for token-priced models, the tokens the upstream reported
    (speech events only), else City's count of them, within the reservation either way."""
    meter.units = ask.characters
    if not token_priced(meter.model):
        return
    if not meter.use(reported):
        meter.estimate(speech_tokens(ask, audio_bytes))
        return
    # Nothing caps a speech answer's audio tokens upstream (unlike max_tokens for text): a count past
    # the reservation's is billed at the reservation, which is the most a call may cost its studio.
    prompt_cap, output_cap = meter.ceiling
    if meter.prompt_tokens > prompt_cap or meter.completion_tokens > output_cap:
        log.warning(
            "call %s: %s reported %s input and %s output tokens, past the %s and %s reserved; billed at the reservation",
            meter.call_id,
            meter.provider,
            meter.prompt_tokens,
            meter.completion_tokens,
            prompt_cap,
            output_cap,
        )
        meter.prompt_tokens, meter.completion_tokens = min(meter.prompt_tokens, prompt_cap), min(meter.completion_tokens, output_cap)
        meter.usage_estimated = True


class SpeechDone:
    """Reads the usage off an OpenAI speech event stream's last event,
    `data: {"type": "speech.audio.done", "usage": {"input_tokens", "output_tokens", "total_tokens"}}`,
    as its bytes go by. Only a line that may be that event is kept (the audio deltas' lines are long)."""

    LONGEST_LINE = 4096

    def __init__(self) -> None:
        self.pending = b""
        self.skipping = False  # within a line too long to be the one sought
        self.usage: dict[str, Any] | None = None

    def feed(self, chunk: bytes) -> None:
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            if not self.skipping:
                self._read(self.pending + chunk[start:end])
            self.pending, self.skipping = b"", False
            start = end + 1
        if not self.skipping:
            self.pending += chunk[start:]
            if len(self.pending) > self.LONGEST_LINE:
                self.pending, self.skipping = b"", True

    def finished(self) -> dict[str, Any] | None:
        """The usage in OpenAI's chat shape (what Meter.use takes), or None when none was reported."""
        if not self.skipping:
            self._read(self.pending)
        return self.usage

    def _read(self, line: bytes) -> None:
        if not line.startswith(b"data:") or b"speech.audio.done" not in line:
            return
        try:
            event = orjson.loads(line[5:])
        except orjson.JSONDecodeError:
            return
        usage = event.get("usage") if isinstance(event, dict) else None
        if isinstance(usage, dict) and isinstance(usage.get("input_tokens"), int) and isinstance(usage.get("output_tokens"), int):
            self.usage = {"prompt_tokens": usage["input_tokens"], "completion_tokens": usage["output_tokens"]}


def raw_audio_format(accept: str, ask: Speech, takes: Sequence[str] = FORMATS) -> str | None:
    """The format to answer as raw audio, or None for City's JSON parts: audio when an audio type is
    accepted above JSON. When the request names no format, the best-ranked audio type of one the
    model `takes` picks it (audio/*: mp3, else the model's first)."""
    audio_q, json_q, wildcard_q = 0.0, 0.0, 0.0
    named: list[tuple[float, str]] = []
    refused: set[str] = set()  # formats whose type is given q=0: not acceptable, even under audio/*
    for item in accept.split(","):
        media, *params = (piece.strip() for piece in item.split(";"))
        media = media.lower()
        q = _quality(params)
        if media.startswith("audio/"):
            audio_q = max(audio_q, q)
            if q > 0:
                if media == "audio/*":
                    wildcard_q = max(wildcard_q, q)
                else:
                    named.append((q, media))
            elif media in AUDIO_TYPE_FORMATS:
                refused.add(AUDIO_TYPE_FORMATS[media])
        elif media in ("application/json", "application/*"):
            json_q = max(json_q, q)
    if audio_q <= 0 or audio_q <= json_q:
        return None
    formats = {AUDIO_TYPE_FORMATS[media] for _, media in named if media in AUDIO_TYPE_FORMATS}
    if ask.format is not None:
        if ask.format not in refused and (wildcard_q > 0 or ask.format in formats):
            return ask.format
        raise _not_acceptable(f"format '{ask.format}' is {MIME_TYPES[ask.format]}, which the Accept header does not take.", "format")
    best = next(
        (
            (q, AUDIO_TYPE_FORMATS[media])
            for q, media in sorted(named, key=lambda found: -found[0])
            if AUDIO_TYPE_FORMATS.get(media) in takes
        ),
        None,
    )
    if best is not None and best[0] >= wildcard_q:
        return best[1]
    anything = next((fmt for fmt in (DEFAULT_FORMAT, *takes) if fmt in takes and fmt not in refused), None)
    if wildcard_q > 0 and anything is not None:
        return anything
    if best is not None:
        return best[1]
    answered = ", ".join(MIME_TYPES[fmt] for fmt in takes)
    raise _not_acceptable(f"{ask.model} cannot answer the audio types the Accept header takes: it answers {answered}.", None)


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


def _not_acceptable(message: str, param: str | None) -> ApiError:
    return ApiError(406, message, param=param, code="not_acceptable", type="invalid_request_error")


_FIELDS = "model, text, voice?, format? (" + ", ".join(FORMATS) + "), speed?, instructions?"

ACTIONS: tuple[Action, ...] = (
    Action(
        "tts",
        tts,
        allow=(USER,),
        input=TTS_REQUEST,
        description=f"Text to speech: {{{_FIELDS}}} → a part with the audio (base64); with Accept: audio/*, the audio itself, streamed.",
        responds=("application/json", *MIME_TYPES.values()),
    ),
    Action(
        "audio/speech",
        audio_speech,
        allow=(USER,),
        input=SPEECH_REQUEST,
        description="OpenAI's text to speech: the audio, streamed (or, with stream_format sse, its events).",
        responds=(*MIME_TYPES.values(), "text/event-stream"),
    ),
)
ALIASES: dict[str, str] = {"audio/speech": "audio/speech"}
