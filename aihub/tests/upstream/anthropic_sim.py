"""A loopback Anthropic Messages API: `POST /v1/messages`, plain and streamed, and
`POST /v1/messages/count_tokens` (`{"input_tokens": script.usage's prompt}`), in the wire format of
Anthropic's API reference (message objects, named SSE events, `{"type": "error", "error": {...}}`).
Usage reports `script.cached_tokens` as cache reads and `script.cache_write_tokens` as cache writes
(`script.cache_write_1h_tokens` of them for an hour); requests are recorded as received, so tests see
`cache_control` and the `anthropic-beta` header as they arrived.

It checks a request as the real API does where an adapter could get it wrong (headers, required
`max_tokens`, `cache_control` only where prompt caching takes it (at most 4), roles that alternate,
`tool_result` blocks that answer the previous turn's `tool_use` blocks, block shapes, temperature range; with extended thinking on, a budget of at least 1024 below
`max_tokens`, no temperature but 1, no `top_k`, `top_p` of 0.95–1 only, no forced tool, and a tool
loop's assistant turn that opens with the thinking blocks this simulator signed) and refuses with
Anthropic's 400. With thinking on (enabled, or adaptive), the answer opens with a signed thinking block (`script.reasoning`);
a forced tool other than `script.tool_call`'s is called with `script.json`. It answers `sim.script`
(see sim.Script), or, after `sim.play("name")`, the recorded payload `anthropic/name.json`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aihub.tests.upstream.sim import Received, Reply, SimServer, sse

RECORDINGS = Path(__file__).parent / "anthropic"
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
# The anthropic-version values the API takes: the one City's chat translation sends, and the newer one
# the official anthropic SDK (2.x) sends, which a native call passes on.
API_VERSIONS = {"2023-01-01", "2023-06-01", "2026-10-21"}
# The counts a `message_delta` event's usage carries.
DELTA_USAGE = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
BLOCK_TYPES = {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"}


class AnthropicSim(SimServer):
    recordings = RECORDINGS

    def error_body(self, status: int, message: str) -> Any:
        return {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message}}

    def _error(self, status: int, message: str) -> Reply:
        return Reply.json(self.error_body(status, message), status=status)

    def handle(self, request: Received) -> Reply:
        if request.method != "POST" or request.path not in ("/v1/messages", "/v1/messages/count_tokens"):
            return self._error(404, f"Not found: {request.method} {request.path}")
        if not request.headers.get("x-api-key"):
            return self._error(401, "x-api-key header is required")
        if request.headers.get("anthropic-version") not in API_VERSIONS:
            return self._error(400, "anthropic-version: header is required and must be a valid version")
        body = request.json
        if not isinstance(body, dict):
            return self._error(400, "Request body must be a JSON object")
        if request.path == "/v1/messages/count_tokens":
            if problem := request_problem(body, count_tokens=True):
                return self._error(400, problem)
            return Reply.json({"input_tokens": self.script.usage[0] if self.script.usage else 0})
        if problem := request_problem(body):
            return self._error(400, problem)
        if (played := self.next_played()) is not None:
            payload, status = played
            if isinstance(payload, list):
                return Reply.sse(sse(event["data"], event=event["event"]) for event in payload)
            return Reply.json(payload, status=status)
        if body.get("stream"):
            return Reply.sse(self._events(body))
        return Reply.json(self._message(body))

    # --- answers from the script ----------------------------------------------------------------

    def _tool_call(self, body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """The call this answer makes: a forced tool (with `script.json` unless it is `script.tool_call`'s),
        else `script.tool_call` when tools are offered, else None."""
        choice = body.get("tool_choice") or {}
        if choice.get("type") == "tool":
            if self.script.tool_call is not None and self.script.tool_call[0] == choice["name"]:
                return self.script.tool_call
            return choice["name"], self.script.json
        if self.script.tool_call is not None and body.get("tools") and choice.get("type") != "none":
            return self.script.tool_call
        return None

    def _thinking_block(self, body: dict[str, Any]) -> dict[str, Any] | None:
        if (body.get("thinking") or {}).get("type") not in ("enabled", "adaptive"):  # adaptive: Claude chooses to, here
            return None
        return {"type": "thinking", "thinking": self.script.reasoning, "signature": signature_of(self.script.reasoning)}

    def _usage(self, output_tokens: int | None = None) -> dict[str, Any] | None:
        if self.script.usage is None:
            return None
        prompt, completion = self.script.usage
        writes, writes_1h = self.script.cache_write_tokens, self.script.cache_write_1h_tokens
        return {
            # Anthropic counts cache reads and writes apart from input_tokens.
            "input_tokens": prompt - self.script.cached_tokens - writes,
            "cache_creation_input_tokens": writes,
            "cache_read_input_tokens": self.script.cached_tokens,
            "cache_creation": {"ephemeral_5m_input_tokens": writes - writes_1h, "ephemeral_1h_input_tokens": writes_1h},
            "output_tokens": completion if output_tokens is None else output_tokens,
            "service_tier": "standard",
        }

    def _message(self, body: dict[str, Any]) -> dict[str, Any]:
        if call := self._tool_call(body):
            name, arguments = call
            content = [{"type": "tool_use", "id": "toolu_01SimSimSimSimSimSim0001", "name": name, "input": arguments}]
            stop_reason = "tool_use"
        else:
            content = [{"type": "text", "text": self.script.text}]
            stop_reason = STOP_REASONS[self.script.finish]
        if thinking := self._thinking_block(body):
            content.insert(0, thinking)
        message = {
            "id": "msg_01SimSimSimSimSimSimSim01",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
        }
        if (usage := self._usage()) is not None:
            message["usage"] = usage
        return message

    def _events(self, body: dict[str, Any]) -> Iterator[str]:
        start = {
            "id": "msg_01SimSimSimSimSimSimSim01",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
        }
        if (usage := self._usage(output_tokens=1)) is not None:
            start["usage"] = usage
        yield sse({"type": "message_start", "message": start}, event="message_start")
        index = 0
        if thinking := self._thinking_block(body):
            yield sse(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
                event="content_block_start",
            )
            text = thinking["thinking"]
            for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
                yield sse(
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": piece}},
                    event="content_block_delta",
                )
            yield sse(
                {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": thinking["signature"]}},
                event="content_block_delta",
            )
            yield sse({"type": "content_block_stop", "index": 0}, event="content_block_stop")
            index = 1
        if call := self._tool_call(body):
            name, arguments = call
            block = {"type": "tool_use", "id": "toolu_01SimSimSimSimSimSim0001", "name": name, "input": {}}
            encoded = json.dumps(arguments)
            pieces = ["", encoded[: len(encoded) // 2], encoded[len(encoded) // 2 :]]
            deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in pieces]
            stop_reason = "tool_use"
        else:
            block = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in self.script.pieces()]
            stop_reason = STOP_REASONS[self.script.finish]
        yield sse({"type": "content_block_start", "index": index, "content_block": block}, event="content_block_start")
        yield sse({"type": "ping"}, event="ping")
        for delta in deltas:
            yield sse({"type": "content_block_delta", "index": index, "delta": delta}, event="content_block_delta")
        yield sse({"type": "content_block_stop", "index": index}, event="content_block_stop")
        message_delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}}
        if (usage := self._usage()) is not None:
            # As the API sends it: the counts so far, cumulative (the input's repeated), not increments.
            message_delta["usage"] = {key: usage[key] for key in DELTA_USAGE}
        yield sse(message_delta, event="message_delta")
        yield sse({"type": "message_stop"}, event="message_stop")


# --- what the real API refuses ------------------------------------------------------------------


# The Messages request's top-level fields; the API refuses any other.
REQUEST_FIELDS = {
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "container",
    "mcp_servers",
    "context_management",
    "output_config",
    "cache_control",  # automatic caching: a breakpoint on the last cacheable block
}
# What /v1/messages/count_tokens takes: the prompt, never the answer's settings.
COUNT_TOKENS_FIELDS = {
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "mcp_servers",
    "context_management",
    "output_config",
}
# Where Anthropic takes `cache_control` (prompt caching): system text blocks, tools, and message
# blocks other than thinking; at most MAX_CACHE_BREAKPOINTS of them in one request.
CACHEABLE_BLOCKS = {"text", "image", "document", "tool_use", "tool_result"}
MAX_CACHE_BREAKPOINTS = 4


def signature_of(thinking: str) -> str:
    """The signature this simulator puts on a thinking block (Anthropic's are opaque; these are checkable)."""
    return base64.b64encode(hashlib.sha256(b"sim-thinking:" + thinking.encode()).digest()).decode()


def request_problem(body: dict[str, Any], *, count_tokens: bool = False) -> str | None:
    """Anthropic's 400 message for a request it would refuse (a count_tokens one with `count_tokens`), or None."""
    for name in body:
        if name not in (COUNT_TOKENS_FIELDS if count_tokens else REQUEST_FIELDS):
            return f"{name}: Extra inputs are not permitted"
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    max_tokens = body.get("max_tokens")
    if not count_tokens and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        return "max_tokens: Field required" if max_tokens is None else "max_tokens: Input should be a valid integer greater than 0"
    if problem := _cache_control_problem(body):
        return problem
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        return "temperature: Input should be less than or equal to 1"
    system = body.get("system")
    if (
        system is not None
        and not isinstance(system, str)
        and not (isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text" and b.get("text") for b in system))
    ):
        return "system: Input should be a valid string or a list of text blocks"
    if not isinstance(body.get("stop_sequences", []), list):
        return "stop_sequences: Input should be a valid list"
    if problem := _tools_problem(body):
        return problem
    if problem := _thinking_problem(body):
        return problem
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    previous_tool_uses: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if i and messages[i - 1].get("role") == role:
            return f'messages: roles must alternate between "user" and "assistant", but found multiple "{role}" roles in a row'
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list) or not blocks:
            return f"messages.{i}.content: Input should be a valid string or a non-empty list of content blocks"
        for j, block in enumerate(blocks):
            if problem := _block_problem(block, role, f"messages.{i}.content.{j}"):
                return problem
        results = {b["tool_use_id"] for b in blocks if b.get("type") == "tool_result"}
        if role == "user" and previous_tool_uses - results:
            return (
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(sorted(previous_tool_uses - results))}. Each `tool_use` block must have a corresponding "
                "`tool_result` block in the next message."
            )
        if stray := results - previous_tool_uses:
            return (
                f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: {', '.join(sorted(stray))}. "
                "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
            )
        previous_tool_uses = {b["id"] for b in blocks if b.get("type") == "tool_use"}
    return None


def _cache_control_problem(body: dict[str, Any]) -> str | None:
    """Where and how prompt caching's `cache_control` may appear (Anthropic's prompt caching guide)."""
    places: list[tuple[str, Any, bool]] = [("", body, True)]  # (where, block, may carry cache_control)
    system = body.get("system")
    for i, block in enumerate(system if isinstance(system, list) else []):
        places.append((f"system.{i}", block, True))
    for i, tool in enumerate(body.get("tools") or []):
        places.append((f"tools.{i}", tool, True))
    for i, message in enumerate(body.get("messages") or []):
        content = message.get("content") if isinstance(message, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else []):
            kind = block.get("type") if isinstance(block, dict) else None
            places.append((f"messages.{i}.content.{j}", block, kind in CACHEABLE_BLOCKS))
    breakpoints = 0
    for where, block, cacheable in places:
        control = block.get("cache_control") if isinstance(block, dict) else None
        if control is None:
            continue
        name = f"{where}.cache_control" if where else "cache_control"
        if not cacheable:
            return f"{name}: Extra inputs are not permitted"
        if not isinstance(control, dict) or control.get("type") != "ephemeral" or set(control) - {"type", "ttl"}:
            return f"{name}: Input should be {{'type': 'ephemeral'}} with an optional ttl"
        if control.get("ttl", "5m") not in ("5m", "1h"):
            return f"{name}.ttl: Input should be '5m' or '1h'"
        breakpoints += 1
    if breakpoints > MAX_CACHE_BREAKPOINTS:
        return f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found {breakpoints}."
    return None


def _thinking_problem(body: dict[str, Any]) -> str | None:
    """What extended thinking forbids (Anthropic's extended thinking guide)."""
    thinking = body.get("thinking")
    if thinking is None:
        return None
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in ("enabled", "disabled", "adaptive"):
        return "thinking: Input tag found using 'type' does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'"
    if kind != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        return "thinking.enabled.budget_tokens: Field required"
    if budget < 1024:
        return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    if budget >= body.get("max_tokens", budget + 1):
        return "`max_tokens` must be greater than `thinking.budget_tokens`"
    if body.get("temperature", 1) != 1:
        return "`temperature` may only be set to 1 when thinking is enabled"
    if "top_k" in body:
        return "`top_k` cannot be set when thinking is enabled"
    if not 0.95 <= body.get("top_p", 1) <= 1:
        return "`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled"
    if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    messages = body["messages"] if isinstance(body.get("messages"), list) else []
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else []):
            if (
                isinstance(block, dict)
                and block.get("type") == "thinking"
                and block.get("signature") != signature_of(str(block.get("thinking")))
            ):
                return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
    # A tool loop in progress: the assistant turn whose tool_use the last turn answers opens with thinking.
    if len(messages) >= 2 and messages[-2].get("role") == "assistant" and isinstance(messages[-2].get("content"), list):
        assistant, last = messages[-2]["content"], messages[-1].get("content")
        answers_tools = isinstance(last, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in last)
        if answers_tools and assistant and assistant[0].get("type") not in ("thinking", "redacted_thinking"):
            return (
                f"messages.{len(messages) - 2}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                f"`{assistant[0].get('type')}`. When `thinking` is enabled, a final `assistant` message must start with a "
                "thinking block (preceding the lastmost set of `tool_use` and `tool_result` blocks)."
            )
    return None


