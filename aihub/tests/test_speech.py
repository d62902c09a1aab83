"""Text to speech in process: the catalog's prices, the request checks, the cost estimates, Accept
negotiation and ElevenLabs' error shapes (the live path is test_speech_live.py)."""

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import httpx
import pytest

from aihub.adapters.base import MediaStream, Upstream, UpstreamError
from aihub.adapters.elevenlabs import ElevenLabsAdapter, error_of
from aihub.adapters.openai_compat import OpenAICompatAdapter
from aihub.catalog import models_by_id
from aihub.catalog_types import CHARACTERS, TTS
from aihub.metering import CLIENT_CLOSED, Meter
from aihub.speech_api import SpeechDone, closed_with, raw_audio_format, relayed, settle
from aihub.speech_request import (
    CITY_NAMES,
    OPENAI_NAMES,
    SPEECH_REQUEST,
    TTS_REQUEST,
    Speech,
    check_for_model,
    speech_tokens,
    worst_speech,
)
from aihub.streaming import EventStreamResponse
from aihub.tests.upstream.elevenlabs_sim import ElevenLabsSim
from aihub.tests.upstream.openai_sim import OpenAISim
from city.errors import ApiError


def ask(text: str = "Hello.", **fields: Any) -> Speech:
    values: dict[str, Any] = {"voice": None, "format": None, "speed": None, "instructions": None, **fields}
    return Speech(
        fields.pop("model", "tts-1"), text, values["voice"], values["format"], values["speed"], values["instructions"], CITY_NAMES
    )


def test_the_speech_models_are_priced_per_character_or_by_token() -> None:
    models = models_by_id()
    prices = {m: (models[m].unit, models[m].public_meta()["price"]["per_character"]) for m in ("tts-1", "tts-1-hd", "eleven_v3")}
    assert prices == {"tts-1": (CHARACTERS, "0.000015"), "tts-1-hd": (CHARACTERS, "0.00003"), "eleven_v3": (CHARACTERS, "0.0001")}
    assert models["eleven_flash_v2_5"].unit_price == models["eleven_turbo_v2_5"].unit_price == 50_000_000
    mini = models["gpt-4o-mini-tts"]
    assert (mini.input_price, mini.output_price, mini.unit_price, mini.modalities) == (600_000, 12_000_000, 0, (TTS,))
    assert models["eleven_multilingual_v2"].deployments[0].adapter == "elevenlabs"


def test_the_worst_case_reserves_characters_and_slow_speech() -> None:
    models = models_by_id()
    assert worst_speech(models["tts-1"], ask("a" * 4096)).cost == 61_440  # 4,096 × $15/M = $0.06144
    mini = models["gpt-4o-mini-tts"]
    fast = ask("a" * 1500, model="gpt-4o-mini-tts", speed=2.0)
    worst = worst_speech(mini, fast)
    # Read at 8 characters a second, the speed-up not counted on: 187.5 s × 1,250 tokens a minute.
    assert (worst.units, worst.output_tokens) == (1500, 3907)
    assert worst.cost == -(-(worst.input_tokens * 600_000 + 3907 * 12_000_000) // 1_000_000)
    assert speech_tokens(fast, None) == 1042  # expected: 15 characters a second × 2 → 50 s
    assert speech_tokens(ask(model="gpt-4o-mini-tts", format="pcm"), 480_000) == 209  # 10 s of 24 kHz 16-bit PCM
    assert speech_tokens(ask(model="gpt-4o-mini-tts", format="wav"), 480_044) == 209  # the same, after a 44-byte header
    assert speech_tokens(fast, None) <= worst.output_tokens


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"voice": "verse"}, "voice", "invalid_value"),
        ({"voice": {"id": "voice_123"}}, "voice", "invalid_value"),
        ({"text": "x" * 4097}, "text", "text_too_long"),
        ({"speed": 0.2}, "speed", "invalid_value"),
        ({"instructions": "Slowly."}, "instructions", "unsupported_parameter"),
    ],
)
def test_a_request_is_checked_against_its_model(fields: dict[str, Any], param: str, code: str) -> None:
    text = fields.pop("text", "Hello.")
    with pytest.raises(ApiError) as refused:
        check_for_model(models_by_id()["tts-1"], ask(text, **fields))
    assert (refused.value.status, refused.value.param, refused.value.code) == (400, param, code)


