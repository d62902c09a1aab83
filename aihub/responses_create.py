"""`POST /v1/responses`: a Responses request through the one AI-call pipeline, onto any provider.

    check the request (400 naming the field) → the conversation behind `previous_response_id`
    and the items `item_reference`s name (400 naming them when not stored) → the chat body (aihub/responses_translate.py; 400 for what cannot be
    translated) → admit (plans, limits, the worst case reserved on the chat body) → the upstream's
    chat answer or stream through its adapter → the `response` object or the Responses stream events
    (aihub/responses_events.py) → stored unless `store` is false → settled

A model whose upstreams all speak Responses themselves (OpenAI's deployments) is passed through
instead of translated (aihub/responses_native.py): what cannot be said in chat is then no refusal.
The route's usage records say "responses" (the action's name), so the inbound protocol is recorded.
"""

import asyncio
import logging
import re
import time
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from django.http import HttpResponseBase
from django.utils import timezone

from aihub import responses_native as rn
from aihub import responses_output as ro
from aihub import responses_store
from aihub import responses_translate as rt
from aihub.adapters import adapter_for
from aihub.adapters.base import Upstream, UpstreamError
from aihub.catalog_types import OPENAI, TEXT, Model
from aihub.estimate import Worst, worst_chat
from aihub.metering import CLIENT_CLOSED, Meter, estimate_tokens
from aihub.models_responses import StoredResponse
from aihub.openai_api import chat_message_text
from aihub.pipeline import AiCall, admit, settle_usage
from aihub.responses_events import ResponseEvents
from aihub.responses_request import check_request
from city.calls import Call
from city.errors import ApiError
from city.ids import new_id

log = logging.getLogger("aihub")


async def create(call: Call) -> HttpResponseBase:
    """POST /v1/responses (and /v1/ai/responses): the steps in the module docstring."""
    request = {key: value for key, value in check_request(call.data).items() if key not in rt.CITY_FIELDS}
    rt.refuse_what_city_does_not_keep(request)
    studio_id = call.studio_id()
    previous = request.get("previous_response_id")
    history = await responses_store.history(studio_id, previous) if previous else []
    response_id = new_id("resp")
    ids = ro.ItemIds(response_id)
    referenced = await referenced_items(studio_id, rt.item_references(request))
    input_items = rt.normalized_input(request, ids, referenced)
    try:
        translation: rt.Translation | None = rt.chat_body(request, history, input_items)
        refusal = None
    except ApiError as exc:  # refused unless the model's upstreams all speak Responses themselves
        translation, refusal = None, exc
    native: list[bool] = []

    def prepare(upstreams: list[Upstream]) -> None:
        native.append(all(up.native_responses for up in upstreams))
        if not native[0] and refusal is not None:
            raise refusal

    def worst_of(model: Model) -> Worst:
        # Passed through, items chat has no words for (reasoning sent back encrypted, hosted tools'
        # calls) are billed as input all the same: counted as JSON text, they are reserved, not dropped.
        if translation is None or (native[0] and any(rt.opaque_to_chat(item) for item in [*history, *input_items])):
            return worst_chat(model, rn.rough_chat_body(request, history, input_items))
        return worst_chat(model, translation.body)

    tool_paths = translation.tool_paths if translation is not None else []
    with in_responses_terms(tool_paths):  # the worst case is worked out with the adapter's own translation
        ai = await admit(call, request["model"], (OPENAI, TEXT), "chat", worst_of, prepare)
    keep = Keeper(studio_id, call.identity.token_id, input_items, previous, store=request.get("store") is not False)
    if native[0]:
        return await passed_through(
            ai,
            request,
            rn.upstream_request(request, history, input_items, reasons="reasoning" in ai.model.tags),
            rn.Renamer(response_id, ai.model.id, ids),
            keep,
        )
    assert translation is not None
    return await translated(ai, request, translation, ids, response_id, keep)


