"""An Anthropic Messages request as an OpenAI chat completions request, and the chat answer back as an
Anthropic `message`: how `/v1/messages` reaches every provider that is not Anthropic (the adapters
speak OpenAI chat; aihub/messages_events.py does the same for streams).

Request: `system` (a string or text blocks) → one system message, and so does a `system` message
within the conversation; user text, `image` (base64 or URL), `document` (a base64 PDF → a `file` part;
plain text or a content source → text) and `search_result` blocks (→ text) → content parts;
`tool_result` blocks → `tool` messages ahead of the rest of their turn (their images follow in a
user message: tool messages hold text only); assistant `tool_use` → `tool_calls`, `thinking` →
`reasoning_content` (for the OpenAI-compatible hosts that want it back in a tool loop); custom `tools` →
functions, `tool_choice` (+ `disable_parallel_tool_use` → `parallel_tool_calls: false`), `max_tokens`,
`stop_sequences` → `stop`, `temperature`, `top_p`, `top_k` (forwarded as the extension it is on
OpenAI-compatible hosts; Gemini's adapter maps it); `thinking` (a budget: low < 8,192 ≤ medium <
16,384 ≤ high) and `output_config.effort` → `reasoning_effort` on models that reason (and, on
DeepSeek's API, thinking turned on or off by its own `thinking` toggle);
`output_config.format` (a JSON schema) → `response_format`.

Hints that change no answer are left out: `cache_control` (these providers cache on their own),
`metadata`, `service_tier`, `inference_geo`, `speed`, `diagnostics`, `context_management` (server-side
context editing: the upstream gets the whole conversation), redacted thinking (Anthropic's encrypted
data, meaningless elsewhere). What would change the answer and cannot be given is a 400 naming the
field: server tools (`web_search_…`, `bash_…`), `container`, `mcp_servers`, citations, files by id,
document URLs, a prefilled assistant turn, block types other providers have no place for.
Fields that are not Anthropic's are forwarded as they are (as on chat completions), except OpenAI's
own chat fields, which would bypass the translation.

Answer: `reasoning_content` → a `thinking` block (only when the request turned thinking on, as
Anthropic answers), `content` → a `text` block, `tool_calls` → `tool_use` blocks (ids kept, so a
`tool_result` maps back), `finish_reason` → `stop_reason`, usage → Anthropic's (cache reads apart
from `input_tokens`).
"""

import json
import secrets
from typing import Any

from aihub.adapters import anthropic as anthropic_adapter
from aihub.adapters import openai_shapes as oa
from aihub.adapters.base import Upstream
from aihub.catalog_types import Model
from aihub.messages_request import ANTHROPIC_FIELDS
from city.errors import ApiError

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
# Anthropic's thinking budget → OpenAI's reasoning_effort: the efforts every reasoning model takes.
# Claude Code asks 4,000 ("think"), 10,000 ("think hard") and 31,999 ("ultrathink").
EFFORT_BY_BUDGET = ((8192, "low"), (16384, "medium"))
TOP_EFFORT = "high"
# City's own request fields, never sent upstream.
CITY_FIELDS = ("studio_id",)
# What becomes of each of Anthropic's request fields (aihub/messages_request.py): translated; left out,
# as it steers bookkeeping or Anthropic's own infrastructure, never the answer; refused when set.
TRANSLATED_FIELDS = frozenset(
    {"model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature", "top_p", "top_k"}
    | {"tools", "tool_choice", "thinking", "output_config"}
)
HINT_FIELDS = frozenset({"metadata", "service_tier", "inference_geo", "speed", "diagnostics", "cache_control", "context_management"})
REFUSED_FIELDS = ("container", "mcp_servers")
# Providers whose chat API takes an assistant's earlier reasoning back as `reasoning_content` (DeepSeek
# and Kimi want it in a tool loop while thinking); OpenAI and Gemini have no such field.
NO_REASONING_CONTENT = frozenset({"openai", "google"})


def invalid(param: str, message: str, code: str = "unsupported_parameter") -> ApiError:
    return ApiError(400, message, param=param, code=code)


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def new_tool_use_id() -> str:
    return "toolu_" + secrets.token_hex(12)


