"""The Anthropic Messages API (`POST /v1/messages`) behind OpenAI's chat completions shapes.

Request: `system`/`developer` messages → `system`; consecutive turns of one role merge (the API wants
user and assistant to alternate); `tool` messages → `tool_result` blocks in a user turn; assistant
`tool_calls` → `tool_use` blocks; `image_url` parts → `image` blocks (base64 or URL source); PDF
`file` parts → `document` blocks; tools, `tool_choice` and `parallel_tool_calls`; `max_tokens`
(required by Anthropic, defaulted here), `temperature` (clamped to Anthropic's 0–1), `top_p` (when no
temperature is given: current models refuse both), `stop`, `user` (→ `metadata.user_id`). OpenAI's
bookkeeping fields (`store`, `metadata`, `service_tier` …) and `seed` are left out; any other OpenAI
field Claude cannot honour (`logit_bias`, penalties, `reasoning_effort` …) is a 400 naming it;
fields that are not OpenAI's (`top_k`, `thinking` …) are forwarded as they are.
Answer: text and `tool_use` blocks → `content` and `tool_calls`; `stop_reason` → `finish_reason`;
`usage` (cache reads and writes count as prompt tokens). Streams translate event by event.
"""

from collections.abc import AsyncIterator
from typing import Any

import orjson
from typing_extensions import override

from aihub.adapters import openai_shapes as oa
from aihub.adapters.base import Adapter, UpstreamError, error_from_response
from aihub.catalog_types import Upstream

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
        payload = messages_request(upstream.model, body, stream=False)
        async with oa.transport_errors(upstream.provider):
            response = await self.client.post(_url(upstream), content=orjson.dumps(payload), headers=_headers(upstream))
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.content, upstream.provider)
        message = oa.json_of(response.content, upstream.provider)
        return completion_from_message(message, model=body.get("model") or upstream.model, provider=upstream.provider)

    @override
    def chat_stream(self, upstream: Upstream, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Yields chunks as Anthropic's events arrive; after `message_stop`, a usage chunk (`choices: []`).

        Raises UpstreamError for an HTTP error, an `error` event, or a stream cut before `message_stop`.
        Closing this iterator early closes the upstream response at once.
        """
        payload = messages_request(upstream.model, body, stream=True)
        translator = StreamTranslator(body.get("model") or upstream.model, upstream.provider)
        request = self.client.build_request("POST", _url(upstream), content=orjson.dumps(payload),
                                            headers={**_headers(upstream), "Accept": "text/event-stream"})
        return oa.translated_stream(self.client, request, upstream.provider, error_from_response, translator)


def _url(upstream: Upstream) -> str:
    return f"{upstream.base_url}/v1/messages"


def _headers(upstream: Upstream) -> dict[str, str]:
    return {"Content-Type": "application/json", "Accept": "application/json",
            "x-api-key": upstream.api_key or "", "anthropic-version": ANTHROPIC_VERSION}


# --- Request ----------------------------------------------------------------------------------


# OpenAI chat fields this adapter translates (or, for n, logprobs and audio, refuses unless neutral).
TRANSLATED_FIELDS = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "tools", "tool_choice",
    "parallel_tool_calls", "user", "stream", "response_format", "n", "logprobs", "top_logprobs", "modalities", "audio",
})
# OpenAI fields left out: bookkeeping, and `seed`, which OpenAI itself only honours on a best-effort
# basis (Claude has no seed). Every other OpenAI field is refused unless neutral.
IGNORED_FIELDS = oa.BOOKKEEPING_FIELDS | {"seed"}


def messages_request(model: str, body: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    """The Anthropic Messages request for an OpenAI chat completions request. Fields that are not
    OpenAI's (Anthropic's own `top_k`, `thinking` …) are forwarded as they are."""
    oa.refuse_unsupported(body, allow_n=False)
    extensions = oa.extension_fields(body, translated=TRANSLATED_FIELDS, ignored=IGNORED_FIELDS)
    if oa.response_format_type(body) not in (None, "text"):
        raise oa.invalid_request("This model does not take `response_format`; describe the JSON you want in the prompt.",
                                 "response_format")
    system, messages = _messages(oa.messages_of(body))
    payload: dict[str, Any] = {"model": model, "messages": messages,
                               "max_tokens": oa.max_output_tokens(body) or DEFAULT_MAX_TOKENS}
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
    if tools:
        payload["tools"] = tools
    if tool_choice:
        payload["tool_choice"] = tool_choice
    if isinstance(body.get("user"), str):
        payload["metadata"] = {"user_id": body["user"]}
    if stream:
        payload["stream"] = True
    oa.add_extensions(payload, extensions)
    return payload


def _messages(messages: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """(system texts, alternating Anthropic messages)."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role, param = message["role"], f"messages[{i}]"
        if role in ("system", "developer"):
            if text := oa.text_of(message.get("content"), f"{param}.content"):
                system.append(text)
            continue
        if role == "user":
            parts = oa.content_parts(message.get("content"), f"{param}.content")
            # Anthropic refuses empty text blocks; an empty text part says nothing anyway.
            blocks = [_user_block(part, f"{param}.content[{j}]") for j, part in enumerate(parts)
                      if part.get("type") != "text" or part.get("text")]
            anthropic_role = "user"
        elif role == "assistant":
            blocks = _assistant_blocks(message, param)
            anthropic_role = "assistant"
        elif role == "tool":
            blocks = [{
                "type": "tool_result",
                "tool_use_id": oa.safe_tool_call_id(message.get("tool_call_id"), f"{param}.tool_call_id"),
                "content": oa.text_of(message.get("content"), f"{param}.content"),
            }]
            anthropic_role = "user"
        else:
            raise oa.invalid_request(f'{param}.role must be "system", "developer", "user", "assistant" or "tool".', f"{param}.role")
        oa.add_turn(turns, anthropic_role, blocks, key="content")
    if not any(turn["role"] == "user" for turn in turns):
        raise oa.invalid_request("`messages` needs at least one user message.", "messages")
    return system, turns


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
            raise oa.invalid_request(f"{param}.file.file_data must be a base64 `data:application/pdf` URL (file ids are not supported).",
                                     f"{param}.file.file_data")
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
        blocks.append({"type": "tool_use", "id": oa.safe_tool_call_id(call.get("id"), f"{call_param}.id"),
                       "name": name, "input": oa.tool_arguments(call, call_param)})
    return blocks


