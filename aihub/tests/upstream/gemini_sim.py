"""A loopback Google Gemini API (v1beta): `models/{model}:generateContent`, `:streamGenerateContent`
(`?alt=sse`, or a JSON array without it), `:embedContent` and `:batchEmbedContents`, in the wire
format of Google's REST reference (camelCase fields, `{"error": {"code", "message", "status"}}`).

It checks a request as the real API does where an adapter could get it wrong: the key in
`x-goog-api-key` (or `?key=`), no unknown fields (Google's "Unknown name" 400), roles `user`/`model`,
one data field per part, a function response for every function call of the turn before, and the
documented ranges, `thinkingConfig` included (a level only for Gemini 3 models, and one each model
takes; a budget within a 2.5 model's range; never both). With `includeThoughts`, the answer opens with
a thought summary part (`script.reasoning`). It answers `sim.script` (see sim.Script), or, after `sim.play("name")`, the
recorded payload `gemini/name.json` (a list is streamed one `data:` event per element).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aihub.tests.upstream.gemini_images_sim import GeminiImagesRoutes
from aihub.tests.upstream.gemini_video_sim import GeminiVideoRoutes
from aihub.tests.upstream.openai_sim import vector_for
from aihub.tests.upstream.sim import Received, Reply, SimServer, sse

RECORDINGS = Path(__file__).parent / "gemini"
STATUS_WORDS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
FINISH_REASONS = {"stop": "STOP", "length": "MAX_TOKENS"}
ROUTE = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")

REQUEST_FIELDS = {"contents", "systemInstruction", "generationConfig", "tools", "toolConfig", "safetySettings", "cachedContent"}
GENERATION_FIELDS = {
    "temperature",
    "topP",
    "topK",
    "maxOutputTokens",
    "stopSequences",
    "candidateCount",
    "presencePenalty",
    "frequencyPenalty",
    "seed",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseLogprobs",
    "logprobs",
    "responseModalities",
    "thinkingConfig",
    "mediaResolution",
    "speechConfig",
}
PART_DATA_FIELDS = {"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult"}
PART_FIELDS = PART_DATA_FIELDS | {"thought", "thoughtSignature", "videoMetadata"}
DECLARATION_FIELDS = {"name", "description", "parameters", "parametersJsonSchema", "response", "responseJsonSchema", "behavior"}
THOUGHT_SIGNATURE = "CiQBcsjafM5Q9mD1L4f6y3wdlwXw0Ra8tH2Cqg6oXbPjsgc+TdYKYAFyyNp8"
# Google's thinking guide: the levels each Gemini 3 model takes, and each 2.5 model's budget range
# (least, most, whether 0 turns thinking off); -1 asks for dynamic thinking on any of them.
THINKING_LEVELS = {
    "gemini-3.1-pro-preview": {"LOW", "MEDIUM", "HIGH"},
    "gemini-3-pro-preview": {"LOW", "HIGH"},
    "gemini-3-flash-preview": {"MINIMAL", "LOW", "MEDIUM", "HIGH"},
}
THINKING_BUDGETS = {
    "gemini-2.5-pro": (128, 32768, False),
    "gemini-2.5-flash": (1, 24576, True),
    "gemini-2.5-flash-lite": (512, 24576, True),
}


class InvalidArgument(Exception):
    pass


class GeminiSim(GeminiImagesRoutes, GeminiVideoRoutes, SimServer):
    recordings = RECORDINGS

    def error_body(self, status: int, message: str) -> Any:
        return {"error": {"code": status, "message": message, "status": STATUS_WORDS.get(status, "UNKNOWN")}}

    def _error(self, status: int, message: str) -> Reply:
        return Reply.json(self.error_body(status, message), status=status)

    def handle(self, request: Received) -> Reply:
        for media_route in (self.gemini_images_route, self.gemini_video_route):
            media = media_route(request)
            if media is not None:
                return media
        route = ROUTE.match(request.path)
        if request.method != "POST" or not route:
            return self._error(404, f"The requested URL {request.path} was not found on this server.")
        if not (request.headers.get("x-goog-api-key") or request.query.get("key")):
            return self._error(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API key or other form of API consumer identity to call this API.",
            )
        body = request.json
        if not isinstance(body, dict):
            return self._error(400, "Invalid JSON payload received.")
        model, method = route["model"], route["method"]
        try:
            if method in ("generateContent", "streamGenerateContent"):
                check_generate_request(body, model)
            elif method == "embedContent":
                check_embed_request(body, model)
            elif method == "batchEmbedContents":
                if not isinstance(body.get("requests"), list) or not body["requests"]:
                    raise InvalidArgument("* BatchEmbedContentsRequest.requests: requests is not specified")
                if len(body["requests"]) > 100:
                    raise InvalidArgument("* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch.")
                for request_ in body["requests"]:
                    check_embed_request(request_, model, batched=True)
            else:
                return self._error(404, f"Method {method} not found.")
        except InvalidArgument as problem:
            return self._error(400, str(problem))
        if (played := self.next_played()) is not None:
            payload, status = played
            return Reply.sse(sse(event) for event in payload) if isinstance(payload, list) else Reply.json(payload, status=status)
        if method == "generateContent":
            return Reply.json(self._answer(body, model))
        if method == "streamGenerateContent":
            events = list(self._events(body, model))
            if request.query.get("alt") == "sse":
                return Reply.sse(sse(event) for event in events)
            return Reply.json(events)  # without alt=sse the API streams one JSON array
        if method == "embedContent":
            return Reply.json({"embedding": {"values": self._vector(body)}})
        return Reply.json({"embeddings": [{"values": self._vector(r)} for r in body["requests"]]})

    # --- answers from the script ----------------------------------------------------------------

    def _vector(self, request: dict[str, Any]) -> list[float]:
        text = "".join(p.get("text", "") for p in request["content"]["parts"])
        return vector_for(text, int(request.get("outputDimensionality") or self.script.embedding_dimensions))

    def _calls_tool(self, body: dict[str, Any]) -> bool:
        mode = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode")
        return self.script.tool_call is not None and bool(body.get("tools")) and mode != "NONE"

    def _usage(self, final: bool = True) -> dict[str, Any] | None:
        if self.script.usage is None:
            return None
        prompt, completion = self.script.usage
        if not final:
            return {"promptTokenCount": prompt, "totalTokenCount": prompt}
        usage: dict[str, Any] = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": completion - self.script.reasoning_tokens,  # Gemini counts thoughts apart
            "totalTokenCount": prompt + completion,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        }
        if self.script.cached_tokens:
            usage["cachedContentTokenCount"] = self.script.cached_tokens
        if self.script.reasoning_tokens:
            usage["thoughtsTokenCount"] = self.script.reasoning_tokens
        return usage

    def _function_call_part(self) -> dict[str, Any]:
        name, arguments = self.script.tool_call or ("", {})
        return {"functionCall": {"name": name, "args": arguments}, "thoughtSignature": THOUGHT_SIGNATURE}

    def _response(self, model: str, candidates: list[dict[str, Any]], usage: dict[str, Any] | None) -> dict[str, Any]:
        response: dict[str, Any] = {"candidates": candidates}
        if usage is not None:
            response["usageMetadata"] = usage
        response.update({"modelVersion": model, "responseId": "SimSimSimSimSimSimSimSim"})
        return response

    def _thought_parts(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        thinking = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
        return [{"text": self.script.reasoning, "thought": True}] if thinking.get("includeThoughts") else []

    def _answer(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        count = int((body.get("generationConfig") or {}).get("candidateCount") or 1)
        if self._calls_tool(body):
            parts, finish = [self._function_call_part()], "STOP"
        else:
            parts, finish = [{"text": self.script.text}], FINISH_REASONS[self.script.finish]
        parts = [*self._thought_parts(body), *parts]
        candidates = [{"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": i} for i in range(count)]
        return self._response(model, candidates, self._usage())

    def _events(self, body: dict[str, Any], model: str) -> Iterator[dict[str, Any]]:
        if self._calls_tool(body):
            yield self._response(
                model,
                [{"content": {"parts": [self._function_call_part()], "role": "model"}, "finishReason": "STOP", "index": 0}],
                self._usage(),
            )
            return
        if thoughts := self._thought_parts(body):
            yield self._response(model, [{"content": {"parts": thoughts, "role": "model"}, "index": 0}], self._usage(final=False))
        pieces = self.script.pieces()
        for n, piece in enumerate(pieces):
            last = n == len(pieces) - 1
            candidate: dict[str, Any] = {"content": {"parts": [{"text": piece}], "role": "model"}, "index": 0}
            if last:
                candidate["finishReason"] = FINISH_REASONS[self.script.finish]
            yield self._response(model, [candidate], self._usage(final=last))


# --- what the real API refuses ------------------------------------------------------------------


def _unknown(fields: set[str], allowed: set[str], where: str) -> None:
    if unknown := sorted(fields - allowed):
        raise InvalidArgument(f"Invalid JSON payload received. Unknown name \"{unknown[0]}\" at '{where}': Cannot find field.")


def check_generate_request(body: dict[str, Any], model: str = "") -> None:
    _unknown(set(body), REQUEST_FIELDS, "")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise InvalidArgument("* GenerateContentRequest.contents: contents is not specified")
    system = body.get("systemInstruction")
    if system is not None:
        parts = system.get("parts") if isinstance(system, dict) else None
        if not isinstance(parts, list) or not all(isinstance(p, dict) and set(p) == {"text"} for p in parts):
            raise InvalidArgument("* GenerateContentRequest.system_instruction: only text parts are supported")
    pending_calls = 0
    for i, content in enumerate(contents):
        role = content.get("role") if isinstance(content, dict) else None
        if role not in ("user", "model"):
            raise InvalidArgument("Please use a valid role: user, model.")
        _unknown(set(content), {"role", "parts"}, f"contents[{i}]")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise InvalidArgument(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
        for j, part in enumerate(parts):
            _check_part(part, role, f"contents[{i}].parts[{j}]")
        responses = sum(1 for p in parts if "functionResponse" in p)
        if pending_calls and responses != pending_calls:
            raise InvalidArgument(
                "Please ensure that the number of function response parts is equal to the number of "
                "function call parts of the function call turn."
            )
        if responses and not pending_calls:
            raise InvalidArgument("Please ensure that function response turn comes immediately after a function call turn.")
        pending_calls = sum(1 for p in parts if "functionCall" in p)
    _check_generation_config(body.get("generationConfig"))
    _check_thinking((body.get("generationConfig") or {}).get("thinkingConfig"), model)
    _check_tools(body)


def _check_part(part: Any, role: str, where: str) -> None:
    if not isinstance(part, dict):
        raise InvalidArgument(f"* GenerateContentRequest.{where}: must be an object")
    _unknown(set(part), PART_FIELDS, where)
    data = set(part) & PART_DATA_FIELDS
    if len(data) != 1:
        raise InvalidArgument(f"* GenerateContentRequest.{where}.data: required oneof field 'data' must have one initialized field")
    kind = data.pop()
    if kind == "inlineData":
        blob = part["inlineData"]
        if not blob.get("mimeType") or not isinstance(blob.get("data"), str):
            raise InvalidArgument(f"* GenerateContentRequest.{where}.inline_data: mimeType and data are required")
    if kind == "fileData":
        file = part["fileData"]
        if not file.get("mimeType") or not file.get("fileUri"):
            raise InvalidArgument(f"* GenerateContentRequest.{where}.file_data: mimeType and fileUri are required")
    if kind == "functionCall":
        if role != "model" or not part["functionCall"].get("name") or not isinstance(part["functionCall"].get("args", {}), dict):
            raise InvalidArgument(f"* GenerateContentRequest.{where}.function_call: a named call with object args, in a model turn")
    if kind == "functionResponse":
        response = part["functionResponse"]
        if role != "user" or not response.get("name") or not isinstance(response.get("response"), dict):
            raise InvalidArgument(f"* GenerateContentRequest.{where}.function_response: a name and an object response, in a user turn")


def _check_generation_config(config: Any) -> None:
    if config is None:
        return
    _unknown(set(config), GENERATION_FIELDS, "generation_config")
    if not 0 <= config.get("temperature", 1) <= 2:
        raise InvalidArgument("* GenerateContentRequest.generation_config.temperature: must be between 0 and 2")
    if not 1 <= config.get("candidateCount", 1) <= 8:
        raise InvalidArgument("* GenerateContentRequest.generation_config.candidate_count: must be between 1 and 8")
    if len(config.get("stopSequences", [])) > 5:
        raise InvalidArgument("* GenerateContentRequest.generation_config.stop_sequences: at most 5 stop sequences")
    if "responseJsonSchema" in config and config.get("responseMimeType") != "application/json":
        raise InvalidArgument("* GenerateContentRequest.generation_config.response_mime_type: must be application/json with a schema")


def _check_thinking(thinking: Any, model: str) -> None:
    if thinking is None:
        return
    _unknown(set(thinking), {"includeThoughts", "thinkingBudget", "thinkingLevel"}, "generation_config.thinking_config")
    if "thinkingLevel" in thinking and "thinkingBudget" in thinking:
        raise InvalidArgument("You can only set only one of thinking budget and thinking level.")
    if "thinkingLevel" in thinking:
        level = str(thinking["thinkingLevel"]).upper()
        if level not in {"MINIMAL", "LOW", "MEDIUM", "HIGH"}:
            raise InvalidArgument(f"Invalid value at 'generation_config.thinking_config.thinking_level', \"{thinking['thinkingLevel']}\"")
        if model not in THINKING_LEVELS:
            raise InvalidArgument("Thinking level is not supported for this model.")
        if level not in THINKING_LEVELS[model]:
            raise InvalidArgument(f"Thinking level {level} is not supported for this model.")
    if "thinkingBudget" in thinking and model in THINKING_BUDGETS:
        budget = thinking["thinkingBudget"]
        least, most, can_stop = THINKING_BUDGETS[model]
        if budget == 0 and not can_stop:
            raise InvalidArgument("Budget 0 is invalid. This model only works in thinking mode.")
        if budget not in (-1, 0) and not least <= budget <= most:
            raise InvalidArgument(f"The thinking budget {budget} is invalid. Please choose a value between {least} and {most}.")


def _check_tools(body: dict[str, Any]) -> None:
    names: set[str] = set()
    for i, tool in enumerate(body.get("tools") or []):
        for j, declaration in enumerate(tool.get("functionDeclarations") or []):
            _unknown(set(declaration), DECLARATION_FIELDS, f"tools[{i}].function_declarations[{j}]")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}", declaration.get("name") or ""):
                raise InvalidArgument(f"* GenerateContentRequest.tools[{i}].function_declarations[{j}].name: Invalid function name.")
            if "parameters" in declaration and "parametersJsonSchema" in declaration:
                raise InvalidArgument(
                    f"* GenerateContentRequest.tools[{i}].function_declarations[{j}]: parameters and "
                    "parameters_json_schema are mutually exclusive"
                )
            names.add(declaration["name"])
    config = (body.get("toolConfig") or {}).get("functionCallingConfig")
    if config is not None:
        if config.get("mode") not in ("AUTO", "ANY", "NONE", "VALIDATED"):
            raise InvalidArgument("* GenerateContentRequest.tool_config.function_calling_config.mode: invalid value")
        if set(config.get("allowedFunctionNames") or []) - names:
            raise InvalidArgument(
                "* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: must name declared functions"
            )


def check_embed_request(body: Any, model: str, batched: bool = False) -> None:
    if not isinstance(body, dict):
        raise InvalidArgument("Invalid JSON payload received.")
    _unknown(set(body), {"model", "content", "taskType", "title", "outputDimensionality"}, "")
    if batched and body.get("model") != f"models/{model}":
        raise InvalidArgument(f"Model {body.get('model')!r} in the request does not match the model models/{model} of the URL.")
    parts = (body.get("content") or {}).get("parts")
    if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in parts):
        raise InvalidArgument("* EmbedContentRequest.content: content is not specified")
