"""Anthropic's Messages stream out of City: server-sent events named by their type, in Anthropic's order.

    message_start → (content_block_start → [ping, once] → content_block_delta… → content_block_stop)…
    → message_delta (stop_reason, usage) → message_stop

`translated_events` makes them of an adapter's OpenAI chat chunks (every provider but Anthropic):
`reasoning_content` → a thinking block (when the request turned thinking on), `content` → a text
block, each tool call → a tool_use block whose arguments stream as `input_json_delta`; the usage
chunk (last) → message_delta's usage. `native_events` relays an Anthropic upstream's events as they
came, its model id replaced by City's, its usage metered (cache reads and writes apart).

Either way a failure after the first event is sent as Anthropic's `error` event (what the anthropic
SDKs raise as their APIStatusError), and the stream ends there; a client that leaves closes the
upstream response at once.
"""

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any

from aihub.adapters.base import UpstreamError
from aihub.anthropic_errors import error_body
from aihub.messages_translate import anthropic_usage, new_message_id, new_tool_use_id, openai_usage, stop_reason
from aihub.metering import CLIENT_CLOSED, Meter, estimate_tokens
from aihub.streaming import event_frame

log = logging.getLogger("aihub.messages")

PING = {"type": "ping"}
RELAY_FAILED = "City failed while relaying the answer; the error is logged. Try again."


def frame(event: dict[str, Any]) -> bytes:
    return event_frame(event["type"], event)


