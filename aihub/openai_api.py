"""The OpenAI-compatible API: chat completions, legacy completions and embeddings.

Requests pass through as the client sent them — fields City does not know are forwarded, not
dropped — with `model` mapped to the chosen deployment and `studio_id` (City's own) removed.
Answers are OpenAI's shapes with City's model id; streams are OpenAI's SSE, `data: [DONE]` last.
"""

import asyncio
import base64
import logging
import sys
from array import array
from collections.abc import AsyncGenerator, Callable
from typing import Any

from django.http import HttpResponseBase

from aihub.adapters import adapter_for
from aihub.adapters.base import Upstream, UpstreamError
from aihub.catalog_types import EMBEDDINGS, OPENAI, TEXT
from aihub.estimate import worst_chat, worst_completion, worst_embedding
from aihub.metering import CLIENT_CLOSED, Meter, estimate_tokens
from aihub.pipeline import admit, settle_usage
from aihub.streaming import DONE, data_frame, error_payload
from city.calls import Call
from city.errors import ApiError, error_body

log = logging.getLogger("aihub")

CITY_FIELDS = ("studio_id",)  # City's own request fields, never sent upstream

INTERNAL_ERROR = error_body("City failed while relaying the answer; the error is logged. Try again.", "api_error", code="internal_error")

# Transforms an upstream chunk into what the client receives (None: nothing to send) and
# returns the generated text in it, for counting when the upstream reports no usage.
ChunkMap = Callable[[dict[str, Any]], tuple[dict[str, Any] | None, str]]


def upstream_body(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in CITY_FIELDS}


def stream_flag(data: dict[str, Any]) -> bool:
    return data.get("stream") is True  # its type was checked with the request's shape


def wants_usage(data: dict[str, Any]) -> bool:
    options = data.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


async def openai_events(
    stream: AsyncGenerator[dict[str, Any], None],
    first: dict[str, Any] | None,
    meter: Meter,
    *,
    chunk_map: ChunkMap,
    include_usage: bool,
) -> AsyncGenerator[bytes, None]:
    """OpenAI SSE from upstream chunks: mapped chunks, then (when asked) the usage chunk, then [DONE].

    The upstream's usage (always asked for) is kept for the record and shown only when the client
    asked; without one, City counts. A failure mid-way is sent as an `{"error": …}` event (what
    OpenAI's SDKs raise as APIError) and the stream ends without [DONE].
    """
    status, error_code = 200, ""  # what the meter records if the stream ends by an exit not handled below
    generated: list[str] = []
    last: dict[str, Any] = {}
    got_usage = False
    try:
        chunk = first
        while chunk is not None:
            if not chunk.get("choices") and "usage" in chunk:
                got_usage = meter.use(chunk["usage"]) or got_usage
            else:
                mapped, text = chunk_map(chunk)
                generated.append(text)
                if mapped is not None:
                    mapped["model"] = meter.model.id
                    if include_usage:
                        mapped["usage"] = None  # as OpenAI sends it on every chunk but the last
                    last = mapped
                    yield data_frame(mapped)
            chunk = await anext(stream, None)
        if not got_usage:
            meter.estimate(estimate_tokens("".join(generated)))
        meter.finish(200)  # before the last frames: the pipeline settles the call before they go out
        if include_usage:
            usage_chunk = {
                "id": last.get("id", ""),
                "object": last.get("object", "chat.completion.chunk"),
                "created": last.get("created", 0),
                "model": meter.model.id,
                "choices": [],
                "usage": meter.usage(),
            }
            if "system_fingerprint" in last:
                usage_chunk["system_fingerprint"] = last["system_fingerprint"]
            yield data_frame(usage_chunk)
        yield DONE
    except UpstreamError as exc:
        if not got_usage:
            meter.estimate(estimate_tokens("".join(generated)))
        meter.finish(exc.status, exc.code or "upstream_error")
        yield data_frame(error_payload(exc))
    except (asyncio.CancelledError, GeneratorExit):
        status, error_code = CLIENT_CLOSED, "client_closed"
        if not got_usage:
            meter.estimate(estimate_tokens("".join(generated)))
        raise
    except Exception:
        log.exception("relaying a stream from %s failed", meter.provider)
        meter.finish(500, "internal_error")
        yield data_frame(INTERNAL_ERROR)
    finally:
        await stream.aclose()  # the upstream request ends here, at once
        meter.finish(status, error_code)


# --- chat completions -----------------------------------------------------------------------------


def chat_chunk_text(chunk: dict[str, Any]) -> str:
    pieces = []
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        for key in ("content", "reasoning_content"):
            if isinstance(delta.get(key), str):
                pieces.append(delta[key])
        for call in delta.get("tool_calls") or ():
            function = call.get("function") or {}
            pieces.append((function.get("name") or "") + (function.get("arguments") or ""))
    return "".join(pieces)