def _block_problem(block: Any, role: str, where: str) -> str | None:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind not in BLOCK_TYPES:
        return f"{where}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
    if kind == "text" and not (isinstance(block.get("text"), str) and block["text"]):
        return "messages: text content blocks must be non-empty"
    if kind in ("image", "document"):
        source = block.get("source") or {}
        if source.get("type") == "base64":
            allowed = IMAGE_TYPES if kind == "image" else {"application/pdf"}
            if source.get("media_type") not in allowed:
                return f"{where}.{kind}.source.base64.media_type: Input should be {' or '.join(repr(t) for t in sorted(allowed))}"
            if not isinstance(source.get("data"), str) or not source["data"]:
                return f"{where}.{kind}.source.base64.data: Field required"
        elif source.get("type") == "url":
            if not str(source.get("url", "")).startswith(("http://", "https://")):
                return f"{where}.{kind}.source.url.url: Input should be a valid URL"
        else:
            return f"{where}.{kind}.source: Input tag '{source.get('type')}' found using 'type' does not match any of the expected tags: 'base64', 'url'"
        if role != "user":
            return f"{where}: {kind} blocks are only allowed in user messages"
    if kind in ("thinking", "redacted_thinking") and role != "assistant":
        return f"{where}: {kind} blocks are only allowed in assistant messages"
    if kind == "thinking" and not (isinstance(block.get("thinking"), str) and isinstance(block.get("signature"), str)):
        return f"{where}.thinking: thinking and signature are required"
    if kind == "tool_use":
        if role != "assistant":
            return f"{where}: tool_use blocks are only allowed in assistant messages"
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str) or not isinstance(block.get("input"), dict):
            return f"{where}.tool_use: id, name and an object input are required"
    if kind == "tool_result":
        if role != "user":
            return f"{where}: tool_result blocks are only allowed in user messages"
        if not isinstance(block.get("tool_use_id"), str):
            return f"{where}.tool_result.tool_use_id: Field required"
    return None


def _tools_problem(body: dict[str, Any]) -> str | None:
    tools = body.get("tools")
    if tools is not None:
        for i, tool in enumerate(tools):
            if not isinstance(tool.get("name"), str) or not isinstance(tool.get("input_schema"), dict):
                return f"tools.{i}: name and input_schema are required"
            if tool["input_schema"].get("type") != "object":
                return f"tools.{i}.custom.input_schema.type: Input should be 'object'"
            if set(tool) - {"name", "description", "input_schema", "type", "cache_control"}:
                return f"tools.{i}.custom.{sorted(set(tool) - {'name', 'description', 'input_schema'})[0]}: Extra inputs are not permitted"
    choice = body.get("tool_choice")
    if choice is not None:
        if choice.get("type") not in ("auto", "any", "tool", "none"):
            return "tool_choice: Input tag found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
        if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
            return "tool_choice.tool.name: Field required"
        if not tools:
            return "tool_choice may only be specified while providing tools."
    return None
