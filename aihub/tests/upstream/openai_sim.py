"""A loopback OpenAI-compatible upstream: chat completions (streaming, tools, usage), legacy
completions, embeddings (float and base64) and models, in the shapes of OpenAI's API reference.

Routes answer under any prefix (`/v1/chat/completions`, `/chat/completions`), so a deployment's base
URL may be `sim.url + "/v1"` or `sim.url`. What it answers is `sim.script` (see sim.Script).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Iterator
from typing import Any

from aihub.tests.upstream.openai_images_sim import ImagesRoutes
from aihub.tests.upstream.openai_responses_sim import ResponsesRoutes
from aihub.tests.upstream.openai_speech_sim import SpeechRoutes
from aihub.tests.upstream.openai_transcription_sim import TranscriptionRoutes
from aihub.tests.upstream.openai_videos_sim import VideosRoutes
from aihub.tests.upstream.sim import Received, Reply, SimServer, sse

CREATED = 1_767_225_600  # a fixed timestamp keeps recorded payloads stable


class OpenAISim(ImagesRoutes, SpeechRoutes, TranscriptionRoutes, VideosRoutes, ResponsesRoutes, SimServer):
    def error_body(self, status: int, message: str) -> Any:
        error_type = {
            400: "invalid_request_error",
            401: "invalid_request_error",
            404: "invalid_request_error",
            429: "rate_limit_exceeded",
        }.get(status, "server_error")
        code = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}.get(status)
        return {"error": {"message": message, "type": error_type, "param": None, "code": code}}

    def handle(self, request: Received) -> Reply:
        for route in (self.images_route, self.speech_route, self.transcription_route, self.videos_route, self.responses_route):
            media = route(request)
            if media is not None:
                return media
        path = request.path.rstrip("/")
        if request.method == "GET" and path.endswith("/models"):
            return Reply.json({"object": "list", "data": [{"id": "sim-model", "object": "model", "created": CREATED, "owned_by": "sim"}]})
        body = request.json if isinstance(request.json, dict) else {}
        if request.method == "POST" and "model" not in body:
            return Reply.json(self.error_body(400, "you must provide a model parameter"), status=400)
        if path.endswith("/chat/completions"):
            return self._chat_stream(body) if body.get("stream") else Reply.json(self._chat(body))
        if path.endswith("/completions"):
            return self._completion_stream(body) if body.get("stream") else Reply.json(self._completion(body))
        if path.endswith("/embeddings"):
            return Reply.json(self._embeddings(body))
        return Reply.json(self.error_body(404, f"Unknown route {request.path}"), status=404)

    # --- chat -----------------------------------------------------------------------------------

    def _wants_tool(self, body: dict[str, Any]) -> bool:
        return self.script.tool_call is not None and bool(body.get("tools"))

    def _usage(self) -> dict[str, Any] | None:
        if self.script.usage is None:
            return None
        prompt, completion = self.script.usage
        usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        if self.script.cached_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": self.script.cached_tokens, "audio_tokens": 0}
        if self.script.reasoning_tokens:
            usage["completion_tokens_details"] = {"reasoning_tokens": self.script.reasoning_tokens, "audio_tokens": 0}
        return usage

    def _tool_calls(self) -> list[dict[str, Any]]:
        name, arguments = self.script.tool_call or ("", {})
        return [{"id": "call_sim_1", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}]

    def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        if self._wants_tool(body):
            message = {"role": "assistant", "content": None, "tool_calls": self._tool_calls(), "refusal": None}
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": self.script.text, "refusal": None}
            finish = self.script.finish
        answer: dict[str, Any] = {
            "id": "chatcmpl-sim1",
            "object": "chat.completion",
            "created": CREATED,
            "model": body["model"],
            "choices": [{"index": i, "message": message, "logprobs": None, "finish_reason": finish} for i in range(_n(body))],
            "system_fingerprint": "fp_sim",
        }
        if (usage := self._usage()) is not None:
            answer["usage"] = usage
        return answer

    def _chat_stream(self, body: dict[str, Any]) -> Reply:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return Reply.sse(self._chat_events(body, include_usage))

    def _chat_events(self, body: dict[str, Any], include_usage: bool) -> Iterator[str]:
        def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> str:
            data: dict[str, Any] = {
                "id": "chatcmpl-sim1",
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": body["model"],
                "system_fingerprint": "fp_sim",
                "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                data["usage"] = None
            return sse(data)

        if self._wants_tool(body):
            call = self._tool_calls()[0]
            arguments = call["function"]["arguments"]
            yield chunk(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"index": 0, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"], "arguments": ""}}
                    ],
                }
            )
            half = len(arguments) // 2
            for piece in (arguments[:half], arguments[half:]):
                yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            yield chunk({}, "tool_calls")
        else:
            # With n > 1, the choices' chunks interleave, as OpenAI sends them.
            choices = range(_n(body))
            for i in choices:
                yield chunk({"role": "assistant", "content": "", "refusal": None}, index=i)
            for piece in self.script.pieces():
                for i in choices:
                    yield chunk({"content": piece}, index=i)
            for i in choices:
                yield chunk({}, self.script.finish, index=i)
        if include_usage and (usage := self._usage()) is not None:
            yield sse(
                {
                    "id": "chatcmpl-sim1",
                    "object": "chat.completion.chunk",
                    "created": CREATED,
                    "model": body["model"],
                    "system_fingerprint": "fp_sim",
                    "choices": [],
                    "usage": usage,
                }
            )
        yield sse("[DONE]")

    # --- legacy completions ---------------------------------------------------------------------

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "id": "cmpl-sim1",
            "object": "text_completion",
            "created": CREATED,
            "model": body["model"],
            "choices": [{"index": 0, "text": self.script.text, "logprobs": None, "finish_reason": self.script.finish}],
        }
        if (usage := self._usage()) is not None:
            answer["usage"] = usage
        return answer

    def _completion_stream(self, body: dict[str, Any]) -> Reply:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def events() -> Iterator[str]:
            pieces = self.script.pieces()
            for i, piece in enumerate(pieces):
                finish = self.script.finish if i == len(pieces) - 1 else None
                yield sse(
                    {
                        "id": "cmpl-sim1",
                        "object": "text_completion",
                        "created": CREATED,
                        "model": body["model"],
                        "choices": [{"index": 0, "text": piece, "logprobs": None, "finish_reason": finish}],
                    }
                )
            if include_usage and (usage := self._usage()) is not None:
                yield sse(
                    {
                        "id": "cmpl-sim1",
                        "object": "text_completion",
                        "created": CREATED,
                        "model": body["model"],
                        "choices": [],
                        "usage": usage,
                    }
                )
            yield sse("[DONE]")

        return Reply.sse(events())

    # --- embeddings -----------------------------------------------------------------------------

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body.get("input")
        items = (
            [inputs]
            if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int))
            else list(inputs or [])
        )
        dimensions = int(body.get("dimensions") or self.script.embedding_dimensions)
        data = []
        for index, item in enumerate(items):
            vector = vector_for(str(item), dimensions)
            if body.get("encoding_format") == "base64":
                encoded: Any = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            else:
                encoded = vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(len(str(item).split()) for item in items)
        return {"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _n(body: dict[str, Any]) -> int:
    """How many choices a chat request asks for (`n`, 1 by default)."""
    n = body.get("n")
    return n if isinstance(n, int) and n > 0 else 1


def vector_for(text: str, dimensions: int) -> list[float]:
    """A deterministic embedding: exactly representable in float32, so base64 round trips are exact."""
    digest = hashlib.sha256(text.encode()).digest() * (dimensions // 32 + 1)
    return [(byte - 128) / 128 for byte in digest[:dimensions]]