def test_elevenlabs_voices_are_ids_and_its_formats_its_own() -> None:
    model = models_by_id()["eleven_multilingual_v2"]
    check_for_model(model, ask(voice="21m00Tcm4TlvDq8ikWAM", format="opus", speed=0.7))
    for fields, param in (({"voice": "../../v1/user"}, "voice"), ({"format": "flac"}, "format"), ({"speed": 1.21}, "speed")):
        with pytest.raises(ApiError) as refused:
            check_for_model(model, ask(**fields))
        assert refused.value.param == param
    check_for_model(
        models_by_id()["gpt-4o-mini-tts"], Speech("gpt-4o-mini-tts", "Hi", {"id": "voice_1"}, None, None, "Calm.", OPENAI_NAMES)
    )


def test_the_input_specs_refuse_unknown_fields_and_wrong_types() -> None:
    for spec, data, param in (
        (TTS_REQUEST, {"model": "tts-1", "text": "Hi", "voice_settings": {}}, "voice_settings"),
        (TTS_REQUEST, {"model": "tts-1", "text": "Hi", "format": "ogg"}, "format"),
        (TTS_REQUEST, {"model": "tts-1", "text": "Hi", "speed": True}, "speed"),
        (SPEECH_REQUEST, {"model": "tts-1", "input": "Hi"}, "voice"),
        (SPEECH_REQUEST, {"model": "tts-1", "input": "Hi", "voice": {"name": "x"}}, "voice.id"),
    ):
        with pytest.raises(ApiError) as refused:
            spec.validate(data)
        assert (refused.value.status, refused.value.param) == (400, param)
    assert TTS_REQUEST.json_schema()["additionalProperties"] is False
    assert SPEECH_REQUEST.json_schema()["required"] == ["model", "input", "voice"]


@pytest.mark.parametrize(
    ("accept", "fmt", "answer"),
    [
        ("", None, None),
        ("application/json", None, None),
        ("*/*", None, None),
        ("audio/*", None, "mp3"),
        ("audio/*", "flac", "flac"),
        ("audio/wav", None, "wav"),
        ("audio/x-wav;q=0.5, audio/ogg", None, "opus"),
        ("application/json, audio/*;q=0.5", None, None),
        ("application/json;q=0.2, audio/mpeg", None, "mp3"),
        ("audio/pcm", "pcm", "pcm"),
        ("audio/*;q=0", None, None),
        ("audio/mpeg;q=0, audio/*", None, "opus"),  # q=0: not mp3, though audio/* takes any
        ("audio/*, audio/mp3;q=0", "wav", "wav"),
    ],
)
def test_accept_picks_raw_audio_and_its_format(accept: str, fmt: str | None, answer: str | None) -> None:
    assert raw_audio_format(accept, ask(format=fmt)) == answer


@pytest.mark.parametrize(
    ("accept", "answer"),
    [
        ("audio/wav, audio/mpeg;q=0.5", "mp3"),  # ElevenLabs makes no wav: the next type it makes
        ("audio/flac, audio/*;q=0.1", "mp3"),
        ("audio/*, audio/mpeg;q=0", "opus"),
        ("audio/wav;q=0.5, audio/*", "mp3"),  # audio/* ranks higher
        ("audio/pcm, audio/*", "pcm"),  # the named type, at the same rank
    ],
)
def test_accept_picks_a_format_the_model_makes(accept: str, answer: str) -> None:
    assert raw_audio_format(accept, ask(model="eleven_v3"), ("mp3", "opus", "pcm")) == answer


def test_accept_that_no_format_meets_is_406() -> None:
    for accept, fmt in (("audio/mpeg", "wav"), ("audio/x-unknown", None), ("audio/*, audio/mpeg;q=0", "mp3")):
        with pytest.raises(ApiError) as refused:
            raw_audio_format(accept, ask(format=fmt))
        assert (refused.value.status, refused.value.code) == (406, "not_acceptable")
    with pytest.raises(ApiError) as refused:  # not a 400 naming `format`, a field the request left out
        raw_audio_format("audio/wav, audio/flac", ask(model="eleven_v3"), ("mp3", "opus", "pcm"))
    assert (refused.value.status, refused.value.param) == (406, None)
    assert "audio/mpeg, audio/opus, audio/pcm" in refused.value.message