async def translated(
    ai: AiCall, request: dict[str, Any], translation: rt.Translation, ids: ro.ItemIds, response_id: str, keep: "Keeper"
) -> HttpResponseBase:
    """The request as a chat upstream answers its translation (aihub/responses_translate.py), turned
    back into a response (aihub/responses_output.py) or its stream (aihub/responses_events.py)."""
    body, namespaced, summaries = translation.body, translation.namespaced, translation.summaries
    response = ro.response_object(response_id, int(time.time()), ai.model.id, request, status="in_progress", output=[])
    async with ai:
        with in_responses_terms(translation.tool_paths):
            if request.get("stream") is True:
                stream, first = await ai.open_stream(
                    lambda up: adapter_for(up).chat_stream(up, rt.for_upstream(body, up.provider, up.adapter, summaries=summaries))
                )
                return ai.events(response_events(stream, first, ai.meter, ResponseEvents(response, namespaced, ids), keep))
            answer = await ai.answer(
                lambda up: adapter_for(up).chat(up, rt.for_upstream(body, up.provider, up.adapter, summaries=summaries))
            )
            settle_usage(ai.meter, answer, lambda: estimate_tokens(chat_message_text(answer)))
            output, finish_reason = ro.output_of(answer, namespaced, ids)
            response["output"] = output
            status, incomplete = ro.status_of(finish_reason)
            ro.finished(response, status, incomplete, usage_of(ai.meter))
            await keep(response)
            return await ai.respond(response)


async def passed_through(
    ai: AiCall, request: dict[str, Any], body: dict[str, Any], renamer: rn.Renamer, keep: "Keeper"
) -> HttpResponseBase:
    """The request as the upstream's own Responses API answers it (aihub/responses_native.py)."""
    async with ai:
        if request.get("stream") is True:
            stream, first = await ai.open_stream(lambda up: adapter_for(up).responses_stream(up, body))
            return ai.events(rn.native_events(stream, first, ai.meter, renamer, request, keep))
        answer = await ai.answer(lambda up: adapter_for(up).responses(up, body))
        response = rn.store_flag(renamer.response(answer, request.get("previous_response_id")), request.get("store") is not False)
        if not ai.meter.use(rn.chat_usage(answer.get("usage"))):
            ai.meter.estimate(estimate_tokens(orjson.dumps(response.get("output") or []).decode()))
        response["usage"] = usage_of(ai.meter)  # as metered, every detail OpenAI's schema lists in place
        await keep(response)
        return await ai.respond(response)


TOOL_PARAM = re.compile(r"tools\[(\d+)\]")
# Chat fields an adapter may name in a 400, and the Responses field the caller sent instead.
RESPONSES_NAMES = {
    "reasoning_effort": "reasoning.effort",
    "max_completion_tokens": "max_output_tokens",
    "max_tokens": "max_output_tokens",
    "response_format": "text.format",
    "verbosity": "text.verbosity",
    "messages": "input",
}


@contextmanager
def in_responses_terms(tool_paths: list[str]) -> Iterator[None]:
    """An adapter's 400 about the translated chat body, naming the Responses field the caller sent
    (`reasoning.effort`, not `reasoning_effort`; `tools[2]` where web search before it was left out):
    the caller never saw the chat body."""
    try:
        yield
    except ApiError as exc:
        tool = TOOL_PARAM.match(exc.param or "")
        if tool and int(tool[1]) < len(tool_paths):
            exc.message = exc.message.replace(tool[0], tool_paths[int(tool[1])])
            exc.param = tool_paths[int(tool[1])] + (exc.param or "")[len(tool[0]) :]
        head = (exc.param or "").split(".")[0].split("[")[0]
        if head in RESPONSES_NAMES:
            name = RESPONSES_NAMES[head]
            exc.message = exc.message.replace(f"`{head}`", f"`{name}`")
            if head in ("max_tokens", "max_completion_tokens"):  # the plan's cap advises it by name (aihub/pipeline.py)
                exc.message = exc.message.replace(head, name)
            exc.param = name
        raise


