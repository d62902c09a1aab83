"""The transcription parts that need no server: the audio checks, the worst case, Deepgram's answer as
OpenAI's verbose_json, and the formats City renders."""

import io
import math
import wave
from types import SimpleNamespace
from typing import Any

import pytest

from aihub.adapters.base import UpstreamError
from aihub.adapters.deepgram import verbose_from_deepgram
from aihub.catalog import models_by_id
from aihub.metering import Meter
from aihub.tests.upstream.deepgram_sim import DeepgramSim
from aihub.tests.upstream.sim import Received
from aihub.transcription_api import AUDIO_TOKENS_PER_SECOND, OUTPUT_TOKENS_PER_SECOND, bill, worst_asr
from aihub.transcription_audio import ESTIMATE_BYTES_PER_SECOND, MAX_AUDIO_SECONDS, Audio, measured, sniffed_extension, typed_file
from aihub.transcription_render import openai_answer, parts_answer, srt, vtt
from city.errors import ApiError


def wav(seconds: float, rate: int = 8000) -> bytes:
    """A silent mono 8-bit WAV of exactly `seconds` (at `rate` frames a second)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(b"\x80" * round(seconds * rate))
    return buffer.getvalue()


def test_the_duration_is_read_from_the_file_and_rounded_up_to_whole_seconds() -> None:
    audio = measured(typed_file("talk.wav", wav(2.25), "audio/wav"))
    assert (audio.measured, audio.seconds, audio.units) == (True, 2.25, 3)


def test_an_unreadable_file_is_estimated_from_its_size() -> None:
    data = b"\x1a\x45\xdf\xa3" + b"\x00" * 9996  # a webm header mutagen does not read
    audio = measured(typed_file("talk.webm", data, "audio/webm"))
    assert (audio.measured, audio.units) == (False, math.ceil(10_000 / ESTIMATE_BYTES_PER_SECOND))


def test_audio_over_the_longest_duration_is_refused_naming_the_limit() -> None:
    with pytest.raises(ApiError) as refused:
        measured(typed_file("long.wav", wav(MAX_AUDIO_SECONDS + 1, rate=1), "audio/wav"))
    assert (refused.value.status, refused.value.code, refused.value.param) == (400, "audio_too_long", "file")
    assert "3,600 seconds" in refused.value.message


@pytest.mark.parametrize(
    ("name", "content_type", "code"),
    [
        ("notes.txt", "text/plain", "unsupported_file_type"),
        ("talk.wav", "image/png", "unsupported_file_type"),
        ("talk", "", "unsupported_file_type"),
    ],
)
def test_a_file_of_another_type_is_refused_naming_the_types(name: str, content_type: str, code: str) -> None:
    with pytest.raises(ApiError) as refused:
        typed_file(name, b"data", content_type)
    assert (refused.value.status, refused.value.code) == (415, code)
    assert "wav" in refused.value.message


def test_a_file_without_a_name_takes_its_type_from_its_content_type_or_bytes() -> None:
    assert typed_file("", b"x", "audio/mpeg").name == "audio.mp3"
    assert typed_file("clip.MP3", b"x", "application/octet-stream").content_type == "audio/mpeg"
    assert sniffed_extension(wav(0.1)) == "wav"
    assert sniffed_extension(b"fLaC....") == "flac"
    assert sniffed_extension(b"plain text") == ""


def test_the_worst_case_is_seconds_at_the_price_or_tokens_for_token_billed_models() -> None:
    models = models_by_id()
    audio = measured(typed_file("talk.wav", wav(2.5), "audio/wav"))
    whisper = worst_asr(models["whisper-1"], audio, None)
    assert (whisper.units, whisper.unit_price, whisper.cost) == (3, 100_000_000, 300)  # 3 s × $0.0001 = 300 micro-USD
    nova = worst_asr(models["nova-3"], audio, None)
    assert (nova.unit_price, nova.cost) == (71_666_667, math.ceil(3 * 71_666_667 / 1_000_000))
    token = worst_asr(models["gpt-4o-transcribe"], audio, None)
    assert (token.input_tokens, token.output_tokens, token.unit_price) == (3 * AUDIO_TOKENS_PER_SECOND, 3 * OUTPUT_TOKENS_PER_SECOND, 0)
    assert token.cost == math.ceil((60 * 6_000_000 + 30 * 10_000_000) / 1_000_000)
    # Billing the duration instead (no usage reported) stays within it.
    assert 3 * models["gpt-4o-transcribe"].unit_price <= token.cost * 1_000_000


def billed(model_id: str, audio: Audio, answer: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The usage record `bill` makes of `answer`, and the cost (pico-USD) the call reserved."""
    model = models_by_id()[model_id]
    worst = worst_asr(model, audio, None)
    call = SimpleNamespace(identity=SimpleNamespace(token_id=None, account_id=None), request_id="req", action=SimpleNamespace(name="asr"))
    meter = Meter(
        call,  # type: ignore[arg-type]
        "studio",
        model,
        "asr",
        ceiling=(worst.input_tokens, worst.output_tokens),
        unit_price=worst.unit_price,
        worst_units=worst.units,
    )
    bill(SimpleNamespace(meter=meter, model=model), audio, answer)  # type: ignore[arg-type]  # a stand-in AiCall
    return meter.record(200), worst.cost * 1_000_000