def shows_thinking(body: dict[str, Any]) -> bool:
    """Whether the answer carries thinking blocks: the request turned thinking on and did not omit it."""
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled") and thinking.get("display") != "omitted"


# --- Request ------------------------------------------------------------------------------------


def chat_request(body: dict[str, Any], model: Model) -> dict[str, Any]:
    """The OpenAI chat body for an Anthropic Messages body (checked by aihub/messages_request.py);
    raises a 400 ApiError naming the Anthropic field that cannot be translated."""
    chat: dict[str, Any] = {"model": body["model"], "messages": _system(body.get("system")) + _messages(body["messages"])}
    chat["max_tokens"] = body["max_tokens"]
    if body.get("stop_sequences"):
        chat["stop"] = body["stop_sequences"]
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            chat[name] = body[name]
    tools = _tools(body.get("tools"))
    if tools:
        chat["tools"] = tools
    _tool_choice(body.get("tool_choice"), chat)
    if (effort := _reasoning_effort(body, model)) is not None:
        chat["reasoning_effort"] = effort
    if (response_format := _response_format(body.get("output_config"))) is not None:
        chat["response_format"] = response_format
    for name in REFUSED_FIELDS:
        if body.get(name):
            raise invalid(name, f"{name} is served by Anthropic's own servers; it is not available on '{model.id}'. Remove it.")
    for name, value in body.items():
        if name in ANTHROPIC_FIELDS or name in CITY_FIELDS or value is None:
            continue
        if name in oa.OPENAI_CHAT_FIELDS:
            raise invalid(name, f"{name} is not a field of the Messages API; use its Anthropic counterpart, or /v1/chat/completions.")
        chat[name] = value  # a provider extension, forwarded as chat completions forwards it
    return chat


def thinking_toggle(body: dict[str, Any], model: Model) -> str | None:
    """ "enabled" or "disabled" as the request turned thinking on or off, for a model that reasons;
    None when it said nothing (the model's own default holds)."""
    kind = (body.get("thinking") or {}).get("type")
    if kind is None or "reasoning" not in model.tags:
        return None
    return "disabled" if kind == "disabled" else "enabled"


def for_upstream(chat: dict[str, Any], upstream: Upstream, *, thinking: bool, toggle: str | None = None) -> dict[str, Any]:
    """The chat body as `upstream` takes it: OpenAI's reasoning models refuse `max_tokens` (its
    `max_completion_tokens` is the same limit); Gemini shows its thoughts only when asked, and stops
    thinking by `reasoning_effort: "none"`; DeepSeek thinks unless told not to, by its own `thinking`
    toggle (`toggle`, from thinking_toggle)."""
    body = chat
    if upstream.provider == "deepseek" and toggle is not None and "thinking" not in chat:
        body = {**body, "thinking": {"type": toggle}}
    if upstream.adapter == "gemini" and toggle == "disabled" and "reasoning_effort" not in chat:
        body = {**body, "reasoning_effort": "none"}  # the least thinking the model allows (none where it can stop)
    if upstream.provider == "openai":
        body = {key: value for key, value in chat.items() if key != "max_tokens"}
        body["max_completion_tokens"] = chat["max_tokens"]
    if upstream.provider in NO_REASONING_CONTENT and any("reasoning_content" in m for m in chat["messages"]):
        body = {**body, "messages": [{k: v for k, v in m.items() if k != "reasoning_content"} for m in chat["messages"]]}
    if upstream.adapter == "gemini" and thinking and "generationConfig" not in chat:
        body = {**body, "generationConfig": {"thinkingConfig": {"includeThoughts": True}}}
    return body


def _system(system: Any) -> list[dict[str, Any]]:
    if isinstance(system, str):
        return [{"role": "system", "content": system}] if system else []
    texts = [block["text"] for block in system or () if block.get("text")]
    return [{"role": "system", "content": "\n\n".join(texts)}] if texts else []


def _messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    chat: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        blocks = message["content"]
        if isinstance(blocks, str):
            blocks = [{"type": "text", "text": blocks}]
        if message["role"] == "system":
            chat.extend(_system(message["content"]))
        elif message["role"] == "user":
            chat.extend(_user_turn(blocks, param))
        else:
            if i == len(messages) - 1:
                raise invalid(
                    param,
                    f"{param} is an assistant turn for the model to continue (a prefill), which only Claude can do; "
                    "end the messages with a user turn.",
                )
            chat.append(_assistant_turn(blocks, param))
    return chat


