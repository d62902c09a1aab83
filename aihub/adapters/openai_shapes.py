"""Helpers for the adapters that translate another wire protocol to and from OpenAI shapes.

Builders for the OpenAI answers (`chat.completion`, `chat.completion.chunk`, usage, embeddings) and
readers for the OpenAI request's fields, which raise a 400 `UpstreamError` naming the field when a
request cannot be translated. Nothing here knows a provider by name.
"""

import json
import re
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson

from aihub.adapters.base import UpstreamError, error_from_transport
from aihub.adapters.sse import iter_sse

_TOOL_CALL_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


# --- Errors -----------------------------------------------------------------------------------


def invalid_request(message: str, param: str | None = None) -> UpstreamError:
    """A request City cannot translate for this upstream: a 400 that names the field."""
    return UpstreamError(message, status=400, retryable=False, error_type="invalid_request_error", param=param)


def malformed_answer(provider: str) -> UpstreamError:
    return UpstreamError("The upstream provider answered with an unexpected shape.", status=502, retryable=True, code="upstream_error")


def stream_cut_short() -> UpstreamError:
    """The stream ended before the provider said the answer was complete: a cut connection, retryable."""
    return UpstreamError(
        "The upstream provider ended the stream before the answer was complete.", status=502, retryable=True, code="upstream_error"
    )


@asynccontextmanager
async def transport_errors(provider: str) -> AsyncIterator[None]:
    """Turn httpx's failures inside the block (connect, timeout, broken stream) into UpstreamErrors."""
    try:
        yield
    except httpx.HTTPError as exc:
        raise error_from_transport(exc, provider) from None


def json_of(data: bytes, provider: str) -> dict[str, Any]:
    """A JSON object off the wire, or a retryable 502 when it is not one."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise malformed_answer(provider) from None
    if not isinstance(value, dict):
        raise malformed_answer(provider)
    return value


# --- Reading the OpenAI request ---------------------------------------------------------------


async def translated_stream(
    client: httpx.AsyncClient,
    request: httpx.Request,
    provider: str,
    http_error: Callable[[int, bytes, str], UpstreamError],
    translator: Any,
) -> AsyncGenerator[dict[str, Any], None]:
    """Send `request` streamed; yield the OpenAI chunks `translator.feed(event)` makes of each
    server-sent event's JSON as it arrives, then (after `translator.check_complete()`) its usage chunk.

    Raises `http_error(status, body, provider)` for an HTTP error and UpstreamError for a broken
    transport. The response is read to its end (so the connection returns to the pool), or closed
    at once when the caller stops early (so the upstream sees the client leave).
    """
    async with transport_errors(provider):
        response = await client.send(request, stream=True)
        try:
            if response.status_code >= 400:
                raise http_error(response.status_code, await response.aread(), provider)
            async for _event, data in iter_sse(response):
                for chunk in translator.feed(json_of(data, provider)):
                    yield chunk
        finally:
            await response.aclose()
    translator.check_complete()
    if translator.usage:
        yield translator.usage_chunk()


def add_turn(turns: list[dict[str, Any]], role: str, pieces: list[dict[str, Any]], *, key: str) -> None:
    """Append `pieces` as a turn of `role`, merged into the last turn when that has the same role:
    Anthropic and Gemini both require user and assistant turns to alternate."""
    if not pieces:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(pieces)
    else:
        turns.append({"role": role, key: pieces})


def messages_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid_request("`messages` must be a non-empty list of chat messages.", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise invalid_request(f"messages[{i}] must be an object with a `role`.", f"messages[{i}]")
    return messages


def content_parts(content: Any, param: str) -> list[dict[str, Any]]:
    """A message's content as a list of OpenAI content parts (a plain string becomes one text part)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return content
    raise invalid_request(f"{param} must be a string or a list of content parts.", param)


def text_of(content: Any, param: str) -> str:
    """The text of a content that may only hold text (system prompts, tool results)."""
    texts = []
    for i, part in enumerate(content_parts(content, param)):
        if part.get("type") not in ("text", "refusal"):
            raise invalid_request(f"{param}[{i}] must be a text part here.", f"{param}[{i}]")
        texts.append(str(part.get("text") or part.get("refusal") or ""))
    return "\n".join(t for t in texts if t)


def number(body: dict[str, Any], field: str) -> float | None:
    """A numeric sampling field (`temperature`, `top_p`, penalties), None when absent."""
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid_request(f"`{field}` must be a number.", field)
    return value


def response_format_type(body: dict[str, Any]) -> str | None:
    response_format = body.get("response_format")
    if response_format is None:
        return None
    if not isinstance(response_format, dict) or not isinstance(response_format.get("type"), str):
        raise invalid_request(
            '`response_format` must be an object with a `type` ("text", "json_object" or "json_schema").', "response_format"
        )
    return response_format["type"]


