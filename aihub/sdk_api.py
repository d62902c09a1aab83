"""City's own text API for studios: POST /v1/ai/text and its streaming twin POST /v1/ai/stream.

Request: `{studio_id?, model, prompt | messages, system?, max_tokens?, temperature?, …}`; OpenAI's
chat parameters (top_p, stop, seed, tools, response_format, …) and the common extensions `top_k` and
`thinking` go to the model. Any other field, and a parameter whose answer has no place in one
message (`n` > 1, `logprobs`, audio), is a 400 naming it.
Answer: a message `{id: "msg_…", role: "assistant", parts: [...], model, finish_reason, usage}`
with parts `{"type": "text", "text"}`, `{"type": "reasoning", "text"}` (models that show their
thinking) and `{"type": "tool_call", "id", "name", "arguments"}`.

The stream's events, in order (each `data:` is one JSON object):
    event: start   data: {"id", "model", "role": "assistant"}
    event: delta   data: {"type": "text" | "reasoning", "text"}          (zero or more)
    event: done    data: the whole message, as /v1/ai/text answers it, usage included
or, when the upstream fails after the stream has started, instead of `done`:
    event: error   data: {"error": {"message", "type", "code", "param"}}
A failure before the stream starts is an ordinary JSON error with its HTTP status.
"""

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from django.http import HttpResponseBase

from aihub import openai_request as oa_request
from aihub.adapters import adapter_for
from aihub.adapters import openai_shapes as oa
from aihub.adapters.base import UpstreamError
from aihub.catalog_types import STREAM, TEXT, Model
from aihub.estimate import worst_chat
from aihub.metering import CLIENT_CLOSED, Meter, estimate_tokens
from aihub.openai_api import INTERNAL_ERROR, chat_message_text, log, upstream_body
from aihub.openai_request import CHAT_COMPLETIONS
from aihub.pipeline import admit, settle_usage
from aihub.streaming import error_payload, event_frame
from city.calls import Call
from city.errors import ApiError
from city.ids import new_id

OWN_FIELDS = ("studio_id", "model", "prompt", "messages", "system")
# OpenAI chat fields whose answer has no place in City's message (one message of text, reasoning and
# tool-call parts); accepted only at their neutral value (`n: 1` …).
OUTSIDE_THE_MESSAGE = ("n", "logprobs", "top_logprobs", "audio", "modalities", "functions", "function_call")
# What else a request may carry: OpenAI's chat parameters, and the provider extensions most models
# share (`top_k`; `thinking`, as DeepSeek and Claude take it). Anything else is refused, naming it.
CHAT_PARAMETERS = (oa.OPENAI_CHAT_FIELDS - {"model", "messages", "stream", "stream_options", *OUTSIDE_THE_MESSAGE}) | {"top_k", "thinking"}
# The parameters' types, checked here so that a mistake is named the same way whichever provider answers.
NUMBER, INTEGER, TEXT_OR_TEXTS = "a number", "an integer", "a string or a list of strings"
PARAMETER_TYPES: dict[str, str] = {
    "temperature": NUMBER,
    "top_p": NUMBER,
    "presence_penalty": NUMBER,
    "frequency_penalty": NUMBER,
    "seed": INTEGER,
    "max_completion_tokens": INTEGER,
    "top_k": INTEGER,
    "stop": TEXT_OR_TEXTS,
    "tools": "a list",
    "response_format": "an object",
    "logit_bias": "an object",
    "metadata": "an object",
    "thinking": "an object",
    "user": "a string",
    "reasoning_effort": "a string",
    "parallel_tool_calls": "true or false",
}