def test_elevenlabs_errors_keep_their_message_and_name_the_voice() -> None:
    voice = error_of(404, b'{"detail": {"status": "voice_not_found", "message": "A voice with voice_id x does not exist."}}', "elevenlabs")
    assert (voice.status, voice.param, voice.code, voice.retryable) == (400, "voice", "voice_not_found", False)
    assert voice.message == "A voice with voice_id x does not exist."
    invalid = error_of(422, b'{"detail": [{"loc": ["body", "text"], "msg": "Field required", "type": "missing"}]}', "elevenlabs")
    assert (invalid.status, invalid.message) == (422, "ElevenLabs refused the request: Field required (text).")
    busy = error_of(429, b'{"detail": {"status": "too_many_concurrent_requests", "message": "Busy."}}', "elevenlabs")
    assert (busy.status, busy.retryable, busy.code) == (429, True, "too_many_concurrent_requests")
    down = error_of(503, b'{"detail": {"status": "internal", "message": "Down."}}', "elevenlabs")
    assert (down.status, down.retryable, down.code) == (503, True, "upstream_unavailable")
    assert "Down." in down.message
    assert error_of(400, b"plain words", "elevenlabs").message == "plain words"


def test_elevenlabs_refuses_a_format_it_has_no_equivalent_for_before_calling() -> None:
    upstream = Upstream("elevenlabs", "elevenlabs", "eleven_v3", "http://127.0.0.1:9", "key")

    async def speak() -> None:
        async with httpx.AsyncClient() as client:
            await ElevenLabsAdapter(client).speech(upstream, {"input": "Hi", "voice": "JBFqnCBsd6RMkjVDRZzb", "response_format": "aac"})

    with pytest.raises(UpstreamError) as refused:
        asyncio.run(speak())
    assert (refused.value.status, refused.value.param) == (400, "response_format")


def test_the_usage_of_speech_events_is_read_across_chunks_past_long_lines() -> None:
    delta = b'data: {"type": "speech.audio.delta", "audio": "' + b"QUJD" * 5000 + b'"}\n\n'
    done = b'data: {"type": "speech.audio.done", "usage": {"input_tokens": 7, "output_tokens": 90, "total_tokens": 97}}\n\n'
    stream = delta * 3 + done
    for size in (1, 7, 4096, len(stream)):
        reader = SpeechDone()
        for start in range(0, len(stream), size):
            reader.feed(stream[start : start + size])
        assert reader.finished() == {"prompt_tokens": 7, "completion_tokens": 90}, size
        assert len(reader.pending) <= SpeechDone.LONGEST_LINE
    unfinished = SpeechDone()
    unfinished.feed(delta + done.rstrip())  # no closing blank line
    assert unfinished.finished() == {"prompt_tokens": 7, "completion_tokens": 90}
    assert SpeechDone().finished() is None


LONG_TEXT = "A sentence to be spoken slowly. " * 8  # 17 s of simulated mp3: 60 chunks, 3 s at 0.05 s apart


def meter_of(model_id: str, ask: Speech, records: list[dict[str, Any]]) -> Meter:
    call: Any = type("FakeCall", (), {"identity": type("I", (), {"token_id": None, "account_id": None})(), "request_id": "r"})()
    call.action = type("A", (), {"name": "tts"})()
    model = models_by_id()[model_id]
    worst = worst_speech(model, ask)
    return Meter(
        call,
        "studio_x",
        model,
        TTS,
        ceiling=(worst.input_tokens, worst.output_tokens),
        unit_price=worst.unit_price,
        worst_units=worst.units,
        on_finish=records.append,
    )


async def opened_from(sim: OpenAISim, client: httpx.AsyncClient, text: str) -> MediaStream:
    upstream = Upstream("openai", "openai", "tts-1", sim.url + "/v1", "sk-test")
    return await OpenAICompatAdapter(client).speech(upstream, {"model": "tts-1", "input": text, "voice": "alloy", "response_format": "mp3"})


def test_closing_an_opened_audio_stream_before_its_first_chunk_closes_the_upstream() -> None:
    with OpenAISim() as sim:
        sim.chunk_delay_seconds = 0.05

        async def open_and_close() -> None:
            async with httpx.AsyncClient() as client:
                stream = await opened_from(sim, client, LONG_TEXT)
                await stream.chunks.aclose()  # nothing read: a client gone before the relay began
                assert await asyncio.to_thread(sim.wait_for_cancellation, 2.0), "the upstream answer was left open"

        asyncio.run(open_and_close())