def test_the_bill_never_runs_past_the_reservation() -> None:
    # A webm mutagen cannot read: 10,000 bytes estimated at 5 seconds; the upstream says it lasted 40.
    estimated = measured(typed_file("talk.webm", b"\x1a\x45\xdf\xa3" + b"\x00" * 9996, "audio/webm"))
    for model_id in ("whisper-1", "nova-3", "gpt-4o-transcribe"):
        record, reserved = billed(model_id, estimated, {"text": "Hi.", "duration": 40.0})
        assert (record["units"], record["cost"] <= reserved) == (5, True), model_id
    # A token-billed model whose upstream reports more tokens than the worst case allowed for.
    audio = measured(typed_file("talk.wav", wav(2.0), "audio/wav"))
    usage = {"type": "tokens", "input_tokens": 1_000, "output_tokens": 500}
    record, reserved = billed("gpt-4o-transcribe", audio, {"text": "Hi.", "usage": usage})
    assert (record["prompt_tokens"], record["completion_tokens"]) == (2 * AUDIO_TOKENS_PER_SECOND, 2 * OUTPUT_TOKENS_PER_SECOND)
    assert record["cost"] <= reserved
    within = {"type": "tokens", "input_tokens": 30, "output_tokens": 12}
    record, _ = billed("gpt-4o-transcribe", audio, {"text": "Hi.", "usage": within})
    assert (record["prompt_tokens"], record["completion_tokens"], record["cost"]) == (30, 12, 30 * 6_000_000 + 12 * 10_000_000)


def test_deepgrams_answer_becomes_openais_verbose_json() -> None:
    sim = DeepgramSim()
    sim.script.text = "Hello there. General Kenobi!"
    request = Received("POST", "/v1/listen", {"detect_language": "true", "utterances": "true"}, {}, wav(2.0), None)
    verbose = verbose_from_deepgram(sim.listen(request, "nova-3", 2.0))
    assert verbose["text"] == "Hello there. General Kenobi!"
    assert (verbose["language"], verbose["duration"]) == ("en", 2.0)
    assert [s["text"] for s in verbose["segments"]] == ["Hello there.", "General Kenobi!"]
    assert verbose["segments"][-1]["end"] == 2.0
    assert [w["word"] for w in verbose["words"]] == ["Hello", "there.", "General", "Kenobi!"]


@pytest.mark.parametrize(
    "answer",
    [
        {"results": {"channels": {"0": {}}}},
        {"results": {"channels": [{"alternatives": ["text"]}]}},
        {"results": {"channels": [{"alternatives": [{"transcript": "Hi."}]}], "utterances": [{"start": None, "end": 1.0}]}},
        {"results": "none"},
    ],
)
def test_an_answer_not_in_deepgrams_shape_is_an_upstream_error(answer: dict[str, Any]) -> None:
    with pytest.raises(UpstreamError) as failed:
        verbose_from_deepgram(answer)
    assert (failed.value.status, failed.value.code) == (502, "upstream_error")


def test_subtitles_are_rendered_from_segments() -> None:
    segments = [{"start": 0.0, "end": 1.5, "text": " Hello"}, {"start": 1.5, "end": 3661.25, "text": " world."}]
    assert srt(segments) == "1\n00:00:00,000 --> 00:00:01,500\nHello\n\n2\n00:00:01,500 --> 01:01:01,250\nworld.\n\n"
    assert vtt(segments) == "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello\n\n00:00:01.500 --> 01:01:01.250\nworld.\n"
    # Times an OpenAI-compatible host got wrong show as zero rather than failing the call.
    assert srt([{"start": None, "end": "2", "text": "x"}]) == "1\n00:00:00,000 --> 00:00:00,000\nx\n\n"


def test_openai_formats_and_city_parts_from_one_transcript() -> None:
    answer = {"text": "Hi.", "language": "english", "segments": [{"id": 0, "start": 0.0, "end": 1.0, "text": " Hi."}], "words": []}
    usage = {"type": "duration", "seconds": 2}
    common = {"task": "transcribe", "duration": 1.2, "usage": usage, "seconds": 2, "language": None}
    assert openai_answer(answer, "json", granularities=[], **common) == {"text": "Hi.", "usage": usage}  # type: ignore[arg-type]
    assert openai_answer(answer, "text", granularities=[], **common) == "Hi.\n"  # type: ignore[arg-type]
    verbose = openai_answer(answer, "verbose_json", granularities=["word"], **common)  # type: ignore[arg-type]
    assert isinstance(verbose, dict) and "segments" not in verbose and verbose["words"] == []
    parts = parts_answer("asr_1", "whisper-1", answer, 1.2, {"seconds": 2})
    assert parts["parts"] == [{"type": "text", "text": "Hi."}]
    assert parts["segments"] == [{"start": 0.0, "end": 1.0, "text": "Hi."}]
