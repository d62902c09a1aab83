"""The Google Gemini API (`/v1beta/models/{model}:generateContent` and friends) behind OpenAI's shapes.

Request: `system`/`developer` messages → `systemInstruction`; `user`/`assistant` → `contents` with
roles `user`/`model`, consecutive turns of one role merged; `image_url` parts → `inlineData`
(`data:` URLs) or `fileData` (http(s) URLs with a recognisable image type); PDF `file` parts and
`input_audio` parts → `inlineData`; assistant `tool_calls` → `functionCall` parts; `tool` messages →
`functionResponse` parts; `tools` → `functionDeclarations` (JSON Schema as `parametersJsonSchema`);
`tool_choice` → `toolConfig`; sampling fields, `stop`, `n`, `seed`, penalties and `response_format`
→ `generationConfig`; `reasoning_effort` → `generationConfig.thinkingConfig` (a level for Gemini 3,
a budget for 2.5). OpenAI's bookkeeping fields (`store`, `metadata`, `user` …) and
`parallel_tool_calls` are left out; any other OpenAI field Gemini cannot honour (`logit_bias` …) is a
400 naming it; fields that are not OpenAI's are forwarded (`top_k` → `generationConfig.topK`,
`generationConfig` merged, others as they are).
Answer: `candidates` → `choices` (thought summaries → `reasoning_content`), `functionCall` parts → `tool_calls`,
`finishReason` → `finish_reason`, `usageMetadata` → `usage`. Embeddings via `embedContent` (one
input) or `batchEmbedContents` (several).
"""

import asyncio
import mimetypes
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import urlsplit

import orjson
from typing_extensions import override

from aihub.adapters import gemini_images, gemini_video
from aihub.adapters import openai_shapes as oa
from aihub.adapters.base import Adapter, MediaFile, MediaStream, Upstream, UpstreamError, error_from_response

API_VERSION = "v1beta"
# Inputs one batchEmbedContents request may carry (OpenAI takes up to 2048 in one request).
BATCH_EMBED_LIMIT = 100

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "stop",
    "OTHER": "stop",
    "MALFORMED_FUNCTION_CALL": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
}

# Google documents this value for a function call whose real thought signature is not at hand (the
# history came through OpenAI shapes, which have no place for one); Gemini 3 refuses a function call
# without any signature.
THOUGHT_SIGNATURE_FALLBACK = "skip_thought_signature_validator"

# OpenAI's `reasoning_effort` → Gemini's thinking (Google's thinking guide). Gemini 3 models take a
# thinking level; the levels each accepts, least thinking first, by upstream model name prefix (the
# catalog's gemini-3.1-pro-preview and gemini-3-flash-preview; the first prefix that matches wins).
# No Gemini 3 Pro stops thinking: "none" is its lowest level.
THINKING_LEVELS = (
    ("gemini-3.1-pro", ("LOW", "MEDIUM", "HIGH")),
    ("gemini-3-pro", ("LOW", "HIGH")),
    ("gemini-3", ("MINIMAL", "LOW", "MEDIUM", "HIGH")),  # Flash and Flash-Lite
)
EFFORT_LEVELS = {"none": "MINIMAL", "minimal": "MINIMAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH", "xhigh": "HIGH", "max": "HIGH"}
# Gemini 2.5 models take a budget in tokens: (least, most, whether 0 turns thinking off), by prefix.
THINKING_BUDGET_RANGES = (
    ("gemini-2.5-pro", (128, 32768, False)),
    ("gemini-2.5-flash-lite", (512, 24576, True)),
    ("gemini-2.5-flash", (1, 24576, True)),
)
DEFAULT_BUDGET_RANGE = (1, 24576, True)
# Budgets per effort, held within the model's range ("none" is 0, or the least budget where thinking
# cannot be turned off).
THINKING_BUDGETS = {"minimal": 512, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 24576, "max": 32768}

_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