async def referenced_items(studio_id: str, wanted: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """The items `item_reference`s name (see responses_translate.item_references), by id, from this
    studio's stored responses that have not expired: one query, only when the input has references."""
    if not wanted:
        return {}
    found: dict[str, dict[str, Any]] = {}
    rows = StoredResponse.objects.filter(id__in=list(wanted), studio_id=studio_id, expires_at__gt=timezone.now())
    async for row in rows.only("id", "input_items", "response"):
        ids = set(wanted[row.id])
        for item in [*(row.response.get("output") or ()), *row.input_items]:
            if isinstance(item, dict) and item.get("id") in ids:
                found[item["id"]] = item
    return found


usage_of = rn.usage_of


class Keeper:
    """Stores a finished response unless the request said `store: false`."""

    def __init__(
        self, studio_id: str, token_id: str | None, input_items: list[dict[str, Any]], previous: str | None, *, store: bool
    ) -> None:
        self.studio_id, self.token_id, self.input_items, self.previous, self.store = studio_id, token_id, input_items, previous, store

    async def __call__(self, response: dict[str, Any]) -> None:
        if not self.store:
            return
        try:
            await responses_store.save(self.studio_id, self.token_id, response, self.input_items, self.previous)
        except Exception:
            # The answer was made and billed: the client gets it. A later previous_response_id naming
            # it is then a clear 404, which is better than losing the answer too.
            log.exception("storing response %s failed", response["id"])


async def response_events(
    stream: AsyncGenerator[dict[str, Any], None], first: dict[str, Any] | None, meter: Meter, events: ResponseEvents, keep: Keeper
) -> AsyncGenerator[bytes, None]:
    """The Responses stream: created and in_progress, then the output's events as the chunks come,
    then response.completed with the whole output and usage (stored first, so that a client that
    chains the next request at once finds it). The upstream's usage is taken for the record; without
    one, City counts. A failure mid-way ends the stream with response.failed."""
    status, error_code = 200, ""  # what the meter records if the stream ends by an exit not handled below
    got_usage = False
    try:
        # The events of one upstream chunk go out as one write (a delta is three frames or more): one
        # send per chunk, as chat's relay makes, not one per event.
        pending = events.start()
        chunk = first
        while chunk is not None:
            if not chunk.get("choices") and "usage" in chunk:
                got_usage = meter.use(chunk["usage"]) or got_usage
            else:
                pending += events.chunk(chunk)
            if pending:
                yield b"".join(pending)
                pending = []
            chunk = await anext(stream, None)
        closing = events.close_items()
        if not got_usage:
            meter.estimate(estimate_tokens(events.generated_text()))
        closing += events.finish(usage_of(meter))
        await keep(events.response)
        meter.finish(200)  # before the last write: the pipeline settles the call before it goes out
        yield b"".join(closing)
    except UpstreamError as exc:
        if not got_usage:
            meter.estimate(estimate_tokens(events.generated_text()))
        meter.finish(exc.status, exc.code or "upstream_error")
        last = events.fail("rate_limit_exceeded" if exc.status == 429 else "server_error", exc.message, usage_of(meter))
        await keep(events.response)
        yield b"".join(last)
    except (asyncio.CancelledError, GeneratorExit):
        status, error_code = CLIENT_CLOSED, "client_closed"
        if not got_usage:
            meter.estimate(estimate_tokens(events.generated_text()))
        raise
    except Exception:
        log.exception("relaying a Responses stream from %s failed", meter.provider)
        meter.finish(500, "internal_error")
        for frame in events.fail("server_error", "City failed while relaying the answer; the error is logged. Try again.", usage_of(meter)):
            yield frame
    finally:
        await stream.aclose()  # the upstream request ends here, at once
        meter.finish(status, error_code)
