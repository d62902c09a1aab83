"""The Responses API's answer side: the `response` object and its output items, made from a chat
answer (aihub/responses_translate.py has the request side; aihub/responses_events.py the stream).

Ids: a response's items are named `{prefix}_{the response id's ULID}_{n}` (ItemIds), so that an
`item_reference` to one names the stored response that holds it. Reasoning: a chat answer's
`reasoning_content` is a `reasoning` item's `summary_text`; Claude's signed thinking blocks ride in
its `encrypted_content` (THINKING_PREFIX), whence the translation takes them back.
"""

import base64
import binascii
import time
from typing import Any

import orjson

from city.ids import new_id

# `encrypted_content` of a reasoning item City made from signed thinking blocks (Claude's), which the
# provider checks itself: sent back, they continue a tool loop with thinking. Not secret (the caller
# saw the thinking), only opaque, as OpenAI's is. Another party's encrypted reasoning (OpenAI's) can
# be read by nobody but its maker and is left out: it is context the model gave, not an instruction.
THINKING_PREFIX = "city-thinking:"


class ItemIds:
    """The ids of one response's items, `{prefix}_{the response id's ULID}_{n}` (`msg_01k…_0`): an
    `item_reference` to one of them names the stored response that holds it (see response_of_item),
    as the Vercel AI SDK sends the items of earlier steps when `store` is on."""

    def __init__(self, response_id: str) -> None:
        self.base = response_id.removeprefix("resp_")
        self.count = 0

    def __call__(self, prefix: str) -> str:
        item_id = f"{prefix}_{self.base}_{self.count}"
        self.count += 1
        return item_id


def response_of_item(item_id: str) -> str | None:
    """The id of the response whose item this is, for an id ItemIds made; None for any other."""
    parts = item_id.split("_")
    return f"resp_{parts[1]}" if len(parts) == 3 and parts[1] and parts[2].isdigit() else None


def thinking_blocks_of(encrypted: Any) -> list[dict[str, Any]]:
    """The signed thinking blocks City put in a reasoning item's encrypted_content; [] for any other."""
    if not isinstance(encrypted, str) or not encrypted.startswith(THINKING_PREFIX):
        return []
    try:
        blocks = orjson.loads(base64.urlsafe_b64decode(encrypted[len(THINKING_PREFIX) :]))
    except (binascii.Error, ValueError):
        return []
    return [b for b in blocks if isinstance(b, dict)] if isinstance(blocks, list) else []


def encrypted_thinking(blocks: list[dict[str, Any]]) -> str:
    return THINKING_PREFIX + base64.urlsafe_b64encode(orjson.dumps(blocks)).decode("ascii")


def reasoning_item(item_id: str, text: str, thinking_blocks: list[dict[str, Any]], status: str = "completed") -> dict[str, Any]:
    item: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": [], "status": status}
    if text:
        item["summary"] = [{"type": "summary_text", "text": text}]
    if thinking_blocks:
        item["encrypted_content"] = encrypted_thinking(thinking_blocks)
    return item


def message_item(item_id: str, parts: list[dict[str, Any]], status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": parts}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(
    item_id: str, call_id: str, chat_name: str, arguments: str, namespaced: dict[str, tuple[str, str]], status: str = "completed"
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": chat_name,
        "arguments": arguments,
    }
    if chat_name in namespaced:
        item["namespace"], item["name"] = namespaced[chat_name]
    return item


def custom_call_item(
    item_id: str, call_id: str, chat_name: str, input_: str, namespaced: dict[str, tuple[str, str]], status: str = "completed"
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": item_id,
        "type": "custom_tool_call",
        "status": status,
        "call_id": call_id,
        "name": chat_name,
        "input": input_,
    }
    if chat_name in namespaced:
        item["namespace"], item["name"] = namespaced[chat_name]
    return item


def output_of(answer: dict[str, Any], namespaced: dict[str, tuple[str, str]], ids: ItemIds) -> tuple[list[dict[str, Any]], str | None]:
    """A chat.completion's first choice as Responses output items, and its finish reason."""
    choices = answer.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content")
    blocks = [b for b in message.get("thinking_blocks") or () if isinstance(b, dict)]
    if reasoning or blocks:
        output.append(reasoning_item(ids("rs"), reasoning if isinstance(reasoning, str) else "", blocks))
    parts = []
    if isinstance(message.get("content"), str) and message["content"]:
        parts.append(text_part(message["content"]))
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    if parts:
        output.append(message_item(ids("msg"), parts))
    for call in message.get("tool_calls") or ():
        call_id = call.get("id") or new_id("call")
        if call.get("type") == "custom" or "custom" in call:
            custom = call.get("custom") or {}
            output.append(custom_call_item(ids("ctc"), call_id, custom.get("name") or "", custom.get("input") or "", namespaced))
            continue
        function = call.get("function") or {}
        output.append(function_call_item(ids("fc"), call_id, function.get("name") or "", function.get("arguments") or "", namespaced))
    return output, choice.get("finish_reason")


def usage_of(prompt: int, completion: int, cached: int, cache_writes: int, reasoning: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": cache_writes},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    }


def status_of(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    """(status, incomplete_details) for a chat finish reason."""
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def response_object(
    response_id: str, created_at: int, model_id: str, request: dict[str, Any], *, status: str, output: list[dict[str, Any]]
) -> dict[str, Any]:
    """The `response` object as the request set it, before the answer's output and usage are known."""
    text = request.get("text") or {}
    reasoning = request.get("reasoning") or {}
    response = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": request.get("max_tool_calls"),
        "model": model_id,
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {key: reasoning[key] for key in ("effort", "summary") if reasoning.get(key) is not None},
        "service_tier": request.get("service_tier") or "auto",
        "store": request.get("store", True),
        "temperature": request.get("temperature", 1.0),
        "text": {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity") or "medium"},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": [echoed_tool(tool) for tool in request.get("tools") or ()],
        "top_p": request.get("top_p", 1.0),
        "truncation": request.get("truncation") or "disabled",
        "usage": None,
        "user": request.get("user"),
        "metadata": request.get("metadata") or {},
    }
    # OpenAI leaves out what a request did not set (its schema takes no null there).
    return {key: value for key, value in response.items() if value is not None or key in NULLABLE}


def echoed_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """A request's tool as the response shows it: a function with the `parameters` and `strict` it was
    given (null and false when left out: chat's default, which is what the upstream applied)."""
    if tool.get("type") != "function":
        return tool
    return {**tool, "parameters": tool.get("parameters"), "strict": bool(tool.get("strict"))}


# The response's fields that are present even when null.
NULLABLE = frozenset({"error", "incomplete_details", "instructions", "completed_at"})


def finished(response: dict[str, Any], status: str, incomplete: dict[str, Any] | None, usage: dict[str, Any]) -> dict[str, Any]:
    response["status"] = status
    response["incomplete_details"] = incomplete
    response["usage"] = usage
    if status == "completed":
        response["completed_at"] = int(time.time())
    return response