class GeminiAdapter(Adapter):
    """Chat (plain and streamed) and embeddings over the Gemini API; no legacy completions."""

    @override
    async def chat(self, upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
        payload = generate_request(body, upstream.model)
        answer = await self._post(upstream, _model_url(upstream, "generateContent"), payload)
        return completion_from_response(answer, model=body.get("model") or upstream.model, provider=upstream.provider)

    @override
    def chat_stream(self, upstream: Upstream, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """Yields chunks as Gemini's SSE events arrive, then a usage chunk (`choices: []`).

        Raises UpstreamError for an HTTP error, an error event, or a stream that ends before any
        candidate finished. Closing this iterator early closes the upstream response at once.
        """
        payload = generate_request(body, upstream.model)
        translator = StreamTranslator(body.get("model") or upstream.model, upstream.provider)
        url = _model_url(upstream, "streamGenerateContent") + "?alt=sse"
        request = self.client.build_request(
            "POST", url, content=orjson.dumps(payload), headers={**_headers(upstream), "Accept": "text/event-stream"}
        )
        return oa.translated_stream(self.client, request, upstream.provider, _http_error, translator)

    @override
    async def embeddings(self, upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
        """One input → `embedContent`; several → `batchEmbedContents`, up to BATCH_EMBED_LIMIT inputs a
        request (more go as several requests at once). Gemini reports no token count for embeddings, so
        usage is estimated at 4 characters a token."""
        texts = oa.embedding_inputs(body)
        dimensions = body.get("dimensions")
        if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1):
            raise oa.invalid_request("`dimensions` must be a positive integer.", "dimensions")

        def embed_request(text: str) -> dict[str, Any]:
            request: dict[str, Any] = {"content": {"parts": [{"text": text}]}}
            if dimensions:
                request["outputDimensionality"] = dimensions
            return request

        if len(texts) == 1:
            answer = await self._post(upstream, _model_url(upstream, "embedContent"), embed_request(texts[0]))
            embeddings = [answer.get("embedding")]
        else:
            requests = [{"model": f"models/{_model_name(upstream)}", **embed_request(t)} for t in texts]
            batches = [requests[i : i + BATCH_EMBED_LIMIT] for i in range(0, len(requests), BATCH_EMBED_LIMIT)]
            answers = await asyncio.gather(
                *(self._post(upstream, _model_url(upstream, "batchEmbedContents"), {"requests": batch}) for batch in batches)
            )
            embeddings = [e for answer in answers for e in answer.get("embeddings") or []]
        found = [e.get("values") for e in embeddings if isinstance(e, dict)]
        vectors = [v for v in found if isinstance(v, list)]
        if len(found) != len(texts) or len(vectors) != len(found):
            raise oa.malformed_answer(upstream.provider)
        return oa.embedding_list(body.get("model") or upstream.model, vectors, oa.estimate_tokens(texts))

    async def _post(self, upstream: Upstream, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        async with oa.transport_errors(upstream.provider):
            response = await self.client.post(url, content=orjson.dumps(payload), headers=_headers(upstream))
        if response.status_code >= 400:
            raise _http_error(response.status_code, response.content, upstream.provider)
        return oa.json_of(response.content, upstream.provider)

    @override
    async def images(self, upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
        return await gemini_images.images(self, upstream, body)

    @override
    async def image_edit(self, upstream: Upstream, body: dict[str, Any], images: list[MediaFile], mask: MediaFile | None) -> dict[str, Any]:
        return await gemini_images.image_edit(self, upstream, body, images, mask)

    @override
    async def video_create(self, upstream: Upstream, body: dict[str, Any], reference: MediaFile | None) -> dict[str, Any]:
        return await gemini_video.video_create(self, upstream, body, reference)

    @override
    async def video_status(self, upstream: Upstream, upstream_id: str) -> dict[str, Any]:
        return await gemini_video.video_status(self, upstream, upstream_id)

    @override
    async def video_content(self, upstream: Upstream, upstream_id: str) -> MediaStream:
        return await gemini_video.video_content(self, upstream, upstream_id)


def _model_name(upstream: Upstream) -> str:
    return upstream.model.removeprefix("models/")


def _model_url(upstream: Upstream, method: str) -> str:
    return f"{upstream.base_url}/{API_VERSION}/models/{_model_name(upstream)}:{method}"


def _headers(upstream: Upstream) -> dict[str, str]:
    return {"Content-Type": "application/json", "Accept": "application/json", "x-goog-api-key": upstream.api_key or ""}


def _http_error(status: int, body: bytes, provider: str) -> UpstreamError:
    """Gemini's `{"error": {"code": 400, "message", "status": "INVALID_ARGUMENT"}}` with OpenAI's error
    types: the shared mapping would pass Google's status word and numeric code on as type and code."""
    error = error_from_response(status, body, provider)
    if 400 <= status < 500:
        error.error_type = _OPENAI_ERROR_TYPES.get(status, "invalid_request_error")
        error.code = None
    return error


# --- Request ----------------------------------------------------------------------------------


# OpenAI chat fields this adapter translates (or, for logprobs and audio, refuses unless neutral).
TRANSLATED_FIELDS = frozenset(
    {
        "model",
        "messages",
        "temperature",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "n",
        "seed",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "response_format",
        "tools",
        "tool_choice",
        "stream",
        "logprobs",
        "top_logprobs",
        "modalities",
        "audio",
        "reasoning_effort",
    }
)
# OpenAI fields left out: bookkeeping, and `parallel_tool_calls` (Gemini decides how many calls to
# make; it has no switch). Every other OpenAI field is refused unless neutral.
IGNORED_FIELDS = oa.BOOKKEEPING_FIELDS | {"parallel_tool_calls"}


def generate_request(body: dict[str, Any], model: str = "") -> dict[str, Any]:
    """The Gemini `GenerateContentRequest` for an OpenAI chat completions request to upstream `model`.
    Fields that are not OpenAI's are forwarded: `top_k` as `generationConfig.topK`, a `generationConfig`
    object merged into the translated one (e.g. `{"thinkingConfig": {"includeThoughts": true}}`), any
    other as it is (`safetySettings`, `cachedContent` …)."""
    oa.refuse_unsupported(body, allow_n=True)
    extensions = oa.extension_fields(body, translated=TRANSLATED_FIELDS, ignored=IGNORED_FIELDS)
    system, contents = _contents(oa.messages_of(body))
    payload: dict[str, Any] = {"contents": contents}
    if system:
        payload["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    config = _generation_config(body)
    if thinking := thinking_config(model, oa.reasoning_effort_of(body)):
        config["thinkingConfig"] = thinking
    if config:
        payload["generationConfig"] = config
    declarations = []
    for function in oa.function_tools(body):
        declaration = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        if function.get("parameters"):
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    if declarations:
        payload["tools"] = [{"functionDeclarations": declarations}]
    mode, name = oa.tool_choice_of(body)
    if mode is not None and declarations:
        calling: dict[str, Any] = {"mode": {"none": "NONE", "auto": "AUTO"}.get(mode, "ANY")}
        if name:
            calling["allowedFunctionNames"] = [name]
        payload["toolConfig"] = {"functionCallingConfig": calling}
    elif mode not in (None, "none"):
        raise oa.invalid_request("`tool_choice` needs `tools`.", "tool_choice")
    _add_extensions(payload, extensions)
    return payload


def thinking_config(model: str, effort: str | None) -> dict[str, Any] | None:
    """`generationConfig.thinkingConfig` for `reasoning_effort` on upstream `model`, None without one.

    Gemini 3: the `thinkingLevel` of THINKING_LEVELS nearest the effort, never below it when the model
    has one at or above (xhigh and max are the highest). Otherwise a `thinkingBudget` from
    THINKING_BUDGETS within the model's range; "none" is 0 where the model can stop thinking, else its
    least budget or level.
    """
    if effort is None:
        return None
    name = model.removeprefix("models/")
    levels = next((levels for prefix, levels in THINKING_LEVELS if name.startswith(prefix)), None)
    if levels is not None:
        order = ("MINIMAL", "LOW", "MEDIUM", "HIGH")
        wanted = order.index(EFFORT_LEVELS[effort])
        return {"thinkingLevel": next((level for level in levels if order.index(level) >= wanted), levels[-1])}
    least, most, can_stop = next((r for prefix, r in THINKING_BUDGET_RANGES if name.startswith(prefix)), DEFAULT_BUDGET_RANGE)
    if effort == "none":
        return {"thinkingBudget": 0 if can_stop else least}
    return {"thinkingBudget": min(max(THINKING_BUDGETS[effort], least), most)}


def _add_extensions(payload: dict[str, Any], extensions: dict[str, Any]) -> None:
    config_extras = {}
    if "top_k" in extensions:
        top_k = extensions.pop("top_k")
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
                raise oa.invalid_request("`top_k` must be a positive integer.", "top_k")
            config_extras["topK"] = top_k
    if "generationConfig" in extensions:
        extra_config = extensions.pop("generationConfig")
        if not isinstance(extra_config, dict):
            raise oa.invalid_request("`generationConfig` must be an object.", "generationConfig")
        for name, value in extra_config.items():
            if name in config_extras:
                raise oa.invalid_request(f"`generationConfig.{name}` repeats `top_k`; send one of them.", f"generationConfig.{name}")
            config_extras[name] = value
    if config_extras:
        config = payload.setdefault("generationConfig", {})
        for name, value in config_extras.items():
            if name == "thinkingConfig" and name in config and isinstance(value, dict):
                # `includeThoughts` joins the thinking `reasoning_effort` set; a budget or level would repeat it.
                if repeated := sorted(set(value) & set(config[name])):
                    raise oa.invalid_request(
                        f"`generationConfig.thinkingConfig.{repeated[0]}` repeats `reasoning_effort`; send one of them.",
                        f"generationConfig.thinkingConfig.{repeated[0]}",
                    )
                config[name] = {**config[name], **value}
                continue
            if name in config:
                raise oa.invalid_request(
                    f"`generationConfig.{name}` is set from the OpenAI fields of this request; remove it.", f"generationConfig.{name}"
                )
            config[name] = value
    oa.add_extensions(payload, extensions)


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for openai_name, gemini_name in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if (value := oa.number(body, openai_name)) is not None:
            config[gemini_name] = value
    for openai_name, gemini_name in (("n", "candidateCount"), ("seed", "seed")):
        value = body.get(openai_name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise oa.invalid_request(f"`{openai_name}` must be an integer.", openai_name)
        if value is not None:
            config[gemini_name] = value
    if (max_tokens := oa.max_output_tokens(body)) is not None:
        config["maxOutputTokens"] = max_tokens
    if stop := oa.stop_sequences(body):
        config["stopSequences"] = stop
    kind = oa.response_format_type(body)
    if kind == "json_object":
        config["responseMimeType"] = "application/json"
    elif kind == "json_schema":
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = oa.json_schema_of(body)
    elif kind not in (None, "text"):
        raise oa.invalid_request('response_format.type must be "text", "json_object" or "json_schema".', "response_format.type")
    return config


def _contents(messages: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """(system texts, Gemini contents with alternating roles)."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    function_names: dict[str, str] = {}  # tool call id → function name, for functionResponse
    for i, message in enumerate(messages):
        role, param = message["role"], f"messages[{i}]"
        if role in ("system", "developer"):
            if text := oa.text_of(message.get("content"), f"{param}.content"):
                system.append(text)
            continue
        if role == "user":
            parts = [
                _user_part(part, f"{param}.content[{j}]")
                for j, part in enumerate(oa.content_parts(message.get("content"), f"{param}.content"))
                if part.get("type") != "text" or part.get("text")
            ]
            gemini_role = "user"
        elif role == "assistant":
            parts = _model_parts(message, param, function_names)
            gemini_role = "model"
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or call_id not in function_names:
                raise oa.invalid_request(
                    f"{param}.tool_call_id must be the id of a tool call in an earlier assistant message.", f"{param}.tool_call_id"
                )
            text = oa.text_of(message.get("content"), f"{param}.content")
            parts = [{"functionResponse": {"name": function_names[call_id], "response": _function_response(text)}}]
            gemini_role = "user"
        else:
            raise oa.invalid_request(f'{param}.role must be "system", "developer", "user", "assistant" or "tool".', f"{param}.role")
        oa.add_turn(contents, gemini_role, parts, key="parts")
    if not contents:
        raise oa.invalid_request("`messages` needs at least one user message.", "messages")
    return system, contents


def _function_response(text: str) -> dict[str, Any]:
    """Gemini wants an object: a JSON object result goes as it is, anything else under `result`."""
    try:
        value = orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        value = text
    return value if isinstance(value, dict) else {"result": value}


def _user_part(part: dict[str, Any], param: str) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return {"text": str(part["text"])}
    if kind == "image_url":
        url = oa.image_url_of(part, param)
        if url.startswith(("http://", "https://")):
            return {"fileData": {"mimeType": _image_type_of_url(url, f"{param}.image_url.url"), "fileUri": url}}
        media_type, data = oa.parse_data_url(url, f"{param}.image_url.url")
        return {"inlineData": {"mimeType": media_type, "data": data}}
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        if not isinstance(audio.get("data"), str) or audio.get("format") not in ("wav", "mp3"):
            raise oa.invalid_request(f'{param}.input_audio needs base64 `data` and a `format` of "wav" or "mp3".', f"{param}.input_audio")
        return {"inlineData": {"mimeType": f"audio/{audio['format']}", "data": audio["data"]}}
    if kind == "file":
        file_data = (part.get("file") or {}).get("file_data")
        if not isinstance(file_data, str):
            raise oa.invalid_request(
                f"{param}.file.file_data must be a base64 `data:` URL (file ids are not supported).", f"{param}.file.file_data"
            )
        media_type, data = oa.parse_data_url(file_data, f"{param}.file.file_data")
        return {"inlineData": {"mimeType": media_type, "data": data}}
    raise oa.invalid_request(
        f"{param}.type {kind!r} is not supported by this model; send text, image_url, input_audio or file.", f"{param}.type"
    )


def _image_type_of_url(url: str, param: str) -> str:
    """Gemini fetches an http(s) image itself but must be told its type: taken from the URL's extension."""
    media_type, _ = mimetypes.guess_type(urlsplit(url).path)
    if not media_type or not media_type.startswith("image/"):
        raise oa.invalid_request(
            f"{param}: this model needs an image URL ending in .png, .jpg, .webp or .gif, or the image inline as a base64 `data:` URL.",
            param,
        )
    return media_type


def _model_parts(message: dict[str, Any], param: str, function_names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if text := oa.text_of(message.get("content"), f"{param}.content"):
        parts.append({"text": text})
    for j, call in enumerate(message.get("tool_calls") or []):
        call_param = f"{param}.tool_calls[{j}]"
        name = (call.get("function") or {}).get("name") if isinstance(call, dict) else None
        if not isinstance(name, str) or not name:
            raise oa.invalid_request(f"{call_param}.function.name is required.", f"{call_param}.function.name")
        if isinstance(call.get("id"), str):
            function_names[call["id"]] = name
        part: dict[str, Any] = {"functionCall": {"name": name, "args": oa.tool_arguments(call, call_param)}}
        if j == 0:
            part["thoughtSignature"] = THOUGHT_SIGNATURE_FALLBACK
        parts.append(part)
    return parts


# --- Answer -----------------------------------------------------------------------------------


def usage_of(metadata: dict[str, Any]) -> dict[str, Any]:
    """`usageMetadata` → OpenAI usage: thinking tokens are completion tokens, as OpenAI counts reasoning."""
    prompt = int(metadata.get("promptTokenCount") or 0) + int(metadata.get("toolUsePromptTokenCount") or 0)
    thoughts = int(metadata.get("thoughtsTokenCount") or 0)
    completion = int(metadata.get("candidatesTokenCount") or 0) + thoughts
    return oa.usage(prompt, completion, cached_tokens=int(metadata.get("cachedContentTokenCount") or 0), reasoning_tokens=thoughts)


def _finish_reason(gemini_reason: str | None, called_tools: bool) -> str:
    reason = FINISH_REASONS.get(gemini_reason or "STOP", "stop")
    # Gemini says STOP after a function call; OpenAI callers look for "tool_calls".
    return "tool_calls" if called_tools and reason == "stop" else reason


def _visible_parts(candidate: dict[str, Any]) -> list[dict[str, Any]]:
    """A candidate's parts without thought summaries."""
    parts = (candidate.get("content") or {}).get("parts") or []
    return [p for p in parts if isinstance(p, dict) and not p.get("thought")]


def _thoughts(candidate: dict[str, Any]) -> str:
    """A candidate's thought summaries (sent when the request asks `includeThoughts`): its `reasoning_content`."""
    parts = (candidate.get("content") or {}).get("parts") or []
    return "".join(p["text"] for p in parts if isinstance(p, dict) and p.get("thought") and isinstance(p.get("text"), str))


def _tool_call_of(part: dict[str, Any]) -> dict[str, Any]:
    call = part["functionCall"]
    return oa.tool_call(call.get("id") or oa.new_tool_call_id(), call.get("name", ""), call.get("args") or {})


def completion_from_response(answer: dict[str, Any], *, model: str, provider: str) -> dict[str, Any]:
    """The OpenAI `chat.completion` for a Gemini `GenerateContentResponse`."""
    candidates = answer.get("candidates")
    if not isinstance(candidates, list):
        candidates = []
    choices = []
    for position, candidate in enumerate(candidates):
        if not isinstance(candidate, dict):
            raise oa.malformed_answer(provider)
        parts = _visible_parts(candidate)
        texts = [p["text"] for p in parts if isinstance(p.get("text"), str)]
        tool_calls = [_tool_call_of(p) for p in parts if isinstance(p.get("functionCall"), dict)]
        text = "".join(texts) if texts or not tool_calls else None
        finish = _finish_reason(candidate.get("finishReason"), bool(tool_calls))
        choices.append(oa.chat_choice(candidate.get("index", position), text, tool_calls, finish, reasoning=_thoughts(candidate)))
    if not choices:
        # The prompt itself was blocked (`promptFeedback.blockReason`): an empty, filtered answer.
        choices.append(oa.chat_choice(0, "", [], "content_filter"))
    return oa.chat_completion(model, choices, usage_of(answer.get("usageMetadata") or {}))


class StreamTranslator:
    """Turns Gemini stream events (each a whole `GenerateContentResponse`) into OpenAI chunks.

    Function calls arrive whole in one event, so each becomes one tool call delta with its full
    `arguments`; `usageMetadata` is cumulative, the last one wins.
    """

    def __init__(self, model: str, provider: str) -> None:
        self.provider = provider
        self.writer = oa.ChunkWriter(model)
        self.usage: dict[str, Any] = {}
        self.started: set[int] = set()  # candidate indexes that got their role chunk
        self.tool_calls: dict[int, int] = {}  # candidate index → tool calls so far
        self.finished: set[int] = set()

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        if isinstance(event.get("error"), dict):
            raise self._error(event["error"])
        if isinstance(event.get("usageMetadata"), dict):
            self.usage = event["usageMetadata"]
        chunks: list[dict[str, Any]] = []
        candidates = event.get("candidates") or []
        for position, candidate in enumerate(candidates):
            index = candidate.get("index", position) if isinstance(candidate, dict) else position
            chunks.extend(self._candidate(index, candidate if isinstance(candidate, dict) else {}))
        if not candidates and (event.get("promptFeedback") or {}).get("blockReason"):
            chunks.extend(self._start(0))
            chunks.append(self.writer.delta({}, finish_reason="content_filter"))
            self.finished.add(0)
        return chunks

    def _start(self, index: int) -> list[dict[str, Any]]:
        if index in self.started:
            return []
        self.started.add(index)
        return [self.writer.delta({"role": "assistant", "content": ""}, index=index)]

    def _candidate(self, index: int, candidate: dict[str, Any]) -> list[dict[str, Any]]:
        chunks = self._start(index)
        if thoughts := _thoughts(candidate):
            chunks.append(self.writer.delta({"reasoning_content": thoughts}, index=index))
        for part in _visible_parts(candidate):
            if isinstance(part.get("text"), str) and part["text"]:
                chunks.append(self.writer.delta({"content": part["text"]}, index=index))
            elif isinstance(part.get("functionCall"), dict):
                call = {"index": self.tool_calls.get(index, 0), **_tool_call_of(part)}
                self.tool_calls[index] = call["index"] + 1
                chunks.append(self.writer.delta({"tool_calls": [call]}, index=index))
        if candidate.get("finishReason"):
            finish = _finish_reason(candidate["finishReason"], index in self.tool_calls)
            chunks.append(self.writer.delta({}, index=index, finish_reason=finish))
            self.finished.add(index)
        return chunks

    def _error(self, error: dict[str, Any]) -> UpstreamError:
        status = int(error.get("code") or 502) if str(error.get("code") or "").isdigit() else 502
        return _http_error(status, orjson.dumps({"error": error}), self.provider)

    def check_complete(self) -> None:
        """Raise a retryable 502 when no candidate finished (a cut connection)."""
        if not self.finished:
            raise oa.stream_cut_short()

    def usage_chunk(self) -> dict[str, Any]:
        """The final chunk: `choices: []` and the last `usageMetadata` (Gemini sends it on every event)."""
        return self.writer.usage(usage_of(self.usage))
