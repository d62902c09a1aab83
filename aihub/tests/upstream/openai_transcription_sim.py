"""OpenAI transcription: POST /audio/transcriptions and /audio/translations (multipart), mixed into the provider's simulator.

As OpenAI's API reference describes them: a multipart/form-data body with `file` (a file part whose
name ends in a supported extension), `model`, and optional `language`, `prompt`, `response_format`,
`temperature`, `timestamp_granularities[]`, `include[]`; the bearer key. The answer follows
`response_format`: json `{text, usage}`, text / srt / vtt as text/plain, verbose_json `{task,
language, duration, text, segments, words?, usage}`; gpt-4o-transcribe and gpt-4o-mini-transcribe
give json and text only, and report token usage; translations take whisper-1 only. What it says is
`sim.script.text`, spread over two segments of the audio's duration (read from a WAV's header; other
files count as one second).
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import math
import wave
from dataclasses import dataclass, field
from typing import Any

from aihub.tests.upstream.sim import Received, Reply

EXTENSIONS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
SEGMENT_MODELS = ("whisper-1",)
TOKEN_MODELS = ("gpt-4o-transcribe", "gpt-4o-mini-transcribe")
AUDIO_TOKENS_PER_SECOND = 10  # what the simulator reports; City's worst case allows more


@dataclass
class Form:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)  # name → (filename, content type, data)

    def one(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else None


def parse_multipart(request: Received) -> Form | None:
    """The form of a multipart/form-data request, parsed with the standard library; None when it is not one."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data") or "boundary=" not in content_type:
        return None
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request.body
    )
    if not message.is_multipart():
        return None
    form = Form()
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            form.files[name] = (filename, part.get_content_type(), data)
        else:
            form.fields.setdefault(name, []).append(data.decode())
    return form


def wav_seconds(data: bytes) -> float:
    try:
        with wave.open(io.BytesIO(data)) as audio:
            return audio.getnframes() / audio.getframerate()
    except (wave.Error, EOFError):
        return 1.0


def _clock(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    return f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d}{separator}{millis % 1000:03d}"


class TranscriptionRoutes:
    def transcription_route(self, request: Received) -> Reply | None:
        """The answer when `request` is one of these routes, else None."""
        path = request.path.rstrip("/")
        task = "transcribe" if path.endswith("/audio/transcriptions") else "translate" if path.endswith("/audio/translations") else None
        if task is None or request.method != "POST":
            return None
        sim: Any = self
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return Reply.json(sim.error_body(401, "You didn't provide an API key."), status=401)
        form = parse_multipart(request)
        if form is None:
            return _invalid("Invalid Content-Type header: expected multipart/form-data with a boundary.", None)
        model = form.one("model")
        if not model:
            return _invalid("you must provide a model parameter", "model")
        if model not in SEGMENT_MODELS + TOKEN_MODELS or (task == "translate" and model not in SEGMENT_MODELS):
            return _invalid(f"Invalid model {model}: this endpoint does not support it.", "model")
        if "file" not in form.files:
            return _invalid("you must provide a file parameter", "file")
        filename, _content_type, data = form.files["file"]
        extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        if extension not in EXTENSIONS:
            return _invalid(f"Invalid file format. Supported formats: {list(EXTENSIONS)}", "file")
        response_format = form.one("response_format") or "json"
        allowed = ("json", "text") if model in TOKEN_MODELS else ("json", "text", "srt", "vtt", "verbose_json")
        if response_format not in allowed:
            return _invalid(f"response_format '{response_format}' is not compatible with model '{model}'.", "response_format")
        seconds = wav_seconds(data) if extension == "wav" else 1.0
        return self._transcript(sim.script.text, model, task, response_format, seconds, form)

    def _transcript(self, text: str, model: str, task: str, response_format: str, seconds: float, form: Form) -> Reply:
        words = text.split()
        half = max(1, len(words) // 2)
        middle = round(seconds / 2, 2)
        segments = [
            _segment(0, 0.0, middle, " " + " ".join(words[:half])),
            _segment(1, middle, round(seconds, 2), " " + " ".join(words[half:])),
        ]
        if response_format == "text":
            return Reply(body=(text + "\n").encode(), content_type="text/plain; charset=utf-8")
        if response_format in ("srt", "vtt"):
            comma = "," if response_format == "srt" else "."
            cues = [
                (f"{n + 1}\n" if response_format == "srt" else "")
                + f"{_clock(s['start'], comma)} --> {_clock(s['end'], comma)}\n{s['text'].strip()}\n"
                for n, s in enumerate(segments)
            ]
            body = ("WEBVTT\n\n" if response_format == "vtt" else "") + "\n".join(cues)
            return Reply(body=body.encode(), content_type="text/plain; charset=utf-8")
        if model in TOKEN_MODELS:
            prompt_tokens = len((form.one("prompt") or "").split())
            audio_tokens = math.ceil(seconds * AUDIO_TOKENS_PER_SECOND)
            usage: dict[str, Any] = {
                "type": "tokens",
                "input_tokens": audio_tokens + prompt_tokens,
                "input_token_details": {"text_tokens": prompt_tokens, "audio_tokens": audio_tokens},
                "output_tokens": len(words) + 1,
                "total_tokens": audio_tokens + prompt_tokens + len(words) + 1,
            }
        else:
            usage = {"type": "duration", "seconds": math.ceil(seconds)}
        if response_format == "json":
            return Reply.json({"text": text, "usage": usage})
        granularities = form.fields.get("timestamp_granularities[]") or ["segment"]
        verbose: dict[str, Any] = {
            "task": task,
            "language": "english",
            "duration": round(seconds, 2),
            "text": text,
        }
        if "segment" in granularities:
            verbose["segments"] = segments
        if "word" in granularities:
            step = seconds / max(1, len(words))
            verbose["words"] = [{"word": w, "start": round(i * step, 2), "end": round((i + 1) * step, 2)} for i, w in enumerate(words)]
        verbose["usage"] = usage
        return Reply.json(verbose)


def _segment(index: int, start: float, end: float, text: str) -> dict[str, Any]:
    return {
        "id": index,
        "seek": 0,
        "start": start,
        "end": end,
        "text": text,
        "tokens": [50364 + index, 2425],
        "temperature": 0.0,
        "avg_logprob": -0.25,
        "compression_ratio": 1.1,
        "no_speech_prob": 0.01,
    }


def _invalid(message: str, param: str | None) -> Reply:
    return Reply.json({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}, status=400)
