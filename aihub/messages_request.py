"""The shape of an Anthropic Messages request (`POST /v1/messages`), checked before anything else sees
it: a wrongly typed field is a 400 in Anthropic's shape naming it (`messages[1].content[0].source`).

The shapes follow Anthropic's API reference (MessageCreateParams): every field it documents, content
blocks by type, tools, tool_choice, thinking. Objects stay open, and so do the block and source types:
an Anthropic upstream gets the request as the client sent it, and Anthropic adds block types and
server tools often; what another provider cannot be given is refused by the translation
(aihub/messages_translate.py), naming the field. Built from the same `Shape`s as OpenAI's requests
(aihub/openai_request.py), so it is also the route's JSON Schema in the OpenAPI document.
"""

from typing import Any

from aihub.openai_request import (
    ANY_OBJECT,
    BOOLEAN,
    INTEGER,
    MODEL,
    NUMBER,
    STRING,
    Array,
    Either,
    JsonSchema,
    Object,
    RequestSpec,
    Shape,
    Tagged,
)
from city.errors import ApiError


def _invalid(path: str, message: str, code: str = "invalid_type") -> ApiError:
    return ApiError(400, message, param=path, code=code)


class OpenTagged(Tagged):
    """Tagged, but a tag value it does not know passes unchecked (a block type newer than City)."""

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _invalid(path, f"{path} must be {self.noun}.")
        kind = value.get(self.tag, self.default)
        if not isinstance(kind, str):
            where = f"{path}.{self.tag}"
            code = "missing_field" if kind is None else "invalid_type"
            raise _invalid(where, f"{where} is required: a string such as {next(iter(self.variants))!r}.", code)
        variant = self.variants.get(kind)
        if variant is not None:
            variant.check_fields(value, path)

    def schema(self) -> JsonSchema:
        return {"anyOf": [*super().schema()["oneOf"], {"type": "object", "properties": {self.tag: {"type": "string"}}}]}


CACHE_CONTROL = ANY_OBJECT  # {"type": "ephemeral", "ttl"?}: passed to Anthropic as it is, a hint elsewhere

