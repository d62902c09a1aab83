"""The Anthropic Messages API (`POST /v1/messages`) behind OpenAI's chat completions shapes.

Request: `system`/`developer` messages → `system`; consecutive turns of one role merge (the API wants
user and assistant to alternate); `tool` messages → `tool_result` blocks in a user turn; assistant
`tool_calls` → `tool_use` blocks; `image_url` parts → `image` blocks (base64 or URL source); PDF
`file` parts → `document` blocks; tools, `tool_choice` and `parallel_tool_calls`; `max_tokens`
(required by Anthropic, defaulted here), `temperature` (clamped to Anthropic's 0–1), `top_p` (when no
temperature is given: current models refuse both), `stop`, `user` (→ `metadata.user_id`),
`reasoning_effort` (→ extended thinking, `thinking.budget_tokens`), a JSON `response_format` (→ a
forced call of the tool `json_output` whose input schema is the caller's). OpenAI's bookkeeping fields
(`store`, `metadata`, `service_tier` …) and `seed` are left out; any other OpenAI field Claude cannot
honour (`logit_bias`, penalties …) is a 400 naming it; fields that are not OpenAI's (`top_k`,
`thinking` …) are forwarded as they are. An assistant message's `thinking_blocks` go back as its
signed thinking blocks while Claude thinks.
Answer: text and `tool_use` blocks → `content` and `tool_calls` (the `json_output` input → `content`);
thinking blocks → `reasoning_content` and `thinking_blocks`; `stop_reason` → `finish_reason`; `usage`
(cache reads and writes count as prompt tokens; writes also as `cache_creation_tokens`). Streams
translate event by event.
Native (a client that speaks the Messages API itself, aihub/messages_api.py): `messages`,
`messages_stream` and `count_tokens` send the client's body as it is (`model` the upstream's) with its
`anthropic-version` and `anthropic-beta`, and hand back Anthropic's answer and events unchanged.
"""

import json
from collections.abc import AsyncGenerator
from typing import Any

import httpx
import orjson
from typing_extensions import override

from aihub.adapters import openai_shapes as oa
from aihub.adapters.base import Adapter, Upstream, UpstreamError, error_from_response
from aihub.adapters.sse import iter_sse

ANTHROPIC_VERSION = "2023-06-01"
# Output tokens asked for when the caller sets no limit (Anthropic requires one): every Claude model
# accepts at least this many.
DEFAULT_MAX_TOKENS = 4096

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# Anthropic error types (in a stream's `error` event) → what City answers.
_STREAM_ERROR_STATUS = {"overloaded_error": 503, "rate_limit_error": 503, "api_error": 502, "timeout_error": 504}