def _user_turn(blocks: list[dict[str, Any]], param: str) -> list[dict[str, Any]]:
    """The tool messages of a user turn's `tool_result` blocks, then the rest of the turn (their
    images included) as one user message."""
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        where = f"{param}.content[{j}]"
        if block["type"] == "tool_result":
            text, images = _tool_result(block, where)
            tool_messages.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": text})
            parts.extend(images)
        else:
            parts.extend(_user_parts(block, where))
    if parts:
        return [*tool_messages, {"role": "user", "content": parts}]
    return tool_messages


def _user_parts(block: dict[str, Any], where: str) -> list[dict[str, Any]]:
    kind = block["type"]
    if kind == "text":  # its `citations`, if any, annotate an earlier answer: the text is what counts
        return [{"type": "text", "text": block["text"]}] if block["text"] else []
    if kind == "image":
        return [_image_part(block["source"], f"{where}.source")]
    if kind == "document":
        return _document_parts(block, where)
    if kind == "search_result":
        return [{"type": "text", "text": _search_result_text(block, where)}]
    if kind in ("thinking", "redacted_thinking", "tool_use"):
        raise invalid(f"{where}.type", f"{where}.type '{kind}' belongs in an assistant turn.", "invalid_value")
    raise _unsupported_block(kind, where)


def _unsupported_block(kind: str, where: str) -> ApiError:
    return invalid(
        f"{where}.type",
        f"{where}.type '{kind}' cannot be sent to this model (only Claude takes it): send text, image, document, "
        "tool_use, tool_result or thinking blocks.",
    )


def _no_citations(block: dict[str, Any], where: str) -> None:
    """A document or search result that asks for an answer citing it (`citations: {"enabled": true}`)."""
    citations = block.get("citations")
    if isinstance(citations, dict) and citations.get("enabled") is True:
        raise invalid(f"{where}.citations", f"{where}.citations: only Claude answers with citations; remove them.")


def _image_part(source: dict[str, Any], where: str) -> dict[str, Any]:
    kind = source["type"]
    if kind == "base64":
        return {"type": "image_url", "image_url": {"url": f"data:{source['media_type']};base64,{source['data']}"}}
    if kind == "url":
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    raise invalid(f"{where}.type", f"{where}.type '{kind}' is not available on this model: send the image as base64 or a URL.")