def chat_message_text(answer: dict[str, Any]) -> str:
    pieces = []
    for choice in answer.get("choices") or ():
        message = choice.get("message") or {}
        for key in ("content", "reasoning_content"):
            if isinstance(message.get(key), str):
                pieces.append(message[key])
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            pieces.append((function.get("name") or "") + (function.get("arguments") or ""))
    return "".join(pieces)


async def chat_completions(call: Call) -> HttpResponseBase:
    """POST /v1/ai/chat/completions (and /v1/chat/completions): OpenAI's chat completions."""
    data = call.data  # checked by its declared input, CHAT_COMPLETIONS (aihub/openai_request.py)
    body = upstream_body(data)
    ai = await admit(call, data.get("model"), (OPENAI, TEXT), "chat", lambda model: worst_chat(model, body))
    async with ai:
        if stream_flag(data):
            stream, first = await ai.open_stream(lambda up: adapter_for(up).chat_stream(up, body))
            return ai.events(
                openai_events(
                    stream,
                    first,
                    ai.meter,
                    chunk_map=lambda c: (c, chat_chunk_text(c)),
                    include_usage=wants_usage(data),
                )
            )
        answer = await ai.answer(lambda up: adapter_for(up).chat(up, body))
        settle_usage(ai.meter, answer, lambda: estimate_tokens(chat_message_text(answer)))
        answer["model"] = ai.model.id
        return await ai.respond(answer)


# --- legacy completions ---------------------------------------------------------------------------

# Legacy fields a chat upstream cannot honour; asked for, they are refused rather than ignored.
UNTRANSLATABLE_COMPLETION_FIELDS = ("suffix", "logprobs", "best_of")
# Fields that mean the same in both APIs and are carried over to the chat request.
SHARED_FIELDS = (
    "max_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "seed",
    "user",
    "stream",
    "stream_options",
)


def single_prompt(data: dict[str, Any]) -> str:
    prompt = data.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise ApiError(
            400,
            "prompt must be one non-empty string for this model (it is served through chat; arrays of prompts and token ids need a model with native completions).",
            param="prompt",
            code="invalid_type" if prompt is not None else "missing_field",
        )
    for name in UNTRANSLATABLE_COMPLETION_FIELDS:
        if data.get(name) not in (None, 1 if name == "best_of" else None):
            raise ApiError(
                400,
                f"{name} is not supported for this model: it is served through chat completions.",
                param=name,
                code="unsupported_parameter",
            )
    return prompt


