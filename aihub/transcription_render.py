"""A transcript (OpenAI's verbose_json shape, as every adapter answers it) in the formats clients ask for:
OpenAI's response formats (json, text, srt, vtt, verbose_json) and City's parts answer."""

import math
from typing import Any

# The formats a model without segments (gpt-4o-transcribe, gpt-4o-mini-transcribe) cannot give.
NEEDS_SEGMENTS = ("srt", "vtt", "verbose_json")
FORMATS = ("json", "text", "srt", "vtt", "verbose_json")


def segments_of(answer: dict[str, Any], duration: float) -> list[dict[str, Any]]:
    """The answer's segments; a transcript without any is one segment over the whole audio."""
    found = [s for s in answer.get("segments") or [] if isinstance(s, dict)]
    if found or not answer.get("text"):
        return found
    return [{"id": 0, "start": 0.0, "end": duration, "text": answer["text"]}]


def _clock(seconds: Any, separator: str) -> str:
    # An OpenAI-compatible host may send a null or a string for a time: it shows as zero, not a crash.
    valid = isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and math.isfinite(seconds)
    millis = max(0, round(seconds * 1000)) if valid else 0
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def srt(segments: list[dict[str, Any]]) -> str:
    cues = [
        f"{n}\n{_clock(s.get('start', 0.0), ',')} --> {_clock(s.get('end', 0.0), ',')}\n{str(s.get('text', '')).strip()}\n"
        for n, s in enumerate(segments, 1)
    ]
    return "\n".join(cues) + ("\n" if cues else "")


def vtt(segments: list[dict[str, Any]]) -> str:
    cues = [
        f"{_clock(s.get('start', 0.0), '.')} --> {_clock(s.get('end', 0.0), '.')}\n{str(s.get('text', '')).strip()}\n" for s in segments
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


def openai_answer(
    answer: dict[str, Any],
    response_format: str,
    *,
    task: str,
    duration: float,
    usage: dict[str, Any],
    seconds: int,
    granularities: list[str],
    language: str | None,
) -> dict[str, Any] | str:
    """The answer in `response_format`: a dict for json and verbose_json, text for the others. `usage` is
    json's (the upstream's token usage, or the duration billed); verbose_json always shows `seconds`."""
    text = answer.get("text", "")
    if response_format == "text":
        return text + "\n"
    if response_format == "srt":
        return srt(segments_of(answer, duration))
    if response_format == "vtt":
        return vtt(segments_of(answer, duration))
    if response_format == "verbose_json":
        verbose: dict[str, Any] = {
            "task": task,
            "language": answer.get("language") or language or ("english" if task == "translate" else ""),
            "duration": duration,
            "text": text,
        }
        if "segment" in granularities or not granularities:
            verbose["segments"] = segments_of(answer, duration)
        if "word" in granularities:
            verbose["words"] = answer.get("words") or []
        verbose["usage"] = {"type": "duration", "seconds": seconds}
        return verbose
    json_answer: dict[str, Any] = {"text": text}
    if isinstance(answer.get("logprobs"), list):
        json_answer["logprobs"] = answer["logprobs"]
    json_answer["usage"] = usage
    return json_answer


def parts_answer(answer_id: str, model_id: str, answer: dict[str, Any], duration: float, usage: dict[str, int]) -> dict[str, Any]:
    """City's /v1/ai/asr answer: the text as a part, with language, duration and segments when known."""
    result: dict[str, Any] = {"id": answer_id, "model": model_id, "parts": [{"type": "text", "text": answer.get("text", "")}]}
    if isinstance(answer.get("language"), str) and answer["language"]:
        result["language"] = answer["language"]
    result["duration"] = duration
    segments = [s for s in answer.get("segments") or [] if isinstance(s, dict)]
    if segments:
        result["segments"] = [{"start": s.get("start"), "end": s.get("end"), "text": str(s.get("text", "")).strip()} for s in segments]
    result["usage"] = usage
    return result