def _document_parts(block: dict[str, Any], where: str) -> list[dict[str, Any]]:
    _no_citations(block, where)
    source, at = block["source"], f"{where}.source"
    heading = "\n".join(block[name] for name in ("title", "context") if isinstance(block.get(name), str) and block[name])
    parts: list[dict[str, Any]] = [{"type": "text", "text": heading}] if heading else []
    kind = source["type"]
    if kind == "base64":
        if source["media_type"] != "application/pdf":
            raise invalid(f"{at}.media_type", f"{at}.media_type must be 'application/pdf' for a base64 document.", "invalid_value")
        file = {"file_data": f"data:application/pdf;base64,{source['data']}", "filename": block.get("title") or "document.pdf"}
        return [*parts, {"type": "file", "file": file}]
    if kind == "text":
        return [*parts, {"type": "text", "text": source["data"]}]
    if kind == "content":
        content = source["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for k, inner in enumerate(blocks):
            inner_where = f"{at}.content[{k}]"
            if not isinstance(inner, dict) or inner.get("type") not in ("text", "image"):
                raise invalid(inner_where, f"{inner_where} must be a text or image block.", "invalid_value")
            if inner["type"] == "text":
                if not isinstance(inner.get("text"), str):
                    raise invalid(f"{inner_where}.text", f"{inner_where}.text must be a string.", "invalid_type")
                parts.append({"type": "text", "text": inner["text"]})
            else:
                if not isinstance(inner.get("source"), dict) or not isinstance(inner["source"].get("type"), str):
                    raise invalid(f"{inner_where}.source", f"{inner_where}.source must be a source object.", "invalid_type")
                parts.append(_image_part(inner["source"], f"{inner_where}.source"))
        return parts
    raise invalid(f"{at}.type", f"{at}.type '{kind}' is not available on this model: send the document as base64 (a PDF) or text.")


def _search_result_text(block: dict[str, Any], where: str) -> str:
    """A search result (retrieved text the model may cite) as the text it holds: its title and source
    first. Only Claude answers with the citations it allows."""
    _no_citations(block, where)
    texts = [block[name] for name in ("title", "source") if isinstance(block.get(name), str) and block[name]]
    content = block.get("content")
    for k, inner in enumerate(content if isinstance(content, list) else ()):
        if not isinstance(inner, dict) or inner.get("type") != "text" or not isinstance(inner.get("text"), str):
            raise invalid(f"{where}.content[{k}]", f"{where}.content[{k}] must be a text block.", "invalid_value")
        texts.append(inner["text"])
    if not isinstance(content, list):
        raise invalid(f"{where}.content", f"{where}.content is required: a list of text blocks.", "missing_field")
    return "\n\n".join(texts)


def _tool_result(block: dict[str, Any], where: str) -> tuple[str, list[dict[str, Any]]]:
    """(the text of a tool result, the images it holds). An error result says so in its text, as the
    tool message has no flag for it."""
    content = block.get("content")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append(content)
    for k, inner in enumerate(content if isinstance(content, list) else ()):
        inner_where = f"{where}.content[{k}]"
        if inner["type"] == "text":
            texts.append(inner["text"])
        elif inner["type"] == "image":
            images.append(_image_part(inner["source"], f"{inner_where}.source"))
        elif inner["type"] == "document":
            for part in _document_parts(inner, inner_where):
                (texts.append(part["text"]) if part["type"] == "text" else images.append(part))
        elif inner["type"] == "search_result":
            texts.append(_search_result_text(inner, inner_where))
        else:
            raise _unsupported_block(inner["type"], inner_where)
    text = "\n".join(texts)
    if block.get("is_error"):
        text = f"Error: {text}" if text else "Error"
    return text, images


def _assistant_turn(blocks: list[dict[str, Any]], param: str) -> dict[str, Any]:
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        where = f"{param}.content[{j}]"
        kind = block["type"]
        if kind == "text":
            if block["text"]:
                texts.append(block["text"])
        elif kind == "tool_use":
            calls.append(oa.tool_call(block["id"], block["name"], block["input"]))
        elif kind == "thinking":
            if block["thinking"]:
                thoughts.append(block["thinking"])
        elif kind == "redacted_thinking":
            continue  # Anthropic's encrypted thinking: only Claude can read it
        elif kind in ("image", "document", "tool_result"):
            raise invalid(f"{where}.type", f"{where}.type '{kind}' belongs in a user turn.", "invalid_value")
        else:
            raise _unsupported_block(kind, where)
    message: dict[str, Any] = {"role": "assistant", "content": "\n\n".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    if thoughts:
        message["reasoning_content"] = "\n\n".join(thoughts)
    return message


def _tools(tools: Any) -> list[dict[str, Any]]:
    functions = []
    for i, tool in enumerate(tools or ()):
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise invalid(
                f"tools[{i}].type",
                f"tools[{i}].type '{kind}' is a tool Anthropic runs on its own servers; this model can only call "
                "the client's own tools (with an input_schema).",
            )
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise invalid(f"tools[{i}].name", f"tools[{i}].name is required.", "missing_field")
        if not isinstance(tool.get("input_schema"), dict):
            raise invalid(f"tools[{i}].input_schema", f"tools[{i}].input_schema is required: a JSON Schema object.", "missing_field")
        function: dict[str, Any] = {"name": tool["name"], "parameters": tool["input_schema"]}
        if tool.get("description"):
            function["description"] = tool["description"]
        if tool.get("strict") is not None:
            function["strict"] = tool["strict"]
        functions.append({"type": "function", "function": function})
    return functions


def _tool_choice(choice: Any, chat: dict[str, Any]) -> None:
    if choice is None or "tools" not in chat:
        return  # Anthropic's tool_choice without tools asks for nothing
    kind = choice["type"]
    if kind not in ("auto", "any", "none", "tool"):
        raise invalid("tool_choice.type", f"tool_choice.type '{kind}' is not available on this model: use auto, any, tool or none.")
    chat["tool_choice"] = {
        "auto": "auto",
        "any": "required",
        "none": "none",
        "tool": {"type": "function", "function": {"name": choice.get("name")}},
    }[kind]
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        chat["parallel_tool_calls"] = False


def _reasoning_effort(body: dict[str, Any], model: Model) -> str | None:
    """`thinking` and `output_config.effort` as OpenAI's reasoning_effort; None for a model that does
    not reason (Claude Code turns thinking on whatever the model: the model answers without it)."""
    thinking = body.get("thinking") or {}
    effort = (body.get("output_config") or {}).get("effort")
    if effort is not None and effort not in oa.REASONING_EFFORTS:
        raise invalid("output_config.effort", f"output_config.effort must be one of {', '.join(oa.REASONING_EFFORTS)}.", "invalid_value")
    kind = thinking.get("type")  # enabled (with a budget), adaptive, between_tools …: the model thinks as it sees fit
    if "reasoning" not in model.tags or kind == "disabled":
        return None
    if kind == "enabled" and effort is None:
        budget = thinking["budget_tokens"]
        if budget < 1 or budget >= body["max_tokens"]:
            raise invalid("thinking.budget_tokens", "thinking.budget_tokens must be at least 1 and less than max_tokens.", "invalid_value")
        return next((name for limit, name in EFFORT_BY_BUDGET if budget < limit), TOP_EFFORT)
    return effort


def _response_format(output_config: Any) -> dict[str, Any] | None:
    output_format = (output_config or {}).get("format")
    if output_format is None:
        return None
    if output_format.get("type") != "json_schema" or not isinstance(output_format.get("schema"), dict):
        raise invalid("output_config.format", 'output_config.format must be {"type": "json_schema", "schema": {…}}.', "invalid_value")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": output_format["schema"], "strict": True}}


# --- Answer -------------------------------------------------------------------------------------


def anthropic_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """OpenAI usage (cache reads, and Anthropic's cache writes, inside `prompt_tokens`) as Anthropic's,
    where `input_tokens` counts neither."""
    details = usage.get("prompt_tokens_details") or {}
    cached = _count(details.get("cached_tokens"))
    written = _count(details.get("cache_creation_tokens"))
    return {
        "input_tokens": max(_count(usage.get("prompt_tokens")) - cached - written, 0),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
        "output_tokens": _count(usage.get("completion_tokens")),
    }


def openai_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """Anthropic usage as the Meter takes it (OpenAI's, with cache writes as `cache_creation_tokens`, those
    kept an hour also as `cache_creation_1h_tokens`): the Anthropic adapter's own reading, so both paths
    bill alike."""
    return anthropic_adapter.usage_of(usage)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def stop_reason(finish_reason: Any, *, called_tools: bool = False) -> str:
    """Anthropic's stop_reason; "tool_use" for an answer that called tools yet finished as "stop" (OpenAI
    so finishes a call forced by a named tool_choice), as Anthropic stops whenever it calls one."""
    reason = STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"
    return "tool_use" if called_tools and reason == "end_turn" else reason


def tool_input(arguments: Any) -> dict[str, Any] | None:
    """A tool call's JSON arguments as the object Anthropic's `input` is; None when they are not one."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments) if isinstance(arguments, str) and arguments.strip() else {}
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def message_from_completion(answer: dict[str, Any], model_id: str, *, thinking: bool) -> dict[str, Any]:
    """The Anthropic `message` for an OpenAI `chat.completion` (its usage already settled)."""
    choices = answer.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content")
    if thinking and isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message.get("content")
    if not isinstance(text, str) or not text:
        text = message.get("refusal") if isinstance(message.get("refusal"), str) else ""
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = tool_input(function.get("arguments"))
        if arguments is None:
            raise ApiError(
                502,
                "The upstream model called a tool with arguments that are not a JSON object; try again.",
                code="upstream_error",
            )
        content.append(
            {"type": "tool_use", "id": call.get("id") or new_tool_use_id(), "name": function.get("name") or "", "input": arguments}
        )
    return {
        "id": new_message_id(),
        "type": "message",
        "role": "assistant",
        "model": model_id,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason"), called_tools=any(b["type"] == "tool_use" for b in content)),
        "stop_sequence": None,
        "usage": anthropic_usage(answer.get("usage") or {}),
    }