def _tools(body: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    tools = []
    for function in oa.function_tools(body):
        tool = {"name": function["name"],
                "input_schema": function.get("parameters") or {"type": "object", "properties": {}}}
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
    """Anthropic counts cache reads and writes apart from `input_tokens`; OpenAI's prompt holds them all."""
    cached = int(usage.get("cache_read_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + int(usage.get("cache_creation_input_tokens") or 0) + cached
    return oa.usage(prompt, int(usage.get("output_tokens") or 0), cached_tokens=cached)


def completion_from_message(message: dict[str, Any], *, model: str, provider: str) -> dict[str, Any]:
    """The OpenAI `chat.completion` for an Anthropic `message` object."""
    if not isinstance(message.get("content"), list):
        raise oa.malformed_answer(provider)
    texts, tool_calls = [], []
    for block in message["content"]:
        if block.get("type") == "text":
            texts.append(block.get("text") or "")
        elif block.get("type") == "tool_use":
            tool_calls.append(oa.tool_call(openai_tool_call_id(block.get("id", "")), block.get("name", ""),
                                           block.get("input") or {}))
        # thinking and redacted_thinking blocks have no OpenAI counterpart and stay out.
    finish_reason = FINISH_REASONS.get(message.get("stop_reason") or "end_turn", "stop")
    text = "".join(texts) if texts or not tool_calls else None
    choice = oa.chat_choice(0, text, tool_calls, finish_reason)
    return oa.chat_completion(model, [choice], usage_of(message.get("usage") or {}))


class StreamTranslator:
    """Turns Anthropic stream events, one at a time, into OpenAI chunks; keeps the usage.

    Each `tool_use` content block becomes the next OpenAI tool call `index`; its `input_json_delta`
    fragments become that call's `arguments` fragments.
    """

    def __init__(self, model: str, provider: str) -> None:
        self.provider = provider
        self.writer = oa.ChunkWriter(model)
        self.usage: dict[str, Any] = {}
        self.tool_index_by_block: dict[int, int] = {}
        self.stopped = False

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "message_start":
            self.usage.update((event.get("message") or {}).get("usage") or {})
            return [self.writer.delta({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self.tool_index_by_block[event.get("index", 0)] = len(self.tool_index_by_block)
                call = {"index": index, "id": openai_tool_call_id(block.get("id", "")), "type": "function",
                        "function": {"name": block.get("name", ""), "arguments": ""}}
                return [self.writer.delta({"tool_calls": [call]})]
            if block.get("type") == "text" and block.get("text"):
                return [self.writer.delta({"content": block["text"]})]
            return []
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                return [self.writer.delta({"content": delta["text"]})]
            if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                index = self.tool_index_by_block.get(event.get("index", 0), 0)
                return [self.writer.delta({"tool_calls": [{"index": index, "function": {"arguments": delta["partial_json"]}}]})]
            return []  # thinking and signature deltas have no OpenAI counterpart
        if kind == "message_delta":
            self.usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            stop_reason = (event.get("delta") or {}).get("stop_reason")
            if stop_reason:
                return [self.writer.delta({}, finish_reason=FINISH_REASONS.get(stop_reason, "stop"))]
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