class AnthropicAdapter(Adapter):
    """Chat (plain and streamed) over the Anthropic Messages API. No embeddings, no legacy completions
    (the base's NotImplementedError: the service turns a prompt into a one-message chat)."""

    @override
    async def chat(self, upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
        payload = messages_request(upstream, body, stream=False)
        async with oa.transport_errors(upstream.provider):
            response = await self.client.post(_url(upstream), content=orjson.dumps(payload), headers=_headers(upstream))
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.content, upstream.provider)
        message = oa.json_of(response.content, upstream.provider)
        return completion_from_message(
            message, model=body.get("model") or upstream.model, provider=upstream.provider, json_answer=_json_answer(body)
        )

    @override
    def chat_stream(self, upstream: Upstream, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """Yields chunks as Anthropic's events arrive; after `message_stop`, a usage chunk (`choices: []`).

        Raises UpstreamError for an HTTP error, an `error` event, or a stream cut before `message_stop`.
        Closing this iterator early closes the upstream response at once.
        """
        payload = messages_request(upstream, body, stream=True)
        translator = StreamTranslator(body.get("model") or upstream.model, upstream.provider, json_answer=_json_answer(body))
        request = self.client.build_request(
            "POST", _url(upstream), content=orjson.dumps(payload), headers={**_headers(upstream), "Accept": "text/event-stream"}
        )
        return oa.translated_stream(self.client, request, upstream.provider, error_from_response, translator)

    # --- Native: the client speaks Anthropic's Messages API too, so its body goes as it is -------

    @override
    async def messages(self, upstream: Upstream, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        payload = {**body, "model": upstream.model}
        payload.pop("stream", None)
        return await self._post_json(upstream, _url(upstream), payload, headers)

    @override
    def messages_stream(self, upstream: Upstream, body: dict[str, Any], headers: dict[str, str]) -> AsyncGenerator[dict[str, Any], None]:
        payload = {**body, "model": upstream.model, "stream": True}
        request = self.client.build_request(
            "POST",
            _url(upstream),
            content=orjson.dumps(payload),
            headers={**_headers(upstream, headers), "Accept": "text/event-stream"},
        )
        return _native_events(self.client, request, upstream.provider)

    @override
    async def count_tokens(self, upstream: Upstream, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        answer = await self._post_json(upstream, f"{_url(upstream)}/count_tokens", {**body, "model": upstream.model}, headers)
        if not isinstance(answer.get("input_tokens"), int) or isinstance(answer["input_tokens"], bool):
            raise oa.malformed_answer(upstream.provider)
        return answer

    async def _post_json(self, upstream: Upstream, url: str, payload: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        async with oa.transport_errors(upstream.provider):
            response = await self.client.post(url, content=orjson.dumps(payload), headers=_headers(upstream, headers))
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.content, upstream.provider)
        return oa.json_of(response.content, upstream.provider)


async def _native_events(client: httpx.AsyncClient, request: httpx.Request, provider: str) -> AsyncGenerator[dict[str, Any], None]:
    """Yield each Anthropic stream event as a dict, unchanged, as it arrives (`ping` included).

    An `error` event, or a stream that ends before `message_stop` (a cut connection), raises
    UpstreamError. Closing this iterator early closes the upstream response at once.
    """
    stopped = False
    async with oa.transport_errors(provider):
        response = await client.send(request, stream=True)
        try:
            if response.status_code >= 400:
                raise error_from_response(response.status_code, await response.aread(), provider)
            async for _event, data in iter_sse(response):
                event = oa.json_of(data, provider)
                if event.get("type") == "error":
                    raise _stream_error(event.get("error") or {}, provider)
                stopped = stopped or event.get("type") == "message_stop"
                yield event
        finally:
            await response.aclose()
    if not stopped:
        raise oa.stream_cut_short()


def _json_answer(body: dict[str, Any]) -> bool:
    """Whether the answer comes as a JSON_TOOL call (a JSON `response_format`)."""
    return oa.response_format_type(body) in ("json_object", "json_schema")


def _url(upstream: Upstream) -> str:
    return f"{upstream.base_url}/v1/messages"


# The client's headers a native call passes on: the API version it speaks and the betas it opted into
# (Claude Code's prompt caching, context management, interleaved thinking …).
PASSED_HEADERS = ("anthropic-version", "anthropic-beta")


def _headers(upstream: Upstream, client_headers: dict[str, str] | None = None) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "x-api-key": upstream.api_key or "",
        "anthropic-version": ANTHROPIC_VERSION,
    }
    for name, value in (client_headers or {}).items():
        if name.lower() in PASSED_HEADERS and value:
            headers[name.lower()] = value
    return headers


# --- Request ----------------------------------------------------------------------------------


# OpenAI chat fields this adapter translates (or, for n, logprobs and audio, refuses unless neutral).
TRANSLATED_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "user",
        "stream",
        "response_format",
        "n",
        "logprobs",
        "top_logprobs",
        "modalities",
        "audio",
        "reasoning_effort",
    }
)
# OpenAI fields left out: bookkeeping, and `seed`, which OpenAI itself only honours on a best-effort
# basis (Claude has no seed). Every other OpenAI field is refused unless neutral.
IGNORED_FIELDS = oa.BOOKKEEPING_FIELDS | {"seed"}