def chat_request_for(data: dict[str, Any], prompt: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": data["model"], "messages": [{"role": "user", "content": prompt}]}
    body.update({key: data[key] for key in SHARED_FIELDS if key in data})
    return body


def completion_from_chat(answer: dict[str, Any], prompt: str, echo: bool) -> dict[str, Any]:
    choices = [
        {
            "index": choice.get("index", i),
            "text": (prompt if echo else "") + (choice.get("message", {}).get("content") or ""),
            "logprobs": None,
            "finish_reason": _completion_finish(choice.get("finish_reason")),
        }
        for i, choice in enumerate(answer.get("choices") or ())
    ]
    completion = {
        "id": "cmpl-" + str(answer.get("id", "")).removeprefix("chatcmpl-"),
        "object": "text_completion",
        "created": answer.get("created", 0),
        "model": answer.get("model", ""),
        "choices": choices,
    }
    if "usage" in answer:
        completion["usage"] = answer["usage"]
    if answer.get("system_fingerprint"):
        completion["system_fingerprint"] = answer["system_fingerprint"]
    return completion


def _completion_finish(reason: str | None) -> str | None:
    # Legacy completions know stop, length and content_filter; a chat-only reason reads as stop.
    return reason if reason in (None, "stop", "length", "content_filter") else "stop"


def completion_chunk_from_chat(chunk: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    choices, text = [], ""
    for choice in chunk.get("choices") or ():
        piece = (choice.get("delta") or {}).get("content") or ""
        finish = choice.get("finish_reason")
        text += piece
        if piece or finish:
            choices.append({"index": choice.get("index", 0), "text": piece, "logprobs": None, "finish_reason": _completion_finish(finish)})
    if not choices:
        return None, text
    return {
        "id": "cmpl-" + str(chunk.get("id", "")).removeprefix("chatcmpl-"),
        "object": "text_completion",
        "created": chunk.get("created", 0),
        "model": chunk.get("model", ""),
        "choices": choices,
    }, text


def completion_chunk_text(chunk: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    return chunk, "".join(c.get("text") or "" for c in chunk.get("choices") or ())


async def completions(call: Call) -> HttpResponseBase:
    """POST /v1/ai/completions (and /v1/completions): legacy completions, for every chat model.

    An upstream that serves /completions itself gets the request as it is; for any other, the
    prompt becomes a one-message chat and the answer is turned back into a text completion
    (streaming included).
    """
    data = call.data  # checked by its declared input, COMPLETIONS (aihub/openai_request.py)
    body = upstream_body(data)
    chat_prompts: list[str] = []  # the prompt as one chat message, for upstreams without /completions

    def prepare(upstreams: list[Upstream]) -> None:  # checked before anything is counted
        if not all(up.legacy_completions for up in upstreams):
            chat_prompts.append(single_prompt(data))

    ai = await admit(call, data.get("model"), (OPENAI, TEXT), "completions", lambda model: worst_completion(model, body), prepare)
    async with ai:
        echo = data.get("echo") is True
        chat_prompt = chat_prompts[0] if chat_prompts else ""
        chat_body = chat_request_for(body, chat_prompt) if chat_prompts else {}
        if stream_flag(data):

            def start(up: Upstream) -> AsyncGenerator[dict[str, Any], None]:
                adapter = adapter_for(up)
                if up.legacy_completions:
                    return adapter.completions_stream(up, body)
                return completion_stream_from_chat(adapter.chat_stream(up, chat_body), chat_prompt if echo else "")

            stream, first = await ai.open_stream(start)
            return ai.events(openai_events(stream, first, ai.meter, chunk_map=completion_chunk_text, include_usage=wants_usage(data)))

        async def attempt(up: Upstream) -> dict[str, Any]:
            adapter = adapter_for(up)
            if up.legacy_completions:
                return await adapter.completions(up, body)
            return completion_from_chat(await adapter.chat(up, chat_body), chat_prompt, echo)

        answer = await ai.answer(attempt)
        settle_usage(ai.meter, answer, lambda: estimate_tokens("".join(c.get("text") or "" for c in answer.get("choices") or ())))
        answer["model"] = ai.model.id
        return await ai.respond(answer)


async def completion_stream_from_chat(
    stream: AsyncGenerator[dict[str, Any], None], echo_prompt: str
) -> AsyncGenerator[dict[str, Any], None]:
    """A chat stream as legacy completion chunks (usage chunks pass as they are); `echo_prompt`,
    when given, is sent first."""
    echoed: set[int] = set()  # with n > 1, each choice's text starts with the prompt
    try:
        async for chunk in stream:
            if not chunk.get("choices"):
                yield chunk
                continue
            mapped, _ = completion_chunk_from_chat(chunk)
            if mapped is None:
                continue
            if echo_prompt:
                for choice in mapped["choices"]:
                    if choice["index"] not in echoed:
                        echoed.add(choice["index"])
                        echo = {"index": choice["index"], "text": echo_prompt, "logprobs": None, "finish_reason": None}
                        yield {**mapped, "choices": [echo]}
            yield mapped
    finally:
        await stream.aclose()


# --- embeddings -------------------------------------------------------------------------------------


def check_embedding_input(data: dict[str, Any]) -> str:
    value = data.get("input")
    ok = (isinstance(value, str) and value != "") or (
        isinstance(value, list)
        and value
        and (
            all(isinstance(v, str) and v != "" for v in value)
            or all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or all(isinstance(v, list) and v and all(isinstance(t, int) and not isinstance(t, bool) for t in v) for v in value)
        )
    )
    if not ok:
        raise ApiError(
            400,
            "input must be a non-empty string, a list of non-empty strings, or token ids (a list of integers, or a list of such lists).",
            param="input",
            code="missing_field" if value is None else "invalid_type",
        )
    encoding = data.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise ApiError(400, "encoding_format must be 'float' or 'base64'.", param="encoding_format", code="invalid_value")
    return encoding


def float32_base64(vector: list[float]) -> str:
    """A vector as OpenAI's base64 encoding: little-endian float32, as the official SDKs decode it."""
    packed = array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


async def embeddings(call: Call) -> HttpResponseBase:
    """POST /v1/ai/embeddings (and /v1/embeddings): floats or base64, one string or many."""
    data = call.data  # checked by its declared input, EMBEDDINGS (aihub/openai_request.py)
    encoding = check_embedding_input(data)
    body = upstream_body(data)
    ai = await admit(call, data.get("model"), (EMBEDDINGS,), "embeddings", lambda model: worst_embedding(model, body))
    async with ai:
        answer = await ai.answer(lambda up: adapter_for(up).embeddings(up, body))
        settle_usage(ai.meter, answer, lambda: 0)  # no output; the input as the reservation counted it
        if encoding == "base64":
            for item in answer.get("data") or ():
                if isinstance(item.get("embedding"), list):
                    item["embedding"] = float32_base64(item["embedding"])
        answer["model"] = ai.model.id
        return await ai.respond(answer)