def chat_request(data: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI chat request for a text request; raises ApiError naming the first bad field."""
    prompt, messages, system = data.get("prompt"), data.get("messages"), data.get("system")
    if (prompt is None) == (messages is None):
        raise ApiError(
            400,
            "Send either prompt (a string) or messages (a list of {role, content}), not both and not neither.",
            param="prompt",
            code="missing_field" if prompt is None else "invalid_value",
        )
    if system is not None and not isinstance(system, str):
        raise ApiError(400, "system must be a string.", param="system", code="invalid_type")
    chat_messages: list[dict[str, str]] | None
    if prompt is not None:
        if not isinstance(prompt, str) or not prompt:
            raise ApiError(400, "prompt must be a non-empty string.", param="prompt", code="invalid_type")
        chat_messages = [{"role": "user", "content": prompt}]
    else:
        chat_messages = [_message(m, i) for i, m in enumerate(messages)] if isinstance(messages, list) and messages else None
        if chat_messages is None:
            raise ApiError(400, "messages must be a non-empty list of {role, content}.", param="messages", code="invalid_type")
    for name in ("max_tokens", "max_completion_tokens"):
        value = data.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ApiError(400, f"{name} must be a positive integer.", param=name, code="invalid_value")
    temperature = data.get("temperature")
    if temperature is not None and (
        not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not 0 <= temperature <= 2
    ):
        raise ApiError(400, "temperature must be a number from 0 to 2.", param="temperature", code="invalid_value")
    body = {key: value for key, value in data.items() if key not in OWN_FIELDS}
    check_parameters(body)
    body["model"] = data.get("model")
    body["messages"] = chat_messages
    # The whole shape as OpenAI's chat request (tools, tool calls, content parts …), as the chat route checks it.
    CHAT_COMPLETIONS.validate(body)
    if system:
        chat_messages.insert(0, {"role": "system", "content": system})
    return body


def check_parameters(parameters: dict[str, Any]) -> None:
    """Refuse, naming it, a field City's text API does not take, or a parameter of the wrong type."""
    for name, value in parameters.items():
        if name == "stream":
            raise ApiError(
                400,
                "stream is not a field of this API: POST /v1/ai/stream answers the same request as server-sent events.",
                param=name,
                code="unknown_field",
            )
        if name in OUTSIDE_THE_MESSAGE:
            if value is None or value == oa.NEUTRAL_VALUES.get(name):
                continue
            raise ApiError(
                400,
                f"{name} does not fit this API's answer (one message); use POST /v1/ai/chat/completions for it.",
                param=name,
                code="unsupported_parameter",
            )
        if name not in CHAT_PARAMETERS:
            raise ApiError(
                400,
                f"{name} is not a field of this API: it takes model, prompt or messages, system and OpenAI's chat parameters "
                "(max_tokens, temperature, top_p, stop, seed, tools, response_format …). Provider-specific fields go through "
                "POST /v1/ai/chat/completions.",
                param=name,
                code="unknown_field",
            )
        expected = PARAMETER_TYPES.get(name)
        if value is None or expected is None or _is(value, expected):
            continue
        raise ApiError(400, f"{name} must be {expected}.", param=name, code="invalid_type")


def _is(value: Any, expected: str) -> bool:
    if expected == NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == TEXT_OR_TEXTS:
        return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
    kind = {"a list": list, "an object": dict, "a string": str, "true or false": bool}[expected]
    return isinstance(value, kind)


def _message(message: Any, index: int) -> dict[str, Any]:
    """A message as OpenAI takes it: `content` as given, or City's `parts` turned into content parts."""
    where = f"messages[{index}]"
    if not isinstance(message, dict) or message.get("role") not in ("system", "developer", "user", "assistant", "tool"):
        raise ApiError(
            400,
            f"{where} must be an object with role 'system', 'developer', 'user', 'assistant' or 'tool'.",
            param=where,
            code="invalid_value",
        )
    if "parts" not in message:
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise ApiError(
                400, f"{where}.content must be a string or a list of content parts.", param=f"{where}.content", code="invalid_type"
            )
        if content is None and not message.get("tool_calls"):
            raise ApiError(400, f"{where} needs content (a string) or parts.", param=where, code="missing_field")
        return message
    parts = message["parts"]
    if not isinstance(parts, list):
        raise ApiError(
            400, f'{where}.parts must be a list such as [{{"type": "text", "text": "…"}}].', param=f"{where}.parts", code="invalid_type"
        )
    content = []
    for n, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            content.append({"type": "text", "text": part["text"]})
        elif kind == "image" and isinstance(part.get("url"), str):
            content.append({"type": "image_url", "image_url": {"url": part["url"]}})
        else:
            raise ApiError(
                400,
                f'{where}.parts[{n}] must be {{"type": "text", "text"}} or {{"type": "image", "url"}} (an https or data: URL).',
                param=f"{where}.parts[{n}]",
                code="invalid_value",
            )
    rest = {key: value for key, value in message.items() if key != "parts"}
    return {**rest, "content": content}


class TextRequest:
    """The input spec of /v1/ai/text and /v1/ai/stream (see city/registry.py's actions): City's own
    fields, then OpenAI's chat parameters, checked as `chat_request` checks them.

    What the handler receives is the upstream chat body `chat_request` makes (with `studio_id`, if
    given), so the request is checked and translated once."""

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        body = chat_request(data)
        if "studio_id" in data:
            body["studio_id"] = data["studio_id"]
        return body

    def json_schema(self) -> dict[str, Any]:
        text = {"type": "string"}
        part = {
            "oneOf": [
                {"type": "object", "properties": {"type": {"const": "text"}, "text": text}, "required": ["type", "text"]},
                {"type": "object", "properties": {"type": {"const": "image"}, "url": text}, "required": ["type", "url"]},
            ]
        }
        message = {
            "type": "object",
            "properties": {
                "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
                "content": {"anyOf": [text, {"type": "array", "items": {"type": "object"}}]},
                "parts": {"type": "array", "items": part},
            },
            "required": ["role"],
        }
        parameters = {name: oa_request.CHAT_FIELDS[name].schema() for name in sorted(CHAT_PARAMETERS) if name in oa_request.CHAT_FIELDS}
        return {
            "title": "TextRequest",
            "type": "object",
            "properties": {
                "studio_id": text,
                "model": text,
                "prompt": text,
                "messages": {"type": "array", "minItems": 1, "items": message},
                "system": text,
                **parameters,
                "top_k": {"type": "integer"},
                "thinking": {"type": "object"},
            },
            "required": ["model"],
            "additionalProperties": False,
        }


TEXT_REQUEST = TextRequest()


def message_from_chat(message_id: str, model: Model, answer: dict[str, Any], usage: dict[str, int]) -> dict[str, Any]:
    choice = (answer.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    return {
        "id": message_id,
        "role": "assistant",
        "parts": parts_of(message.get("reasoning_content"), message.get("content"), message.get("tool_calls")),
        "model": model.id,
        "finish_reason": choice.get("finish_reason"),
        "usage": usage,
    }


def parts_of(reasoning: Any, text: Any, tool_calls: Any) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if isinstance(reasoning, str) and reasoning:
        parts.append({"type": "reasoning", "text": reasoning})
    if isinstance(text, str) and (text or not tool_calls):
        parts.append({"type": "text", "text": text})
    for call in tool_calls or ():
        function = call.get("function") or {}
        parts.append(
            {"type": "tool_call", "id": call.get("id"), "name": function.get("name"), "arguments": function.get("arguments") or ""}
        )
    if not parts:
        parts.append({"type": "text", "text": ""})
    return parts


async def text(call: Call) -> HttpResponseBase:
    """POST /v1/ai/text: one whole answer."""
    body = upstream_body(call.data)  # TEXT_REQUEST made it the OpenAI chat body
    ai = await admit(call, body.get("model"), (TEXT,), "text", lambda model: worst_chat(model, body))
    async with ai:
        answer = await ai.answer(lambda up: adapter_for(up).chat(up, body))
        settle_usage(ai.meter, answer, lambda: estimate_tokens(chat_message_text(answer)))
        return await ai.respond(message_from_chat(new_id("msg"), ai.model, answer, ai.meter.usage()))


async def stream(call: Call) -> HttpResponseBase:
    """POST /v1/ai/stream: the same answer as server-sent events (see the module docstring)."""
    body = upstream_body(call.data)  # TEXT_REQUEST made it the OpenAI chat body
    ai = await admit(call, body.get("model"), (STREAM,), "stream", lambda model: worst_chat(model, body))
    async with ai:
        chunks, first = await ai.open_stream(lambda up: adapter_for(up).chat_stream(up, body))
        return ai.events(text_events(chunks, first, ai.meter, new_id("msg")))


async def text_events(
    chunks: AsyncGenerator[dict[str, Any], None], first: dict[str, Any] | None, meter: Meter, message_id: str
) -> AsyncGenerator[bytes, None]:
    status, error_code = 200, ""
    text_pieces: list[str] = []
    reasoning_pieces: list[str] = []
    tool_calls: dict[int, dict[str, Any]] = {}
    finish_reason = None
    got_usage = False

    def count() -> None:
        if not got_usage:
            generated = "".join(text_pieces) + "".join(reasoning_pieces) + "".join(c["function"]["arguments"] for c in tool_calls.values())
            meter.estimate(estimate_tokens(generated))

    try:
        yield event_frame("start", {"id": message_id, "model": meter.model.id, "role": "assistant"})
        chunk = first
        while chunk is not None:
            choices = chunk.get("choices")
            if not choices and "usage" in chunk:
                got_usage = meter.use(chunk["usage"]) or got_usage
            for choice in choices or ():
                delta = choice.get("delta") or {}
                if isinstance(delta.get("reasoning_content"), str) and delta["reasoning_content"]:
                    reasoning_pieces.append(delta["reasoning_content"])
                    yield event_frame("delta", {"type": "reasoning", "text": delta["reasoning_content"]})
                if isinstance(delta.get("content"), str) and delta["content"]:
                    text_pieces.append(delta["content"])
                    yield event_frame("delta", {"type": "text", "text": delta["content"]})
                for piece in delta.get("tool_calls") or ():
                    _merge_tool_call(tool_calls, piece)
                finish_reason = choice.get("finish_reason") or finish_reason
            chunk = await anext(chunks, None)
        count()
        meter.finish(200)  # before the last frame: the pipeline settles the call before it goes out
        calls = [tool_calls[i] for i in sorted(tool_calls)]
        yield event_frame(
            "done",
            {
                "id": message_id,
                "role": "assistant",
                "parts": parts_of("".join(reasoning_pieces), "".join(text_pieces), calls),
                "model": meter.model.id,
                "finish_reason": finish_reason,
                "usage": meter.usage(),
            },
        )
    except UpstreamError as exc:
        count()
        meter.finish(exc.status, exc.code or "upstream_error")
        yield event_frame("error", error_payload(exc))
    except (asyncio.CancelledError, GeneratorExit):
        status, error_code = CLIENT_CLOSED, "client_closed"
        count()
        raise
    except Exception:
        log.exception("relaying a stream from %s failed", meter.provider)
        meter.finish(500, "internal_error")
        yield event_frame("error", INTERNAL_ERROR)
    finally:
        await chunks.aclose()
        meter.finish(status, error_code)


def _merge_tool_call(calls: dict[int, dict[str, Any]], piece: dict[str, Any]) -> None:
    index = piece.get("index", 0)
    call = calls.setdefault(index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
    if piece.get("id"):
        call["id"] = piece["id"]
    function = piece.get("function") or {}
    call["function"]["name"] += function.get("name") or ""
    call["function"]["arguments"] += function.get("arguments") or ""
