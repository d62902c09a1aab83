"""The Responses API passed through to an upstream that speaks it (OpenAI's own API: deployments with
`native_responses`), so that what only OpenAI's Responses endpoint does — hosted tools such as web
search, reasoning carried from turn to turn — works as it does there.

City stays the party the client talks to: the conversation behind `previous_response_id` and the
items `item_reference`s name come from City's store and go upstream as input, with `store: false`
(City keeps the response itself, for as long as its retention says) and encrypted reasoning asked
for (so that a stored conversation can go on statelessly). The answer carries City's response id,
item ids (responses_translate.ItemIds, so references resolve), and model id; its usage is metered
as the upstream reported it.
"""

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from aihub import responses_output as ro
from aihub import responses_translate as rt
from aihub.adapters.base import UpstreamError
from aihub.adapters.openai_responses import TERMINAL_EVENTS
from aihub.metering import CLIENT_CLOSED, Meter, estimate_tokens
from aihub.streaming import event_frame

log = logging.getLogger("aihub")

# The encrypted reasoning City asks the upstream for on every passed-through request (see the docstring).
ENCRYPTED_REASONING = "reasoning.encrypted_content"


def upstream_request(
    request: dict[str, Any], history: list[dict[str, Any]], input_items: list[dict[str, Any]], *, reasons: bool = True
) -> dict[str, Any]:
    """The body sent upstream: the client's, with the whole conversation as `input` (item ids left
    out: the upstream keeps nothing, so it knows none of them) and nothing stored there. Encrypted
    reasoning is asked of a model that `reasons` only: OpenAI refuses it from the others."""
    body = {key: value for key, value in request.items() if key not in rt.CITY_FIELDS and key != "previous_response_id"}
    body["input"] = [without_id(item) for item in [*history, *input_items] if not foreign_reasoning(item)]
    body["store"] = False
    if reasons:
        include = [value for value in request.get("include") or () if value != ENCRYPTED_REASONING]
        body["include"] = [*include, ENCRYPTED_REASONING]
    return body


# Items whose id OpenAI's schema leaves optional: sent without one (City's ids mean nothing upstream,
# where nothing is stored). The others keep City's id, which begins as OpenAI's does (`rs_`, `ws_` …);
# a reasoning item is read from its encrypted_content.
ID_OPTIONAL = frozenset({"message", "function_call", "function_call_output", "custom_tool_call", "custom_tool_call_output"})


def without_id(item: dict[str, Any]) -> dict[str, Any]:
    if item.get("type", "message") in ID_OPTIONAL:
        return {key: value for key, value in item.items() if key != "id"}
    return item


def foreign_reasoning(item: dict[str, Any]) -> bool:
    """A reasoning item OpenAI cannot take back: without encrypted content (another provider's thought,
    through City's translation), or with City's (Claude's signed thinking). Reasoning is the model's own
    context, not the conversation's: left out, the conversation is whole."""
    if item.get("type") != "reasoning":
        return False
    encrypted = item.get("encrypted_content")
    return not isinstance(encrypted, str) or not encrypted or encrypted.startswith(ro.THINKING_PREFIX)


def rough_chat_body(request: dict[str, Any], history: list[dict[str, Any]], input_items: list[dict[str, Any]]) -> dict[str, Any]:
    """A chat body as long as the request, for its worst case when it holds what chat has no words for
    (hosted tools, their items): everything as JSON text, which counts more tokens than the upstream
    will, never fewer."""
    everything = {"instructions": request.get("instructions"), "input": [*history, *input_items], "tools": request.get("tools")}
    body: dict[str, Any] = {"model": request["model"], "messages": [{"role": "user", "content": orjson.dumps(everything).decode()}]}
    if request.get("max_output_tokens") is not None:
        body["max_completion_tokens"] = request["max_output_tokens"]
    return body


def usage_of(meter: Meter) -> dict[str, Any]:
    return ro.usage_of(meter.prompt_tokens, meter.completion_tokens, meter.cached_tokens, meter.cache_write_tokens, meter.reasoning_tokens)


