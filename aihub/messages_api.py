"""The Anthropic Messages API, `/v1/messages` (and `/v1/ai/messages`) and `/v1/messages/count_tokens`,
onto every provider: errors in Anthropic's shape, City's token also accepted in `x-api-key`.

An Anthropic upstream gets the request as the client sent it (cache_control, thinking signatures,
betas unchanged); every other provider through translation to OpenAI chat (aihub/messages_translate.py,
aihub/messages_events.py).
"""

from collections.abc import AsyncGenerator
from typing import Any

from django.http import HttpResponseBase

from aihub import messages_count
from aihub.adapters import adapter_for
from aihub.adapters.anthropic import PASSED_HEADERS
from aihub.adapters.base import Upstream
from aihub.anthropic_errors import ERROR_SCHEMA, anthropic_error_response
from aihub.catalog_types import OPENAI, TEXT
from aihub.estimate import worst_messages
from aihub.messages_events import meter_usage, native_events, translated_events
from aihub.messages_request import COUNT_TOKENS, MESSAGES
from aihub.messages_translate import (
    CITY_FIELDS,
    anthropic_usage,
    chat_request,
    for_upstream,
    message_from_completion,
    openai_usage,
    shows_thinking,
    thinking_toggle,
)
from aihub.metering import estimate_tokens
from aihub.openai_api import chat_message_text
from aihub.pipeline import admit, settle_usage
from aihub.upstreams import known_model
from city.calls import Call
from city.errors import ApiError
from city.registry import USER, Action

JSON, SSE = "application/json", "text/event-stream"
NATIVE = "anthropic"  # the adapter that speaks the Messages API itself


def anthropic_headers(call: Call) -> dict[str, str]:
    """The client's headers an Anthropic upstream gets as they are (its API version, its betas)."""
    return {name: value for name in PASSED_HEADERS if (value := call.request.headers.get(name, "").strip())}


def check_request(data: dict[str, Any]) -> None:
    """What the declared shape cannot say: a 400 naming the field, before anything is counted."""
    if data["max_tokens"] < 1:
        raise ApiError(400, "max_tokens must be at least 1.", param="max_tokens", code="invalid_value")
    for name in ("temperature", "top_p"):
        value = data.get(name)
        if value is not None and not 0 <= value <= 1:
            raise ApiError(400, f"{name} must be from 0 to 1.", param=name, code="invalid_value")


async def messages(call: Call) -> HttpResponseBase:
    """POST /v1/messages (and /v1/ai/messages): Anthropic's Messages API, streaming included.

    Steps: the request's shape (its declared input, then `check_request`) → the pipeline's checks and
    reservation (`admit`; a model served by other providers gets the request translated first, so a
    field they cannot take is a 400 before anything is counted) → per upstream, Anthropic's own API or
    OpenAI chat through translation → the answer, or the stream, in Anthropic's shapes.
    """
    data = call.data  # checked by its declared input, MESSAGES (aihub/messages_request.py)
    check_request(data)
    body = {key: value for key, value in data.items() if key not in CITY_FIELDS}
    chats: list[tuple[dict[str, Any], str | None]] = []  # the translated body and thinking toggle, when some upstream needs them

    def prepare(upstreams: list[Upstream]) -> None:
        if all(up.adapter == NATIVE for up in upstreams):
            return
        model = known_model(body["model"])
        try:
            chats.append((chat_request(body, model), thinking_toggle(body, model)))
        except ApiError:
            native = [up for up in upstreams if up.adapter == NATIVE]
            if not native:
                raise
            upstreams[:] = native  # the fail-over deployments cannot take this request; Anthropic's can

    ai = await admit(call, body["model"], (OPENAI, TEXT), "chat", lambda model: worst_messages(model, body), prepare)
    async with ai:
        thinking = shows_thinking(body)
        headers = anthropic_headers(call)

        def native_body(up: Upstream) -> dict[str, Any]:
            return {**body, "model": up.model}

        def chat_body(up: Upstream) -> dict[str, Any]:
            chat, toggle = chats[0]
            return for_upstream(chat, up, thinking=thinking, toggle=toggle)

        tried: list[Upstream] = []  # the last is the one that answered (whose stream opened)
        if body.get("stream") is True:

            def start(up: Upstream) -> AsyncGenerator[dict[str, Any], None]:
                tried.append(up)
                adapter = adapter_for(up)
                if up.adapter == NATIVE:
                    return adapter.messages_stream(up, native_body(up), headers)
                return adapter.chat_stream(up, {**chat_body(up), "stream": True})

            stream, first = await ai.open_stream(start)
            if tried[-1].adapter == NATIVE:
                return ai.events(native_events(stream, first, ai.meter))
            return ai.events(translated_events(stream, first, ai.meter, thinking=thinking))

        async def attempt(up: Upstream) -> dict[str, Any]:
            tried.append(up)
            adapter = adapter_for(up)
            if up.adapter == NATIVE:
                return await adapter.messages(up, native_body(up), headers)
            return await adapter.chat(up, chat_body(up))

        answer = await ai.answer(attempt)
        if tried[-1].adapter == NATIVE:
            usage = answer.get("usage")
            if not (isinstance(usage, dict) and ai.meter.use(openai_usage(usage))):
                ai.meter.estimate(estimate_tokens(str(answer.get("content") or "")))
                answer["usage"] = anthropic_usage(ai.meter.usage())
            answer["model"] = ai.model.id
            return await ai.respond(answer)
        settle_usage(ai.meter, answer, lambda: estimate_tokens(chat_message_text(answer)))
        answer["usage"] = meter_usage(ai.meter)  # as billed: cache hits however the provider named them (DeepSeek's own field)
        return await ai.respond(message_from_completion(answer, ai.model.id, thinking=thinking))


ACTIONS: tuple[Action, ...] = (
    Action(
        "messages",
        messages,
        allow=(USER,),
        large_body=True,
        input=MESSAGES,
        api_key_header=True,
        error_response=anthropic_error_response,
        request_id_header="request-id",
        error_schema=ERROR_SCHEMA,
        description="Anthropic's Messages API on every model, streaming included; the token in x-api-key or as a bearer.",
        responds=(JSON, SSE),
    ),
    Action(
        "messages/count_tokens",
        messages_count.count_tokens,
        allow=(USER,),
        large_body=True,
        input=COUNT_TOKENS,
        api_key_header=True,
        error_response=anthropic_error_response,
        request_id_header="request-id",
        error_schema=ERROR_SCHEMA,
        description="Anthropic's token count of a Messages request, on every model.",
    ),
)
ALIASES: dict[str, str] = {"messages": "messages", "messages/count_tokens": "messages/count_tokens"}
