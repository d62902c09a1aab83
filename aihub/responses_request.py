"""What `POST /v1/responses` takes: OpenAI's CreateResponse request, checked field by field (a 400
naming the first wrong field) before anything is counted or sent.

The types are checked here with the same small shape tree as chat (aihub/openai_request.py);
what each value means, and whether an upstream reached through chat can honour it, is decided by
the translation (aihub/responses_translate.py), which names the field it cannot translate.
"""

from typing import Any

from aihub.openai_request import (
    ANY_OBJECT,
    BOOLEAN,
    INTEGER,
    METADATA,
    MODEL,
    NUMBER,
    STRING,
    Array,
    Choice,
    Either,
    Object,
    Shape,
    Tagged,
)
from city.inputs import PassedOn

TEXT_PARTS = Array(ANY_OBJECT, noun="a list of content parts")


def _content(parts: dict[str, Object]) -> Either:
    part = Tagged("type", parts, noun='a content part object with a type, such as {"type": "input_text", "text": …}')
    return Either(STRING, Array(part, noun="a list of content parts"), noun="a string or a list of content parts")


INPUT_TEXT = Object({"text": STRING}, required=["text"])
INPUT_IMAGE = Object({"image_url": STRING, "file_id": STRING, "detail": STRING})
INPUT_FILE = Object({"file_data": STRING, "file_id": STRING, "file_url": STRING, "filename": STRING})
OUTPUT_TEXT = Object({"text": STRING, "annotations": Array(ANY_OBJECT, noun="a list of objects")}, required=["text"])
REFUSAL = Object({"refusal": STRING}, required=["refusal"])

MESSAGE_CONTENT = _content(
    {"input_text": INPUT_TEXT, "input_image": INPUT_IMAGE, "input_file": INPUT_FILE, "output_text": OUTPUT_TEXT, "refusal": REFUSAL}
)
TOOL_OUTPUT = _content({"input_text": INPUT_TEXT, "input_image": INPUT_IMAGE, "input_file": INPUT_FILE, "output_text": OUTPUT_TEXT})


class OpenTagged(Tagged):
    """Tagged, where a tag it does not know passes as any object: items of OpenAI's hosted tools
    (`web_search_call` …) go as they are to an upstream that speaks Responses, and the translation
    for every other upstream refuses them by name."""

    def check(self, value: Any, path: str) -> None:
        kind = value.get(self.tag, self.default) if isinstance(value, dict) else None
        if isinstance(kind, str) and kind not in self.variants:
            return
        super().check(value, path)


# Input items (OpenAI's InputItem): a message (`type` may be left out, as EasyInputMessage allows),
# the model's earlier items sent back (function calls, reasoning) and the caller's tool outputs.
INPUT_ITEM = OpenTagged(
    "type",
    {
        "message": Object(
            {"role": Choice("user", "assistant", "system", "developer"), "content": MESSAGE_CONTENT, "id": STRING, "status": STRING},
            required=["role", "content"],
        ),
        "function_call": Object(
            {"call_id": STRING, "name": STRING, "arguments": STRING, "id": STRING, "status": STRING, "namespace": STRING},
            required=["call_id", "name", "arguments"],
        ),
        "function_call_output": Object(
            {"call_id": STRING, "output": TOOL_OUTPUT, "id": STRING, "status": STRING}, required=["call_id", "output"]
        ),
        "reasoning": Object(
            {
                "id": STRING,
                "summary": Array(Object({"text": STRING}, required=["text"]), noun="a list of summary_text parts"),
                "content": Array(Object({"text": STRING}, required=["text"]), noun="a list of reasoning_text parts"),
                "encrypted_content": STRING,
                "status": STRING,
            },
        ),
        "custom_tool_call": Object(
            {"call_id": STRING, "name": STRING, "input": STRING, "id": STRING, "status": STRING, "namespace": STRING},
            required=["call_id", "name", "input"],
        ),
        "custom_tool_call_output": Object({"call_id": STRING, "output": TOOL_OUTPUT, "id": STRING}, required=["call_id", "output"]),
        "item_reference": Object({"id": STRING}, required=["id"]),
    },
    noun='an input item such as {"role": "user", "content": "Hello"}',
    default="message",
)

FORMAT = Tagged(
    "type",
    {
        "text": Object({}),
        "json_object": Object({}),
        "json_schema": Object(
            {"name": STRING, "description": STRING, "schema": ANY_OBJECT, "strict": BOOLEAN}, required=["name", "schema"]
        ),
    },
    noun='an object {"type": "text" | "json_object" | "json_schema"}',
)

FIELDS: dict[str, Shape] = {
    "model": MODEL,
    "input": Either(STRING, Array(INPUT_ITEM, noun="a list of input items"), noun="a string or a list of input items"),
    "instructions": STRING,
    "previous_response_id": STRING,
    "store": BOOLEAN,
    "stream": BOOLEAN,
    "stream_options": Object({"include_obfuscation": BOOLEAN}),
    "include": Array(STRING, noun="a list of strings"),
    # Each tool is checked by its type in the translation, which says which types City can offer.
    "tools": Array(ANY_OBJECT, noun="a list of tools"),
    "tool_choice": Either(STRING, ANY_OBJECT, noun='"none", "auto", "required" or {"type": "function", "name": …}'),
    "parallel_tool_calls": BOOLEAN,
    "max_tool_calls": INTEGER,
    "text": Object({"format": FORMAT, "verbosity": STRING}),
    "reasoning": Object({"effort": STRING, "summary": STRING, "generate_summary": STRING}),
    "max_output_tokens": INTEGER,
    "temperature": NUMBER,
    "top_p": NUMBER,
    "top_logprobs": INTEGER,
    "metadata": METADATA,
    # Codex CLI's per-turn bookkeeping (session, turn and window ids), read by OpenAI only.
    "client_metadata": METADATA,
    "user": STRING,
    "safety_identifier": STRING,
    "prompt_cache_key": STRING,
    "prompt_cache_retention": STRING,
    "service_tier": STRING,
    "truncation": Choice("auto", "disabled"),
    "background": BOOLEAN,
    "conversation": Either(STRING, ANY_OBJECT, noun="a string or an object"),
    "prompt": ANY_OBJECT,
    "context_management": Array(ANY_OBJECT, noun="a list of objects"),
}

REQUEST = Object(FIELDS, required=["model", "input"])

# The action's declared input (the action also serves GET and DELETE, which check their own query):
# it describes the create request for GET /v1/openapi.json; `create` checks it (see check_request).
RESPONSES_INPUT = PassedOn({"title": "CreateResponse", **REQUEST.schema()}["properties"], ("model", "input"))


def check_request(data: dict[str, Any]) -> dict[str, Any]:
    """The create request as sent, or ApiError 400 naming the first wrong field."""
    REQUEST.check(data, "")
    return data