def chat_usage(usage: Any) -> dict[str, Any] | None:
    """A Responses `usage` in chat's terms, as Meter.use reads them."""
    if not isinstance(usage, dict) or not isinstance(usage.get("input_tokens"), int):
        return None
    found: dict[str, Any] = {"prompt_tokens": usage["input_tokens"], "completion_tokens": usage.get("output_tokens") or 0}
    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens")
    reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens")
    if isinstance(cached, int):
        found["prompt_tokens_details"] = {"cached_tokens": cached}
    if isinstance(reasoning, int):
        found["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return found


class Renamer:
    """The upstream's response and item ids → City's (one response's worth), and its model → City's."""

    def __init__(self, response_id: str, model_id: str, ids: ro.ItemIds) -> None:
        self.response_id, self.model_id, self.ids = response_id, model_id, ids
        self.items: dict[str, str] = {}

    def item_id(self, upstream_id: Any, kind: Any) -> str:
        key = str(upstream_id)
        if key not in self.items:
            self.items[key] = self.ids(rt.ITEM_PREFIX.get(kind, "item") if isinstance(kind, str) else "item")
        return self.items[key]

    def item(self, item: Any) -> Any:
        if isinstance(item, dict) and "id" in item:
            return {**item, "id": self.item_id(item["id"], item.get("type"))}
        return item

    def response(self, response: dict[str, Any], previous: str | None) -> dict[str, Any]:
        renamed = {**response, "id": self.response_id, "model": self.model_id, "previous_response_id": previous, "store": None}
        renamed["output"] = [self.item(item) for item in response.get("output") or ()]
        # Left out rather than null, as OpenAI's schema has them: an in-progress response's usage, and
        # previous_response_id / store until City sets them.
        return {key: value for key, value in renamed.items() if value is not None or key not in ("previous_response_id", "store", "usage")}

    def event(self, event: dict[str, Any], previous: str | None) -> dict[str, Any]:
        renamed = dict(event)
        if isinstance(event.get("response"), dict):
            renamed["response"] = self.response(event["response"], previous)
        if "item" in event:
            renamed["item"] = self.item(event["item"])
        if isinstance(event.get("item_id"), str):
            renamed["item_id"] = self.items.get(event["item_id"], event["item_id"])
        return renamed


def store_flag(response: dict[str, Any], store: bool) -> dict[str, Any]:
    response["store"] = store
    return response


async def native_events(
    stream: AsyncGenerator[dict[str, Any], None],
    first: dict[str, Any] | None,
    meter: Meter,
    renamer: Renamer,
    request: dict[str, Any],
    keep: Any,
) -> AsyncGenerator[bytes, None]:
    """The upstream's events with City's ids, renumbered (City may add the last one); its terminal
    event's usage metered; the finished response stored before that event goes out. A failure mid-way
    ends the stream with response.failed, as on the translated path."""
    status, error_code = 200, ""
    previous, store = request.get("previous_response_id"), request.get("store") is not False
    sequence = 0
    latest: dict[str, Any] = {}  # the response object as the last event that carried one showed it
    done: list[dict[str, Any]] = []  # output items finished so far
    got_usage = False

    def frame(event: dict[str, Any]) -> bytes:
        nonlocal sequence
        event["sequence_number"] = sequence
        sequence += 1
        return event_frame(str(event.get("type")), event)

    try:
        event = first
        while event is not None:
            renamed = renamer.event(event, previous)
            if "response" in renamed:
                latest = store_flag(renamed["response"], store)
            if renamed.get("type") == "response.output_item.done":
                done.append(renamed["item"])
            if renamed.get("type") in TERMINAL_EVENTS:
                got_usage = meter.use(chat_usage(latest.get("usage")))
                if not got_usage:
                    meter.estimate(estimate_tokens(orjson.dumps(latest.get("output") or []).decode()))
                latest["usage"] = usage_of(meter)  # as metered, every detail OpenAI's schema lists in place
                await keep(latest)
                meter.finish(*((502, "upstream_failed") if renamed["type"] == "response.failed" else (200, "")))
            yield frame(renamed)
            event = await anext(stream, None)
    except UpstreamError as exc:
        if not got_usage:
            meter.estimate(estimate_tokens(orjson.dumps(done).decode()))
        meter.finish(exc.status, exc.code or "upstream_error")
        failed = {**latest, "status": "failed", "error": {"code": "server_error", "message": exc.message}, "output": done}
        failed["usage"] = usage_of(meter)  # as metered (billed), as on the translated path
        await keep(failed)
        yield frame({"type": "response.failed", "response": failed})
    except (asyncio.CancelledError, GeneratorExit):
        status, error_code = CLIENT_CLOSED, "client_closed"
        if not got_usage:
            meter.estimate(estimate_tokens(orjson.dumps(done).decode()))
        raise
    except Exception:
        log.exception("relaying a Responses stream from %s failed", meter.provider)
        meter.finish(500, "internal_error")
        failed = {**latest, "status": "failed", "error": {"code": "server_error", "message": "City failed while relaying the answer."}}
        yield frame({"type": "response.failed", "response": failed})
    finally:
        await stream.aclose()
        meter.finish(status, error_code)