class ChunkTranslator:
    """OpenAI chat chunks in, Anthropic stream events out; keeps what the last events need."""

    def __init__(self, model_id: str, input_tokens: int, *, thinking: bool) -> None:
        self.model_id = model_id
        self.input_tokens = input_tokens  # City's count, until the upstream's usage says otherwise
        self.thinking = thinking
        self.index = -1  # the open content block's index, -1 before the first
        self.open: str | None = None  # its kind: "thinking", "text" or "tool_use"
        self.tool_block: dict[int, int] = {}  # OpenAI tool call index → its (latest) content block index
        self.tool_id: dict[int, str] = {}  # … and that call's id
        self.pinged = False
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.generated: list[str] = []  # for City's count when the upstream reports no usage

    def start(self) -> list[dict[str, Any]]:
        message: dict[str, Any] = {
            "id": new_message_id(),
            "type": "message",
            "role": "assistant",
            "model": self.model_id,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": self.input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 0,
            },
        }
        return [{"type": "message_start", "message": message}]

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        if not chunk.get("choices"):
            if isinstance(chunk.get("usage"), dict):
                self.usage = chunk["usage"]
            return []
        events: list[dict[str, Any]] = []
        choice = chunk["choices"][0]
        delta = choice.get("delta") or {}
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            self.generated.append(reasoning)
            if self.thinking:
                events += self._block("thinking", {"type": "thinking", "thinking": "", "signature": ""})
                events.append(self._delta({"type": "thinking_delta", "thinking": reasoning}))
        text = delta.get("content")
        if isinstance(text, str) and text:
            self.generated.append(text)
            events += self._block("text", {"type": "text", "text": ""})
            events.append(self._delta({"type": "text_delta", "text": text}))
        for call in delta.get("tool_calls") or ():
            events += self._tool_call(call)
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
            events += self._close()
        return events

    def _tool_call(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        index = call.get("index", 0)
        function = call.get("function") or {}
        call_id = call.get("id")
        # A new call: an index not seen, or one seen with another id (servers that number every call 0).
        if index not in self.tool_block or (call_id and call_id != self.tool_id[index]):
            name = str(function.get("name") or "")
            block: dict[str, Any] = {"type": "tool_use", "id": call_id or new_tool_use_id(), "name": name, "input": {}}
            events += self._block("tool_use", block, new=True)
            self.tool_block[index], self.tool_id[index] = self.index, block["id"]
            self.generated.append(name)
        elif self.tool_block[index] != self.index:
            raise UpstreamError(
                "The upstream provider interleaved the arguments of several tool calls, which an Anthropic stream cannot carry.",
                status=502,
                retryable=False,
                code="upstream_error",
            )
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            self.generated.append(arguments)
            events.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
        return events

    def _block(self, kind: str, block: dict[str, Any], *, new: bool = False) -> list[dict[str, Any]]:
        """Open a block of `kind` unless one is open already (`new`: always a fresh one)."""
        if self.open == kind and not new:
            return []
        events = self._close()
        self.index += 1
        self.open = kind
        events.append({"type": "content_block_start", "index": self.index, "content_block": block})
        if not self.pinged:
            self.pinged = True
            events.append(PING)  # where Anthropic sends it: after the first block starts
        return events

    def _delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": self.index, "delta": delta}

    def _close(self) -> list[dict[str, Any]]:
        if self.open is None:
            return []
        self.open = None
        return [{"type": "content_block_stop", "index": self.index}]

    def finish(self, usage: dict[str, Any]) -> list[dict[str, Any]]:
        """The last events, with the call's usage (OpenAI's shape, as the meter settled it)."""
        events = self._close()
        if not self.pinged:
            events.append(PING)
        delta = {"stop_reason": stop_reason(self.finish_reason, called_tools=bool(self.tool_block)), "stop_sequence": None}
        events.append({"type": "message_delta", "delta": delta, "usage": anthropic_usage(usage)})
        events.append({"type": "message_stop"})
        return events


async def translated_events(
    stream: AsyncGenerator[dict[str, Any], None], first: dict[str, Any] | None, meter: Meter, *, thinking: bool
) -> AsyncGenerator[bytes, None]:
    """Anthropic's events from an adapter's OpenAI chunks (see the module docstring)."""
    translator = ChunkTranslator(meter.model.id, meter.ceiling[0], thinking=thinking)

    def count() -> None:
        if not (translator.usage is not None and meter.use(translator.usage)):
            meter.estimate(estimate_tokens("".join(translator.generated)))

    async def events() -> AsyncGenerator[dict[str, Any], None]:
        for event in translator.start():
            yield event
        chunk = first
        while chunk is not None:
            for event in translator.feed(chunk):
                yield event
            chunk = await anext(stream, None)
        count()
        meter.finish(200)  # before the last frames: the pipeline settles the call before they go out
        for event in translator.finish(meter_usage(meter)):
            yield event

    async for data in relayed(events(), stream, meter, count):
        yield data


def meter_usage(meter: Meter) -> dict[str, Any]:
    """The meter's usage in OpenAI's shape, cache reads and writes included."""
    usage: dict[str, Any] = meter.usage()
    usage["prompt_tokens_details"] = {"cached_tokens": meter.cached_tokens, "cache_creation_tokens": meter.cache_write_tokens}
    return usage


async def native_events(
    stream: AsyncGenerator[dict[str, Any], None], first: dict[str, Any] | None, meter: Meter
) -> AsyncGenerator[bytes, None]:
    """An Anthropic upstream's events as it sent them, `message.model` City's id; its usage metered
    (message_start's, updated by each message_delta's cumulative counts)."""
    usage: dict[str, Any] = {}
    generated: list[str] = []
    delta_seen = [False]  # message_delta's output count is the answer's; before it, City counts what came

    def count() -> None:
        if "input_tokens" not in usage:
            meter.estimate(estimate_tokens("".join(generated)))
            return
        counted = dict(usage)
        if not delta_seen[0]:
            reported = usage.get("output_tokens")
            # City's rough count of what came, never past the output the call reserved (as Meter.estimate).
            estimated = min(estimate_tokens("".join(generated)), meter.ceiling[1])
            counted["output_tokens"] = max(reported if isinstance(reported, int) else 0, estimated)
        meter.use(openai_usage(counted))

    async def events() -> AsyncGenerator[dict[str, Any], None]:
        event = first
        while event is not None:
            kind = event.get("type")
            if kind == "message_start" and isinstance(event.get("message"), dict):
                event["message"]["model"] = meter.model.id
                usage.update(event["message"].get("usage") or {})
            elif kind == "message_delta":
                usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
                delta_seen[0] = True
            elif kind == "content_block_delta":
                delta = event.get("delta") or {}
                generated.append(str(delta.get("text") or delta.get("thinking") or delta.get("partial_json") or ""))
            elif kind == "message_stop":
                count()
                meter.finish(200)
            yield event
            event = await anext(stream, None)
        count()  # an upstream that ended without message_stop (the adapter raises for a cut stream)
        meter.finish(200)

    async for data in relayed(events(), stream, meter, count):
        yield data


async def relayed(
    events: AsyncGenerator[dict[str, Any], None],
    stream: AsyncGenerator[dict[str, Any], None],
    meter: Meter,
    count: Callable[[], None],
) -> AsyncGenerator[bytes, None]:
    """The events as SSE frames; a failure becomes Anthropic's `error` event, a departed client
    closes the upstream. `count()` takes the usage so far onto the meter when the stream breaks off."""
    status, error_code = 200, ""  # what the meter records if the stream ends by an exit not handled below
    try:
        async for event in events:
            yield frame(event)
    except UpstreamError as exc:
        count()
        meter.finish(exc.status, exc.code or "upstream_error")
        yield frame(error_body(exc.status, exc.message))
    except (asyncio.CancelledError, GeneratorExit):
        status, error_code = CLIENT_CLOSED, "client_closed"
        if not meter.finished:
            count()
        raise
    except Exception:
        log.exception("relaying a Messages stream from %s failed", meter.provider)
        meter.finish(500, "internal_error")
        yield frame(error_body(500, RELAY_FAILED))
    finally:
        await events.aclose()
        await stream.aclose()  # the upstream request ends here, at once
        meter.finish(status, error_code)
