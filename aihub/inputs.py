"""The declared inputs of the ai service's actions (city/inputs.py's InputSpec): what each route checks
before its handler runs, and the JSON Schema that GET /v1/openapi.json shows for it.

They check what the handlers checked by hand: `model`, then the route's own fields (messages, prompt,
input, stream). The OpenAI routes pass every other field through to the upstream, so their schemas
allow more properties; City's text API refuses any field it does not know (aihub/sdk_api.py).
"""

from typing import Any

from aihub.adapters import openai_shapes as oa
from aihub.openai_api import check_embedding_input, require_messages, stream_flag
from aihub.sdk_api import CHAT_PARAMETERS, OUTSIDE_THE_MESSAGE, chat_request
from aihub.upstreams import check_model_field
from city.errors import ApiError

MODEL = {"type": "string", "minLength": 1, "description": "A model id from GET /v1/ai/models"}
STUDIO_ID = {"type": "string", "description": "The studio, named by the admin credential; a user token's own if given"}
MESSAGE = {
    "type": "object",
    "properties": {"role": {"type": "string"}, "content": {"anyOf": [{"type": "string"}, {"type": "array"}, {"type": "null"}]}},
    "required": ["role"],
}
STREAM = {"type": "boolean", "description": "Answer as server-sent events, `data: [DONE]` last"}
STREAM_OPTIONS = {"type": "object", "properties": {"include_usage": {"type": "boolean"}}}
TOKEN_IDS = {"type": "array", "items": {"type": "integer"}, "minItems": 1}


def openai_object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """An OpenAI request: the fields City reads, and any others, which go to the upstream as sent."""
    return {"type": "object", "properties": {"studio_id": STUDIO_ID, **properties}, "required": required, "additionalProperties": True}


class ChatCompletionsInput:
    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        check_model_field(data.get("model"))
        require_messages(data)
        stream_flag(data)
        return data

    def json_schema(self) -> dict[str, Any]:
        messages = {"type": "array", "items": MESSAGE, "minItems": 1}
        properties = {"model": MODEL, "messages": messages, "stream": STREAM, "stream_options": STREAM_OPTIONS}
        return openai_object(properties, ["model", "messages"])


class CompletionsInput:
    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        check_model_field(data.get("model"))
        if data.get("prompt") is None:
            raise ApiError(400, "prompt is required: the text to complete.", param="prompt", code="missing_field")
        stream_flag(data)
        return data

    def json_schema(self) -> dict[str, Any]:
        prompt = {
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}, TOKEN_IDS, {"type": "array", "items": TOKEN_IDS}],
            "description": "One string for chat-served models; arrays and token ids need a model with native completions",
        }
        properties = {"model": MODEL, "prompt": prompt, "echo": {"type": "boolean"}, "stream": STREAM, "stream_options": STREAM_OPTIONS}
        return openai_object(properties, ["model", "prompt"])


class EmbeddingsInput:
    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        check_model_field(data.get("model"))
        check_embedding_input(data)
        return data

    def json_schema(self) -> dict[str, Any]:
        text = {"type": "string", "minLength": 1}
        embedding_input = {
            "anyOf": [
                text,
                {"type": "array", "items": text, "minItems": 1},
                TOKEN_IDS,
                {"type": "array", "items": TOKEN_IDS, "minItems": 1},
            ]
        }
        properties = {"model": MODEL, "input": embedding_input, "encoding_format": {"enum": ["float", "base64"], "default": "float"}}
        return openai_object(properties, ["model", "input"])


class TextInput:
    """POST /v1/ai/text and /v1/ai/stream: City's text request (aihub/sdk_api.py's module docstring)."""

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        check_model_field(data.get("model"))
        chat_request(data)  # raises naming the first bad field; the handler builds the upstream request from the same data
        return data

    def json_schema(self) -> dict[str, Any]:
        parameters: dict[str, Any] = {name: {} for name in sorted(CHAT_PARAMETERS | set(OUTSIDE_THE_MESSAGE))}
        parameters.update(
            {
                "max_tokens": {"type": "integer", "minimum": 1},
                "max_completion_tokens": {"type": "integer", "minimum": 1},
                "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            }
        )
        for name in OUTSIDE_THE_MESSAGE:
            neutral = oa.NEUTRAL_VALUES.get(name)
            parameters[name] = {"description": f"Accepted only at its neutral value ({neutral}); the answer is one message"}
        part = {
            "oneOf": [
                {"type": "object", "properties": {"type": {"const": "text"}, "text": {"type": "string"}}, "required": ["type", "text"]},
                {"type": "object", "properties": {"type": {"const": "image"}, "url": {"type": "string"}}, "required": ["type", "url"]},
            ]
        }
        message = {
            "type": "object",
            "properties": {
                "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
                "content": {"anyOf": [{"type": "string"}, {"type": "array"}]},
                "parts": {"type": "array", "items": part},
            },
            "required": ["role"],
        }
        properties = {
            "studio_id": STUDIO_ID,
            "model": MODEL,
            "prompt": {"type": "string", "minLength": 1, "description": "The user's words; or send messages"},
            "messages": {"type": "array", "items": message, "minItems": 1},
            "system": {"type": "string"},
            **parameters,
        }
        return {
            "type": "object",
            "properties": properties,
            "required": ["model"],
            "oneOf": [{"required": ["prompt"]}, {"required": ["messages"]}],
            "additionalProperties": False,
        }


CHAT_COMPLETIONS = ChatCompletionsInput()
COMPLETIONS = CompletionsInput()
EMBEDDINGS = EmbeddingsInput()
TEXT = TextInput()
