"""Anthropic's published shapes, for checking what City answers on its Messages routes: the `anthropic`
SDK's own types (pydantic models generated from Anthropic's OpenAPI spec), made strict.

The SDK's models accept unknown fields and default every optional one, as a client must; a check of
what a server sends must not. So besides validating against the type, each object (at any depth)
must hold no field the type does not declare, and must send the fields Anthropic always sends even
when null (`stop_reason`, `stop_sequence`, …).

    validate_message(body)          # a `message` object (POST /v1/messages)
    validate_error(body)            # {"type": "error", "error": {"type", "message"}}
    events = stream_events(text)    # an SSE body: every event validated, `event:` equal to its type
    assert_event_order(events)      # Anthropic's order: message_start … message_stop, blocks nested
"""

from typing import Any

import anthropic.types as at
from anthropic.types.beta_error_response import BetaErrorResponse
from pydantic import BaseModel, TypeAdapter

MESSAGE = TypeAdapter(at.Message)
EVENT = TypeAdapter(at.RawMessageStreamEvent)
ERROR = TypeAdapter(BetaErrorResponse)

# Fields Anthropic sends on every object of a type, null or not (the SDK's models default them).
ALWAYS_SENT: dict[type, tuple[str, ...]] = {
    at.Message: ("id", "type", "role", "content", "model", "stop_reason", "stop_sequence", "usage"),
    at.Usage: ("input_tokens", "output_tokens"),
    at.MessageDeltaUsage: ("output_tokens",),
    at.raw_message_delta_event.Delta: ("stop_reason", "stop_sequence"),
    at.ThinkingBlock: ("thinking", "signature"),
    at.ToolUseBlock: ("id", "name", "input"),
}


def strict(model: BaseModel, path: str = "$") -> None:
    """No undeclared field anywhere in `model`, and the ALWAYS_SENT ones present."""
    extra = set(model.model_extra or ())
    if extra:
        raise AssertionError(f"{path}: {type(model).__name__} has fields Anthropic does not declare: {sorted(extra)}")
    for kind, names in ALWAYS_SENT.items():
        if isinstance(model, kind):
            missing = [name for name in names if name not in model.model_fields_set]
            if missing:
                raise AssertionError(f"{path}: {type(model).__name__} lacks {missing}")
    for name in type(model).model_fields:
        _strict_value(getattr(model, name), f"{path}.{name}")


def _strict_value(value: Any, path: str) -> None:
    if isinstance(value, BaseModel):
        strict(value, path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _strict_value(item, f"{path}[{i}]")


def validate_message(body: Any) -> at.Message:
    message = MESSAGE.validate_python(body)
    strict(message)
    return message


def validate_error(body: Any) -> BetaErrorResponse:
    error = ERROR.validate_python(body)
    strict(error)
    if not error.error.message:
        raise AssertionError(f"an error without a message: {body}")
    return error


def validate_event(event: Any) -> None:
    """One stream event: one of RawMessageStreamEvent's types, a ping, or an error."""
    kind = event.get("type") if isinstance(event, dict) else None
    if kind == "ping":
        if event != {"type": "ping"}:
            raise AssertionError(f"a ping with more than its type: {event}")
    elif kind == "error":
        validate_error(event)
    else:
        strict(EVENT.validate_python(event))


def stream_events(text: str) -> list[dict[str, Any]]:
    """The events of an SSE body, each validated; every event's `event:` line names its data's type."""
    import json

    events = []
    for raw in text.split("\n\n"):
        if not raw.strip():
            continue
        lines = raw.split("\n")
        names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
        data = "".join(line.removeprefix("data: ") for line in lines if line.startswith("data: "))
        event = json.loads(data)
        if names != [event.get("type")]:
            raise AssertionError(f"event line {names} does not name the event's type {event.get('type')!r}")
        validate_event(event)
        events.append(event)
    return events


def assert_event_order(events: list[dict[str, Any]]) -> None:
    """Anthropic's sequence: message_start first; content blocks numbered from 0, each started,
    its deltas, stopped, one at a time (a delta fits its block's type); one ping; message_delta with
    the stop reason; message_stop last."""
    kinds = [e["type"] for e in events]
    if not kinds or kinds[0] != "message_start" or kinds[-2:] != ["message_delta", "message_stop"]:
        raise AssertionError(f"not message_start … message_delta, message_stop: {kinds}")
    if kinds.count("ping") != 1 or kinds.count("message_start") != 1 or kinds.count("message_delta") != 1:
        raise AssertionError(f"one message_start, ping and message_delta each: {kinds}")
    deltas = {"text": "text_delta", "thinking": ("thinking_delta", "signature_delta"), "tool_use": "input_json_delta"}
    open_block: dict[str, Any] | None = None
    next_index = 0
    for event in events[1:-2]:
        kind = event["type"]
        if kind == "content_block_start":
            if open_block is not None or event["index"] != next_index:
                raise AssertionError(f"block {event['index']} starts out of turn: {kinds}")
            open_block, next_index = event, next_index + 1
        elif kind == "content_block_delta":
            if open_block is None or event["index"] != open_block["index"]:
                raise AssertionError(f"a delta outside its block: {event}")
            allowed = deltas.get(open_block["content_block"]["type"], ())
            if event["delta"]["type"] not in (allowed if isinstance(allowed, tuple) else (allowed,)):
                raise AssertionError(f"a {event['delta']['type']} in a {open_block['content_block']['type']} block")
        elif kind == "content_block_stop":
            if open_block is None or event["index"] != open_block["index"]:
                raise AssertionError(f"block {event['index']} stops without having started: {kinds}")
            open_block = None
        elif kind != "ping":
            raise AssertionError(f"{kind} between message_start and message_delta")
    if open_block is not None:
        raise AssertionError(f"block {open_block['index']} never stops: {kinds}")
    if events[-2]["delta"]["stop_reason"] is None:
        raise AssertionError("message_delta without a stop_reason")