# OpenAI's `reasoning_effort` → Claude's extended thinking budget (`budget_tokens`). Anthropic's
# floor is 1024 tokens and a budget must stay below `max_tokens`; see `_thinking` for how
# `max_tokens` makes room. "none" sends `thinking: {"type": "disabled"}`.
THINKING_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 32768, "max": 65536}
MIN_THINKING_BUDGET = 1024
# The tool a JSON `response_format` becomes: Claude is made to call it, and its input is the answer.
JSON_TOOL = "json_output"


def messages_request(upstream: Upstream, body: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    """The Anthropic Messages request for an OpenAI chat completions request. Fields that are not
    OpenAI's (Anthropic's own `top_k`, `thinking` …) are forwarded as they are.

    `reasoning_effort` becomes extended thinking (`_thinking`), and a JSON `response_format` a forced
    call of the tool JSON_TOOL (`_json_tool`). Combinations Anthropic refuses while Claude thinks
    (a temperature other than 1, `top_k`, `top_p` below 0.95, a forced tool) are a 400 naming the field.
    """
    oa.refuse_unsupported(body, allow_n=False)
    extensions = oa.extension_fields(body, translated=TRANSLATED_FIELDS, ignored=IGNORED_FIELDS)
    thinking = _thinking(upstream.max_output_tokens, body)
    system, messages = _messages(oa.messages_of(body), with_thinking=_thinks(thinking or extensions.get("thinking")))
    payload: dict[str, Any] = {
        "model": upstream.model,
        "messages": messages,
        "max_tokens": _max_tokens(thinking, body),
    }
    if thinking:
        thinking.pop("max_tokens")
        payload["thinking"] = thinking
    if system:
        payload["system"] = [{"type": "text", "text": text} for text in system]
    if (temperature := oa.number(body, "temperature")) is not None:
        # OpenAI takes 0–2, Anthropic 0–1: the hottest OpenAI setting is Anthropic's hottest.
        payload["temperature"] = min(temperature, 1.0)
    if (top_p := oa.number(body, "top_p")) is not None and temperature is None:
        # Current Claude models refuse temperature and top_p together; temperature is the common knob.
        payload["top_p"] = top_p
    if stop := oa.stop_sequences(body):
        payload["stop_sequences"] = stop
    tools, tool_choice = _tools(body)
    if json_tool := _json_tool(body, tools, tool_choice):
        tools.append(json_tool)
        tool_choice = {"type": "tool", "name": JSON_TOOL}
    if tools:
        payload["tools"] = tools
    if tool_choice:
        payload["tool_choice"] = tool_choice
    if isinstance(body.get("user"), str):
        payload["metadata"] = {"user_id": body["user"]}
    if stream:
        payload["stream"] = True
    oa.add_extensions(payload, extensions)
    _refuse_what_thinking_forbids(payload, body)
    return payload


def max_tokens_for(ceiling: int, body: dict[str, Any]) -> int:
    """The `max_tokens` messages_request sends for `body` on a model answering at most `ceiling` tokens
    (0: not known): the caller's limit (DEFAULT_MAX_TOKENS when none), raised for `reasoning_effort` as
    `_thinking` says. aihub/estimate.py reads it, so a call's worst case is what Claude may answer."""
    return _max_tokens(_thinking(ceiling, body), body)


def _max_tokens(thinking: dict[str, Any] | None, body: dict[str, Any]) -> int:
    return int(thinking["max_tokens"]) if thinking else oa.max_output_tokens(body) or DEFAULT_MAX_TOKENS


def _thinks(thinking: Any) -> bool:
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def _thinking(ceiling: int, body: dict[str, Any]) -> dict[str, Any] | None:
    """`thinking` (with the `max_tokens` to send beside it) for `reasoning_effort`, or None without one.

    The budget comes from THINKING_BUDGETS. OpenAI counts reasoning inside `max_completion_tokens`, so a
    caller's limit above the budget is kept as it is; a smaller one (or none) is raised to budget + that
    limit (DEFAULT_MAX_TOKENS when none), so the answer keeps the room the caller asked for. Both stay
    within `ceiling`, the model's max output tokens (0: not known): at that ceiling the budget shrinks, keeping
    the answer's room (at least half of max_tokens), never below Anthropic's floor of 1024.
    """
    effort = oa.reasoning_effort_of(body)
    if effort is None:
        return None
    if effort == "none":
        return {"type": "disabled", "max_tokens": oa.max_output_tokens(body) or DEFAULT_MAX_TOKENS}
    budget = THINKING_BUDGETS[effort]
    requested = oa.max_output_tokens(body)
    answer = requested or DEFAULT_MAX_TOKENS
    max_tokens = requested if requested is not None and requested > budget else budget + answer
    if ceiling:
        max_tokens = min(max_tokens, ceiling)
        budget = min(budget, max_tokens - min(answer, max_tokens // 2))
    budget = max(budget, MIN_THINKING_BUDGET)
    if budget >= max_tokens:
        raise oa.invalid_request(
            f"This model answers at most {max_tokens} tokens, too few for `reasoning_effort`; remove it.", "reasoning_effort"
        )
    return {"type": "enabled", "budget_tokens": budget, "max_tokens": max_tokens}


def _json_tool(body: dict[str, Any], tools: list[dict[str, Any]], tool_choice: dict[str, Any] | None) -> dict[str, Any] | None:
    """The tool a JSON `response_format` becomes (None for text): its input schema is the caller's
    schema (any object for `json_object`). It cannot share the turn with a tool the caller forces."""
    kind = oa.response_format_type(body)
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        schema: dict[str, Any] = {"type": "object"}
        description = "Answer with a JSON object."
    elif kind == "json_schema":
        schema = oa.json_schema_of(body)
        if schema.get("type") != "object":
            raise oa.invalid_request(
                'response_format.json_schema.schema must describe an object (`"type": "object"`) for this model.',
                "response_format.json_schema.schema",
            )
        json_schema = body["response_format"]["json_schema"]
        description = json_schema.get("description") or f"Answer with a JSON object: {json_schema.get('name') or 'the answer'}."
    else:
        raise oa.invalid_request('response_format.type must be "text", "json_object" or "json_schema".', "response_format.type")
    if tool_choice is not None and tool_choice["type"] in ("any", "tool"):
        raise oa.invalid_request(
            "`tool_choice` cannot force a tool together with a JSON `response_format` on this model: Claude "
            "answers in JSON by a forced tool call of its own. Remove one of them.",
            "tool_choice",
        )
    if any(tool["name"] == JSON_TOOL for tool in tools):
        raise oa.invalid_request(
            f"A tool may not be named `{JSON_TOOL}` together with a JSON `response_format` on this model; rename it.", "tools"
        )
    return {"name": JSON_TOOL, "description": description, "input_schema": schema}


def _refuse_what_thinking_forbids(payload: dict[str, Any], body: dict[str, Any]) -> None:
    """Anthropic refuses these while Claude thinks; a 400 naming the field says so before going upstream."""
    if not _thinks(payload.get("thinking")):
        return
    source = "`reasoning_effort`" if body.get("reasoning_effort") is not None else "`thinking`"
    if payload.get("temperature", 1) != 1:
        raise oa.invalid_request(
            f"`temperature` cannot be combined with {source} on this model: Claude thinks at temperature 1. "
            "Remove `temperature` or set it to 1.",
            "temperature",
        )
    if not 0.95 <= payload.get("top_p", 1) <= 1:
        raise oa.invalid_request(f"`top_p` must be from 0.95 to 1 with {source} on this model; remove it.", "top_p")
    if "top_k" in payload:
        raise oa.invalid_request(f"`top_k` cannot be combined with {source} on this model; remove it.", "top_k")
    if (payload.get("tool_choice") or {}).get("name") == JSON_TOOL:
        raise oa.invalid_request(
            f"A JSON `response_format` cannot be combined with {source} on this model: Claude answers in JSON "
            "by a forced tool call, which thinking does not allow. Remove one of them.",
            "response_format",
        )
    if (payload.get("tool_choice") or {}).get("type") in ("any", "tool"):
        raise oa.invalid_request(
            f"`tool_choice` cannot force a tool with {source} on this model: Claude may only choose "
            'tools itself while it thinks. Use "auto" or "none".',
            "tool_choice",
        )


def _messages(messages: list[dict[str, Any]], *, with_thinking: bool) -> tuple[list[str], list[dict[str, Any]]]:
    """(system texts, alternating Anthropic messages). While Claude thinks, an assistant message's
    `thinking_blocks` (as City answered them) open its turn again."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    first_message_of_turn: list[int] = []
    for i, message in enumerate(messages):
        role, param = message["role"], f"messages[{i}]"
        if role in ("system", "developer"):
            if text := oa.text_of(message.get("content"), f"{param}.content"):
                system.append(text)
            continue
        if role == "user":
            parts = oa.content_parts(message.get("content"), f"{param}.content")
            # Anthropic refuses empty text blocks; an empty text part says nothing anyway.
            blocks = [
                _user_block(part, f"{param}.content[{j}]") for j, part in enumerate(parts) if part.get("type") != "text" or part.get("text")
            ]
            anthropic_role = "user"
        elif role == "assistant":
            blocks = _assistant_blocks(message, param)
            if with_thinking and message.get("thinking_blocks") is not None:
                blocks[:0] = _thinking_blocks(message["thinking_blocks"], f"{param}.thinking_blocks")
            anthropic_role = "assistant"
        elif role == "tool":
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": oa.safe_tool_call_id(message.get("tool_call_id"), f"{param}.tool_call_id"),
                    "content": oa.text_of(message.get("content"), f"{param}.content"),
                }
            ]
            anthropic_role = "user"
        else:
            raise oa.invalid_request(f'{param}.role must be "system", "developer", "user", "assistant" or "tool".', f"{param}.role")
        count = len(turns)
        oa.add_turn(turns, anthropic_role, blocks, key="content")
        if len(turns) > count:
            first_message_of_turn.append(i)
    if not any(turn["role"] == "user" for turn in turns):
        raise oa.invalid_request("`messages` needs at least one user message.", "messages")
    if with_thinking:
        _check_tool_loop_keeps_its_thinking(turns, first_message_of_turn)
    return system, turns


def _thinking_blocks(blocks: Any, param: str) -> list[dict[str, Any]]:
    """An assistant message's `thinking_blocks`, checked: each `{"type": "thinking", "thinking", "signature"}`
    or `{"type": "redacted_thinking", "data"}`, sent back unchanged (Anthropic checks the signatures)."""
    if not isinstance(blocks, list):
        raise oa.invalid_request(f"{param} must be the list of thinking blocks City answered.", param)
    checked = []
    for j, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "thinking" and isinstance(block.get("thinking"), str) and isinstance(block.get("signature"), str):
            checked.append({"type": "thinking", "thinking": block["thinking"], "signature": block["signature"]})
        elif kind == "redacted_thinking" and isinstance(block.get("data"), str):
            checked.append({"type": "redacted_thinking", "data": block["data"]})
        else:
            raise oa.invalid_request(
                f'{param}[{j}] must be {{"type": "thinking", "thinking", "signature"}} or '
                '{"type": "redacted_thinking", "data"}, as City answered it.',
                f"{param}[{j}]",
            )
    return checked


def _check_tool_loop_keeps_its_thinking(turns: list[dict[str, Any]], first_message_of_turn: list[int]) -> None:
    """While Claude thinks, Anthropic wants the assistant turn whose tool calls the request answers to
    open with its signed thinking: only the caller has it (`thinking_blocks`), so say so by name."""
    if len(turns) < 2 or turns[-2]["role"] != "assistant":
        return
    assistant, last = turns[-2]["content"], turns[-1]["content"]
    if not any(b["type"] == "tool_result" for b in last) or not any(b["type"] == "tool_use" for b in assistant):
        return
    if assistant[0]["type"] in ("thinking", "redacted_thinking"):
        return
    param = f"messages[{first_message_of_turn[-2]}].thinking_blocks"
    raise oa.invalid_request(
        f"{param} is required: Claude thought before calling these tools, and to go on thinking it needs "
        "that thinking back. Send the assistant message as City answered it (with `thinking_blocks`), "
        "or remove `reasoning_effort` from this request.",
        param,
    )


def _user_block(part: dict[str, Any], param: str) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": str(part["text"])}
    if kind == "image_url":
        url = oa.image_url_of(part, param)
        if url.startswith(("http://", "https://")):
            return {"type": "image", "source": {"type": "url", "url": url}}
        media_type, data = oa.parse_data_url(url, f"{param}.image_url.url")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if kind == "file":
        file_data = (part.get("file") or {}).get("file_data")
        if not isinstance(file_data, str):
            raise oa.invalid_request(
                f"{param}.file.file_data must be a base64 `data:application/pdf` URL (file ids are not supported).",
                f"{param}.file.file_data",
            )
        media_type, data = oa.parse_data_url(file_data, f"{param}.file.file_data")
        if media_type != "application/pdf":
            raise oa.invalid_request(f"{param}.file must be a PDF for this model.", f"{param}.file.file_data")
        return {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}
    raise oa.invalid_request(f"{param}.type {kind!r} is not supported by this model; send text, image_url or a PDF file.", f"{param}.type")


def _assistant_blocks(message: dict[str, Any], param: str) -> list[dict[str, Any]]:
    # Anthropic refuses empty text blocks, so an assistant turn that only called tools has none.
    blocks: list[dict[str, Any]] = [
        {"type": "text", "text": text} for text in [oa.text_of(message.get("content"), f"{param}.content")] if text
    ]
    for j, call in enumerate(message.get("tool_calls") or []):
        call_param = f"{param}.tool_calls[{j}]"
        name = (call.get("function") or {}).get("name") if isinstance(call, dict) else None
        if not isinstance(name, str) or not name:
            raise oa.invalid_request(f"{call_param}.function.name is required.", f"{call_param}.function.name")
        blocks.append(
            {
                "type": "tool_use",
                "id": oa.safe_tool_call_id(call.get("id"), f"{call_param}.id"),
                "name": name,
                "input": oa.tool_arguments(call, call_param),
            }
        )
    return blocks


def _tools(body: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    tools = []
    for function in oa.function_tools(body):
        tool = {"name": function["name"], "input_schema": function.get("parameters") or {"type": "object", "properties": {}}}
        if function.get("description"):
            tool["description"] = function["description"]
        tools.append(tool)
    mode, name = oa.tool_choice_of(body)
    choice: dict[str, Any] | None = None
    if mode == "none":
        choice = {"type": "none"}
    elif mode == "auto":
        choice = {"type": "auto"}
    elif mode == "required":
        choice = {"type": "any"}
    elif mode == "function":
        choice = {"type": "tool", "name": name}
    if body.get("parallel_tool_calls") is False and tools and (choice is None or choice["type"] != "none"):
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if not tools and choice is not None and choice["type"] != "none":
        raise oa.invalid_request("`tool_choice` needs `tools`.", "tool_choice")
    if not tools:
        choice = None  # Anthropic refuses a tool_choice without tools; "none" without tools means nothing.
    return tools, choice


# --- Answer -----------------------------------------------------------------------------------


def openai_tool_call_id(anthropic_id: str) -> str:
    """`toolu_01AB…` → `call_01AB…`: an OpenAI-looking id that maps back unchanged in meaning."""
    return "call_" + anthropic_id.removeprefix("toolu_") if anthropic_id else oa.new_tool_call_id()


def usage_of(usage: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's usage for Anthropic's (a message's, or a stream's merged): Anthropic counts cache reads
    and writes apart from `input_tokens`; OpenAI's prompt holds them all. Writes go in
    `prompt_tokens_details.cache_creation_tokens` (not OpenAI's: OpenAI's cache has no write price), those
    kept an hour also in `cache_creation_1h_tokens`; the Meter bills them at the catalog's cache-write prices."""
    cached = _count(usage, "cache_read_input_tokens")
    writes = _count(usage, "cache_creation_input_tokens")
    result = oa.usage(_count(usage, "input_tokens") + writes + cached, _count(usage, "output_tokens"), cached_tokens=cached)
    if writes:
        details = result.setdefault("prompt_tokens_details", {"cached_tokens": 0})
        details["cache_creation_tokens"] = writes
        breakdown = usage.get("cache_creation")
        if hour := min(_count(breakdown, "ephemeral_1h_input_tokens") if isinstance(breakdown, dict) else 0, writes):
            details["cache_creation_1h_tokens"] = hour
    return result


def _count(usage: dict[str, Any], name: str) -> int:
    value = usage.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def thinking_block(block: dict[str, Any]) -> dict[str, Any]:
    """A thinking or redacted_thinking block as City hands it out (and takes it back): its fields unchanged."""
    if block.get("type") == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.get("data") or ""}
    return {"type": "thinking", "thinking": block.get("thinking") or "", "signature": block.get("signature") or ""}


def completion_from_message(message: dict[str, Any], *, model: str, provider: str, json_answer: bool = False) -> dict[str, Any]:
    """The OpenAI `chat.completion` for an Anthropic `message` object.

    Thinking blocks: their text is `message.reasoning_content`, the blocks themselves (signed)
    `message.thinking_blocks`. With `json_answer`, the input of the JSON_TOOL call is the `content`
    (a JSON string) and a finished call is finish_reason "stop".
    """
    if not isinstance(message.get("content"), list):
        raise oa.malformed_answer(provider)
    texts, tool_calls, thoughts, thinking_blocks = [], [], [], []
    json_input = None
    for block in message["content"]:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use" and json_answer and block.get("name") == JSON_TOOL:
            json_input = block.get("input") or {}
        elif kind == "tool_use":
            tool_calls.append(oa.tool_call(openai_tool_call_id(block.get("id", "")), block.get("name", ""), block.get("input") or {}))
        elif kind in ("thinking", "redacted_thinking"):
            thinking_blocks.append(thinking_block(block))
            if kind == "thinking" and block.get("thinking"):
                thoughts.append(block["thinking"])
    finish_reason = FINISH_REASONS.get(message.get("stop_reason") or "end_turn", "stop")
    if json_input is not None:
        text: str | None = json.dumps(json_input, ensure_ascii=False)
        finish_reason = "stop" if finish_reason == "tool_calls" else finish_reason
    else:
        text = "".join(texts) if texts or not tool_calls else None
    choice = oa.chat_choice(0, text, tool_calls, finish_reason, reasoning="\n\n".join(thoughts), thinking_blocks=thinking_blocks)
    return oa.chat_completion(model, [choice], usage_of(message.get("usage") or {}))


class StreamTranslator:
    """Turns Anthropic stream events, one at a time, into OpenAI chunks; keeps the usage.

    Each `tool_use` content block becomes the next OpenAI tool call `index`; its `input_json_delta`
    fragments become that call's `arguments` fragments. With `json_answer`, the JSON_TOOL call's
    fragments are `content` instead, and its `tool_use` stop is finish_reason "stop". Thinking text
    streams as `reasoning_content`; each thinking block, once whole and signed, follows as one
    `thinking_blocks` delta (a redacted one as soon as it starts).
    """

    def __init__(self, model: str, provider: str, *, json_answer: bool = False) -> None:
        self.provider = provider
        self.writer = oa.ChunkWriter(model)
        self.usage: dict[str, Any] = {}
        self.tool_index_by_block: dict[int, int] = {}
        self.json_answer = json_answer
        self.json_block: int | None = None
        self.thinking: dict[int, dict[str, Any]] = {}  # content block index → the thinking block so far
        self.stopped = False

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "message_start":
            self.usage.update((event.get("message") or {}).get("usage") or {})
            return [self.writer.delta({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use" and self.json_answer and block.get("name") == JSON_TOOL:
                self.json_block = event.get("index", 0)
                return []
            if block.get("type") == "thinking":
                self.thinking[event.get("index", 0)] = thinking_block(block)
                return [self.writer.delta({"reasoning_content": block["thinking"]})] if block.get("thinking") else []
            if block.get("type") == "redacted_thinking":
                return [self.writer.delta({"thinking_blocks": [thinking_block(block)]})]
            if block.get("type") == "tool_use":
                index = self.tool_index_by_block[event.get("index", 0)] = len(self.tool_index_by_block)
                call = {
                    "index": index,
                    "id": openai_tool_call_id(block.get("id", "")),
                    "type": "function",
                    "function": {"name": block.get("name", ""), "arguments": ""},
                }
                return [self.writer.delta({"tool_calls": [call]})]
            if block.get("type") == "text" and block.get("text"):
                return [self.writer.delta({"content": block["text"]})]
            return []
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                return [self.writer.delta({"content": delta["text"]})]
            if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                if event.get("index", 0) == self.json_block:
                    return [self.writer.delta({"content": delta["partial_json"]})]
                index = self.tool_index_by_block.get(event.get("index", 0), 0)
                return [self.writer.delta({"tool_calls": [{"index": index, "function": {"arguments": delta["partial_json"]}}]})]
            thinking = self.thinking.get(event.get("index", 0))
            if thinking is not None and delta.get("type") == "thinking_delta" and delta.get("thinking"):
                thinking["thinking"] += delta["thinking"]
                return [self.writer.delta({"reasoning_content": delta["thinking"]})]
            if thinking is not None and delta.get("type") == "signature_delta":
                thinking["signature"] += delta.get("signature") or ""
            return []
        if kind == "content_block_stop":
            thinking = self.thinking.pop(event.get("index", 0), None)
            return [self.writer.delta({"thinking_blocks": [thinking]})] if thinking is not None else []
        if kind == "message_delta":
            self.usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            stop_reason = (event.get("delta") or {}).get("stop_reason")
            if stop_reason:
                finish_reason = FINISH_REASONS.get(stop_reason, "stop")
                if self.json_block is not None and finish_reason == "tool_calls":
                    finish_reason = "stop"
                return [self.writer.delta({}, finish_reason=finish_reason)]
            return []
        if kind == "message_stop":
            self.stopped = True
            return []
        if kind == "error":
            raise _stream_error(event.get("error") or {}, self.provider)
        return []  # ping, and event types newer than this adapter

    def check_complete(self) -> None:
        """Raise a retryable 502 when the stream ended before `message_stop` (a cut connection)."""
        if not self.stopped:
            raise oa.stream_cut_short()

    def usage_chunk(self) -> dict[str, Any]:
        """The final chunk: `choices: []` and the usage Anthropic reported (always, on the real API)."""
        return self.writer.usage(usage_of(self.usage))


def _stream_error(error: dict[str, Any], provider: str) -> UpstreamError:
    """An `error` event: `{"type": "error", "error": {"type": "overloaded_error", "message": ...}}`."""
    message = str(error.get("message") or "no message")
    status = _STREAM_ERROR_STATUS.get(str(error.get("type")), 502)
    code = {503: "upstream_unavailable", 504: "upstream_timeout"}.get(status, "upstream_error")
    return UpstreamError(f"The upstream provider failed mid-stream: {message}", status=status, retryable=True, code=code)