SOURCE_NOUN = 'a source object {"type": "base64" | "url" | …}'
IMAGE_SOURCE = OpenTagged(
    "type",
    {
        "base64": Object({"media_type": STRING, "data": STRING}, required=["media_type", "data"]),
        "url": Object({"url": STRING}, required=["url"]),
        "file": Object({"file_id": STRING}, required=["file_id"]),
    },
    noun=SOURCE_NOUN,
)
TEXT_BLOCK = Object({"text": STRING, "cache_control": CACHE_CONTROL, "citations": Array(ANY_OBJECT)}, required=["text"])
IMAGE_BLOCK = Object({"source": IMAGE_SOURCE, "cache_control": CACHE_CONTROL}, required=["source"])
DOCUMENT_SOURCE = OpenTagged(
    "type",
    {
        "base64": Object({"media_type": STRING, "data": STRING}, required=["media_type", "data"]),
        "text": Object({"media_type": STRING, "data": STRING}, required=["data"]),
        "url": Object({"url": STRING}, required=["url"]),
        "file": Object({"file_id": STRING}, required=["file_id"]),
        "content": Object({"content": Either(STRING, Array(ANY_OBJECT), noun="a string or a list of blocks")}, required=["content"]),
    },
    noun=SOURCE_NOUN,
)
DOCUMENT_BLOCK = Object(
    {"source": DOCUMENT_SOURCE, "title": STRING, "context": STRING, "citations": ANY_OBJECT, "cache_control": CACHE_CONTROL},
    required=["source"],
)
BLOCK_NOUN = 'a content block object {"type": "text" | "image" | …}'
TOOL_RESULT_CONTENT = Either(
    STRING,
    Array(OpenTagged("type", {"text": TEXT_BLOCK, "image": IMAGE_BLOCK, "document": DOCUMENT_BLOCK}, noun=BLOCK_NOUN)),
    noun="a string or a list of content blocks",
)
CONTENT_BLOCK = OpenTagged(
    "type",
    {
        "text": TEXT_BLOCK,
        "image": IMAGE_BLOCK,
        "document": DOCUMENT_BLOCK,
        "tool_use": Object(
            {"id": STRING, "name": STRING, "input": ANY_OBJECT, "cache_control": CACHE_CONTROL}, required=["id", "name", "input"]
        ),
        "tool_result": Object(
            {"tool_use_id": STRING, "content": TOOL_RESULT_CONTENT, "is_error": BOOLEAN, "cache_control": CACHE_CONTROL},
            required=["tool_use_id"],
        ),
        "thinking": Object({"thinking": STRING, "signature": STRING}, required=["thinking", "signature"]),
        "redacted_thinking": Object({"data": STRING}, required=["data"]),
    },
    noun=BLOCK_NOUN,
)
CONTENT = Either(STRING, Array(CONTENT_BLOCK, noun="a list of content blocks"), noun="a string or a list of content blocks")
SYSTEM = Either(
    STRING,
    Array(Tagged("type", {"text": TEXT_BLOCK}, noun='a text block {"type": "text", "text"}'), noun="a list of text blocks"),
    noun="a string or a list of text blocks",
)
MESSAGE = Tagged(
    "role",
    {
        "user": Object({"content": CONTENT}, required=["content"]),
        "assistant": Object({"content": CONTENT}, required=["content"]),
        "system": Object({"content": SYSTEM}, required=["content"]),  # a system message within the conversation
    },
    noun='a message object {"role": "user" | "assistant" | "system", "content"}',
)
TOOL = Object(
    {"name": STRING, "type": STRING, "description": STRING, "input_schema": ANY_OBJECT, "strict": BOOLEAN, "cache_control": CACHE_CONTROL},
    noun='a tool object {"name", "input_schema", "description"?}',
)
PARALLEL: dict[str, Shape] = {"disable_parallel_tool_use": BOOLEAN}
TOOL_CHOICE = OpenTagged(
    "type",
    {
        "auto": Object(PARALLEL),
        "any": Object(PARALLEL),
        "tool": Object({"name": STRING, **PARALLEL}, required=["name"]),
        "none": Object({}),
    },
    noun='a tool choice object {"type": "auto" | "any" | "tool" | "none"}',
)
THINKING = OpenTagged(
    "type",
    {
        "enabled": Object({"budget_tokens": INTEGER, "display": STRING}, required=["budget_tokens"]),
        "disabled": Object({}),
        "adaptive": Object({"display": STRING}),
    },
    noun='a thinking object {"type": "enabled" | "adaptive" | "disabled"}',
)

MESSAGE_FIELDS: dict[str, Shape] = {
    "model": MODEL,
    "messages": Array(MESSAGE, noun='a list of messages such as [{"role": "user", "content": "Hello"}]', min_items=1),
    "max_tokens": INTEGER,
    "system": SYSTEM,
    "stop_sequences": Array(STRING, noun="a list of strings"),
    "stream": BOOLEAN,
    "temperature": NUMBER,
    "top_p": NUMBER,
    "top_k": INTEGER,
    "metadata": Object({"user_id": STRING}),
    "tools": Array(TOOL, noun="a list of tools"),
    "tool_choice": TOOL_CHOICE,
    "thinking": THINKING,
    "output_config": Object({"effort": STRING, "format": ANY_OBJECT}),
    "service_tier": STRING,
    "context_management": ANY_OBJECT,
    "container": Either(STRING, ANY_OBJECT, noun="a string or an object"),
    "mcp_servers": Array(ANY_OBJECT, noun="a list of objects"),
    "cache_control": CACHE_CONTROL,
    "inference_geo": STRING,
    "speed": STRING,
    "diagnostics": ANY_OBJECT,
}
# The fields of Anthropic's Messages request (MessageCreateParams), for telling them from others.
ANTHROPIC_FIELDS = frozenset(MESSAGE_FIELDS)

MESSAGES = RequestSpec(MESSAGE_FIELDS, required=["model", "messages", "max_tokens"], title="CreateMessageParams")
COUNT_TOKENS = RequestSpec(
    {name: shape for name, shape in MESSAGE_FIELDS.items() if name not in ("max_tokens", "stream", "stop_sequences", "temperature")},
    required=["model", "messages"],
    title="MessageCountTokensParams",
)