def test_a_response_closed_unsent_bills_the_call_and_closes_the_upstream() -> None:
    """Django drops a response whose client left before it was sent, and calls only its close()."""
    records: list[dict[str, Any]] = []
    speech = ask(LONG_TEXT)
    with OpenAISim() as sim:
        sim.chunk_delay_seconds = 0.05

        async def answer_then_leave() -> None:
            async with httpx.AsyncClient() as client:
                stream = await opened_from(sim, client, LONG_TEXT)
                meter = meter_of("tts-1", speech, records)
                response = EventStreamResponse(relayed(meter, stream, speech), content_type="audio/mpeg")
                closed_with(response, meter, stream, speech)
                await asyncio.to_thread(response.close)  # as Django's ASGI handler does, off the loop
                for _ in range(100):  # the close is handed to the loop
                    if records:
                        break
                    await asyncio.sleep(0.01)
                assert await asyncio.to_thread(sim.wait_for_cancellation, 2.0), "the upstream answer was left open"
                response.close()  # again, as after a relay: nothing more happens

        asyncio.run(answer_then_leave())
    (record,) = records
    assert (record["status"], record["error_code"], record["units"]) == (CLIENT_CLOSED, "client_closed", len(LONG_TEXT))
    assert record["cost"] == len(LONG_TEXT) * 15_000_000  # tts-1: $15 per million characters, in 1e-12 USD


def test_reported_speech_usage_is_billed_within_the_reservation() -> None:
    model = models_by_id()["gpt-4o-mini-tts"]
    speech = ask("Hi.", model="gpt-4o-mini-tts")
    worst = worst_speech(model, speech)
    assert worst.output_tokens == 42  # a word alone: two seconds of audio reserved, not 3 characters' worth
    records: list[dict[str, Any]] = []
    within, past = meter_of("gpt-4o-mini-tts", speech, records), meter_of("gpt-4o-mini-tts", speech, records)
    settle(within, speech, None, {"prompt_tokens": worst.input_tokens, "completion_tokens": 30})
    settle(past, speech, None, {"prompt_tokens": worst.input_tokens + 5, "completion_tokens": 900})
    within.finish(200)
    past.finish(200)
    kept, capped = records
    assert (kept["prompt_tokens"], kept["completion_tokens"], kept["usage_estimated"]) == (worst.input_tokens, 30, False)
    assert (capped["prompt_tokens"], capped["completion_tokens"], capped["usage_estimated"]) == (worst.input_tokens, 42, True)
    assert capped["units"] == 3
    assert capped["cost"] <= worst.cost * 1_000_000  # a record's cost is in 1e-12 USD, a reservation's in 1e-6


def test_a_client_that_leaves_after_the_last_speech_event_is_billed_its_reported_usage() -> None:
    speech = Speech("gpt-4o-mini-tts", "Hello there.", "coral", None, None, None, OPENAI_NAMES, stream_format="sse")
    events = [
        b'data: {"type": "speech.audio.delta", "audio": "QUJD"}\n\n',
        b'data: {"type": "speech.audio.done", "usage": {"input_tokens": 3, "output_tokens": 40, "total_tokens": 43}}\n\n',
    ]

    async def upstream() -> AsyncGenerator[bytes, None]:
        for event in events:
            yield event

    async def leave_after_the_last_event() -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        meter = meter_of("gpt-4o-mini-tts", speech, records)
        relay = relayed(meter, MediaStream("text/event-stream", upstream()), speech, SpeechDone())
        assert [await anext(relay), await anext(relay)] == events
        await relay.aclose()  # the client is gone before the stream's end
        return records

    (record,) = asyncio.run(leave_after_the_last_event())
    assert (record["status"], record["prompt_tokens"], record["completion_tokens"]) == (CLIENT_CLOSED, 3, 40)
    assert record["usage_estimated"] is False


def test_the_elevenlabs_simulator_takes_only_json_with_a_key() -> None:
    with ElevenLabsSim() as sim:
        url = sim.url + "/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb/stream"
        untyped = httpx.post(
            url, content=b'{"text": "Hi", "model_id": "eleven_v3"}', headers={"xi-api-key": "k", "content-type": "text/plain"}
        )
        assert (untyped.status_code, untyped.json()["detail"][0]["loc"]) == (422, ["body"])
        assert httpx.post(url, json={"text": "Hi"}).status_code == 401
        spoken = httpx.post(url, json={"text": "Hi", "model_id": "eleven_v3"}, headers={"xi-api-key": "k"})
        assert (spoken.status_code, spoken.headers["content-type"]) == (200, "audio/mpeg")
