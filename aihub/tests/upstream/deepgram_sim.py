"""A loopback Deepgram: pre-recorded speech-to-text, `POST /v1/listen`, as Deepgram's API reference describes it.

The request: the model and options in the query, `Authorization: Token <key>`, the raw audio as the
body with an audio Content-Type (or application/octet-stream). The answer: `{metadata: {request_id,
sha256, created, duration, channels, models}, results: {channels: [{alternatives: [{transcript,
confidence, words}], detected_language?}], utterances?}}`; errors `{err_code, err_msg, request_id}`.
What it says is `sim.script.text`, over the audio's duration (from a WAV header; else one second),
one utterance per sentence-half.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aihub.tests.upstream.openai_transcription_sim import wav_seconds
from aihub.tests.upstream.sim import Received, Reply, SimServer

MODELS = ("nova-3", "nova-2", "nova", "enhanced", "base", "whisper")
REQUEST_ID = "5d8a8e2b-0000-4000-8000-000000000001"


class DeepgramSim(SimServer):
    def error_body(self, status: int, message: str) -> Any:
        code = {400: "Bad Request", 401: "INVALID_AUTH", 402: "ASR_PAYMENT_REQUIRED", 429: "TOO_MANY_REQUESTS"}.get(
            status, "INTERNAL_ERROR"
        )
        return {"err_code": code, "err_msg": message, "request_id": REQUEST_ID}

    def _error(self, status: int, message: str) -> Reply:
        return Reply.json(self.error_body(status, message), status=status)

    def handle(self, request: Received) -> Reply:
        if request.method != "POST" or request.path.rstrip("/") != "/v1/listen":
            return self._error(404, f"Unknown route {request.path}")
        if not request.headers.get("authorization", "").startswith("Token "):
            return self._error(401, "Invalid credentials.")
        model = request.query.get("model", "base")
        if model not in MODELS:
            return self._error(400, "No such model/language/tier combination found.")
        content_type = request.headers.get("content-type", "").split(";")[0]
        if content_type == "application/json":
            return self._error(400, "Request body was JSON: send a {url} object or the audio itself with its content type.")
        if not request.body:
            return self._error(400, "Bad Request: failed to process audio: corrupt or unsupported data")
        seconds = wav_seconds(request.body) if request.body[:4] == b"RIFF" else 1.0
        return Reply.json(self.listen(request, model, seconds))

    def listen(self, request: Received, model: str, seconds: float) -> dict[str, Any]:
        text = self.script.text
        words = text.split()
        step = seconds / max(1, len(words))
        word_list = [
            {
                "word": w.strip(".,!?").lower(),
                "start": round(i * step, 3),
                "end": round((i + 1) * step, 3),
                "confidence": 0.98,
                "punctuated_word": w,
            }
            for i, w in enumerate(words)
        ]
        channel: dict[str, Any] = {"alternatives": [{"transcript": text, "confidence": 0.97, "words": word_list}]}
        if request.query.get("detect_language") == "true":
            channel["detected_language"] = "en"
            channel["language_confidence"] = 0.99
        results: dict[str, Any] = {"channels": [channel]}
        if request.query.get("utterances") == "true":
            half = max(1, len(words) // 2)
            middle = round(half * step, 3)
            results["utterances"] = [
                {"start": 0.0, "end": middle, "confidence": 0.97, "channel": 0, "transcript": " ".join(words[:half]), "id": "u1"},
                {
                    "start": middle,
                    "end": round(seconds, 3),
                    "confidence": 0.97,
                    "channel": 0,
                    "transcript": " ".join(words[half:]),
                    "id": "u2",
                },
            ]
        return {
            "metadata": {
                "transaction_key": "deprecated",
                "request_id": REQUEST_ID,
                "sha256": hashlib.sha256(request.body).hexdigest(),
                "created": "2026-12-06T12:00:00.000Z",
                "duration": round(seconds, 3),
                "channels": 1,
                "models": ["1abfe86b-e047-4eed-858a-35e5625b41ee"],
                "model_info": {
                    "1abfe86b-e047-4eed-858a-35e5625b41ee": {"name": f"general-{model}", "version": "2026-11-01", "arch": model}
                },
            },
            "results": results,
        }