# OpenAI's `reasoning_effort` values, least thinking first (ReasoningEffort in aihub/tests/openai/openai-subset.schema.json).
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


def reasoning_effort_of(body: dict[str, Any]) -> str | None:
    """`reasoning_effort`, None when absent or null; a 400 naming it for a value OpenAI does not define."""
    effort = body.get("reasoning_effort")
    if effort is None:
        return None
    if effort not in REASONING_EFFORTS:
        raise invalid_request(f"`reasoning_effort` must be one of {', '.join(repr(e) for e in REASONING_EFFORTS)}.", "reasoning_effort")
    return effort


def json_schema_of(body: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a `response_format` of type `json_schema`."""
    json_schema = body["response_format"].get("json_schema")
    schema = json_schema.get("schema") if isinstance(json_schema, dict) else None
    if not isinstance(schema, dict):
        raise invalid_request("response_format.json_schema.schema must be a JSON Schema object.", "response_format.json_schema.schema")
    return schema


def image_url_of(part: dict[str, Any], param: str) -> str:
    """The URL of an `image_url` part (`{"url": ...}`, or a bare string as some clients send)."""
    image_url = part.get("image_url")
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str) or not url:
        raise invalid_request(f"{param}.image_url.url is required.", f"{param}.image_url.url")
    return url


def parse_data_url(url: str, param: str) -> tuple[str, str]:
    """`data:image/png;base64,AAAA` → ("image/png", "AAAA")."""
    header, sep, data = url.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise invalid_request(f"{param} must be an http(s) URL or a base64 `data:` URL.", param)
    media_type = header[len("data:") : -len(";base64")]
    if not media_type:
        raise invalid_request(f"{param} must name its media type, e.g. `data:image/png;base64,...`.", param)
    return media_type, data


def tool_arguments(tool_call: dict[str, Any], param: str) -> dict[str, Any]:
    """An assistant tool call's JSON-string arguments as the object the providers want."""
    raw = (tool_call.get("function") or {}).get("arguments") or "{}"
    try:
        arguments = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise invalid_request(f"{param}.function.arguments must be a JSON object string.", f"{param}.function.arguments") from None
    if not isinstance(arguments, dict):
        raise invalid_request(f"{param}.function.arguments must encode a JSON object.", f"{param}.function.arguments")
    return arguments


def function_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's `tools`, each an OpenAI function definition `{"name", "description"?, "parameters"?}`."""
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise invalid_request("`tools` must be a list.", "tools")
    functions = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type", "function") != "function" or not isinstance(function, dict):
            raise invalid_request(f'tools[{i}] must be a function tool: {{"type": "function", "function": {{...}}}}.', f"tools[{i}]")
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise invalid_request(f"tools[{i}].function.name is required.", f"tools[{i}].function.name")
        functions.append(function)
    return functions


def tool_choice_of(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """`tool_choice` as (mode, function name): mode is None, "none", "auto", "required" or "function"."""
    choice = body.get("tool_choice")
    if choice is None:
        return None, None
    if choice in ("none", "auto", "required"):
        return choice, None
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if isinstance(name, str) and name:
            return "function", name
    raise invalid_request(
        '`tool_choice` must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}.', "tool_choice"
    )


def stop_sequences(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return stop
    raise invalid_request("`stop` must be a string or a list of strings.", "stop")


def max_output_tokens(body: dict[str, Any]) -> int | None:
    """`max_completion_tokens`, else the older `max_tokens`."""
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    value = body.get(name)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise invalid_request(f"`{name}` must be a positive integer.", name)
    return value


def refuse_unsupported(body: dict[str, Any], *, allow_n: bool) -> None:
    """Refuse what this upstream cannot do rather than answer in a shape the caller did not ask for."""
    n = body.get("n")
    if n not in (None, 1) and not allow_n:
        raise invalid_request("This model returns one choice per request; leave `n` at 1.", "n")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise invalid_request("This model does not return log probabilities; remove `logprobs`.", "logprobs")
    if "audio" in (body.get("modalities") or []) or body.get("audio"):
        raise invalid_request("This model answers in text only; remove `audio` from `modalities`.", "modalities")


# The fields of OpenAI's chat completions request (CreateChatCompletionRequest in aihub/tests/openai/openai-subset.schema.json).
OPENAI_CHAT_FIELDS = frozenset(
    {
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "messages",
        "metadata",
        "modalities",
        "model",
        "moderation",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    }
)
# OpenAI fields that only steer bookkeeping on OpenAI's side (storage, prompt caching, abuse monitoring,
# billing tier), never what the model answers: an adapter for another protocol may leave them out.
BOOKKEEPING_FIELDS = frozenset(
    {
        "store",
        "metadata",
        "service_tier",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "safety_identifier",
        "user",
        "stream_options",
    }
)
# Values that ask for nothing beyond the default: a field set to one of them is as good as absent.
NEUTRAL_VALUES: dict[str, Any] = {
    "n": 1,
    "logprobs": False,
    "top_logprobs": 0,
    "parallel_tool_calls": True,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "logit_bias": {},
    "functions": [],
    "modalities": ["text"],
    "verbosity": "medium",
}


def extension_fields(body: dict[str, Any], *, translated: frozenset[str], ignored: frozenset[str]) -> dict[str, Any]:
    """Check each field of an OpenAI chat request against what an adapter does with it, and return the
    fields that are not OpenAI's (provider extensions such as `top_k` or `thinking`) for the adapter
    to forward as they are.

    An OpenAI field the adapter neither `translated` nor may leave out (`ignored`) raises a 400
    naming it, unless it is absent, null or neutral (`n: 1`, `logit_bias: {}` …): an answer that
    quietly ignored it would not be the answer the caller asked for.
    """
    for name, value in body.items():
        if name not in OPENAI_CHAT_FIELDS or name in translated or name in ignored:
            continue
        if value is None or (name in NEUTRAL_VALUES and value == NEUTRAL_VALUES[name]):
            continue
        hint = " (use `tools`)" if name in ("functions", "function_call") else ""
        raise invalid_request(f"`{name}` is not supported by this model; remove it{hint}.", name)
    return {name: value for name, value in body.items() if name not in OPENAI_CHAT_FIELDS}


def add_extensions(payload: dict[str, Any], extensions: dict[str, Any]) -> None:
    """Add provider extension fields to a translated request; one City already set from the OpenAI
    fields is refused (a 400 naming it) rather than silently overwritten either way."""
    for name, value in extensions.items():
        if name in payload:
            raise invalid_request(f"`{name}` is set from the OpenAI fields of this request; remove it.", name)
        payload[name] = value


def safe_tool_call_id(tool_call_id: Any, param: str) -> str:
    """A tool call id the providers accept (`[A-Za-z0-9_-]+`), the same for a call and its result."""
    if not isinstance(tool_call_id, str) or not tool_call_id:
        raise invalid_request(f"{param} is required.", param)
    return _TOOL_CALL_ID_UNSAFE.sub("_", tool_call_id)


# --- Building the OpenAI answer ---------------------------------------------------------------


def new_completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(14)


def new_tool_call_id() -> str:
    return "call_" + secrets.token_hex(12)


def usage(prompt_tokens: int, completion_tokens: int, *, cached_tokens: int = 0, reasoning_tokens: int = 0) -> dict[str, Any]:
    result: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached_tokens:
        result["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    if reasoning_tokens:
        result["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    return result


def tool_call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    """An OpenAI tool call; `arguments` (an object from the provider) becomes a JSON string."""
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)},
    }


def chat_choice(
    index: int,
    text: str | None,
    tool_calls: list[dict[str, Any]],
    finish_reason: str,
    *,
    reasoning: str | None = None,
    thinking_blocks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One choice of a `chat.completion`. `reasoning` (the model's shown thinking) goes in
    `message.reasoning_content`, as DeepSeek answers it; `thinking_blocks` are the provider's signed
    thinking blocks, which a caller sends back on the assistant message to continue a tool loop."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = reasoning
    if thinking_blocks:
        message["thinking_blocks"] = thinking_blocks
    return {"index": index, "message": message, "finish_reason": finish_reason, "logprobs": None}


def chat_completion(model: str, choices: list[dict[str, Any]], usage_: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": new_completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage_,
    }


class ChunkWriter:
    """Builds the `chat.completion.chunk` dicts of one stream: one id, one `created`, one model."""

    def __init__(self, model: str) -> None:
        self.id = new_completion_id()
        self.created = int(time.time())
        self.model = model

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model, "choices": choices}

    def delta(self, delta: dict[str, Any], *, index: int = 0, finish_reason: str | None = None) -> dict[str, Any]:
        return self._chunk([{"index": index, "delta": delta, "finish_reason": finish_reason, "logprobs": None}])

    def usage(self, usage_: dict[str, Any]) -> dict[str, Any]:
        chunk = self._chunk([])
        chunk["usage"] = usage_
        return chunk


def embedding_list(model: str, vectors: list[list[float]], prompt_tokens: int) -> dict[str, Any]:
    """An OpenAI embeddings answer, floats (the service encodes base64 itself when asked)."""
    data = [{"object": "embedding", "index": index, "embedding": vector} for index, vector in enumerate(vectors)]
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}}


def embedding_inputs(body: dict[str, Any]) -> list[str]:
    """The texts of an embeddings request (token-id inputs cannot be translated to another vocabulary)."""
    value = body.get("input")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise invalid_request(
            "`input` must be a string or a non-empty list of strings for this model (token ids are not accepted).", "input"
        )
    return value


def estimate_tokens(texts: list[str]) -> int:
    """A rough token count (4 characters a token) for upstreams that do not report one."""
    return sum(max(1, (len(t) + 3) // 4) for t in texts)
