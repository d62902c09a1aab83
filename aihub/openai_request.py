"""The shapes of OpenAI's requests (chat completions, legacy completions, embeddings), checked once
before any adapter sees them: a wrongly typed field is a 400 naming it (`messages[1].tool_calls[0].function`),
never an adapter's traceback.

The shapes follow OpenAI's API reference (CreateChatCompletionRequest, CreateCompletionRequest,
CreateEmbeddingRequest): the type of every field OpenAI documents, messages by role, content parts
by type, tools, tool calls, tool_choice, response_format. Objects stay open: a field OpenAI does not
define (a provider extension such as `top_k`, or a message's `reasoning_content`) passes as it is, as
the routes forward it. Values within their type (ranges, which enum values a model takes) are left to
the adapters and the upstreams, which know what each model accepts.

Each request's shape is a small tree of `Shape`s, walked by hand (no generic validator: this runs on
every AI call) and also written out as JSON Schema for the OpenAPI document.
"""

from collections.abc import Iterable
from typing import Any

from city.errors import ApiError

JsonSchema = dict[str, Any]


def _invalid(path: str, message: str, code: str = "invalid_type") -> ApiError:
    return ApiError(400, message, param=path, code=code)


class Shape:
    """One JSON value's expected shape: `check` raises a 400 naming `path`; `schema` is its JSON Schema."""

    noun = "a value"
    # A scalar's accepted Python types: objects test them inline instead of calling `check` (hot path).
    scalar_types: tuple[type, ...] | None = None

    def check(self, value: Any, path: str) -> None:
        raise NotImplementedError

    def schema(self) -> JsonSchema:
        raise NotImplementedError

    def fits(self, value: Any) -> bool:
        """Whether the value's JSON type is this shape's (what a union picks its branch by)."""
        raise NotImplementedError


class Scalar(Shape):
    """A value of one JSON type, told by its exact Python type as a JSON parser makes it (so that
    true is not an integer)."""

    def __init__(self, noun: str, json_type: str, types: tuple[type, ...]) -> None:
        self.noun, self.json_type, self.types = noun, json_type, types
        self.scalar_types = types

    def check(self, value: Any, path: str) -> None:
        if type(value) not in self.types:
            raise _invalid(path, f"{path} must be {self.noun}.")

    def fits(self, value: Any) -> bool:
        return type(value) in self.types

    def schema(self) -> JsonSchema:
        return {"type": self.json_type}


STRING = Scalar("a string", "string", (str,))
INTEGER = Scalar("an integer", "integer", (int,))
NUMBER = Scalar("a number", "number", (int, float))
BOOLEAN = Scalar("true or false", "boolean", (bool,))
ANY_OBJECT = Scalar("an object", "object", (dict,))
MODEL = Scalar("a model id from GET /v1/ai/models", "string", (str,))


class Choice(Shape):
    """A string from a fixed set."""

    noun = "a string"

    def __init__(self, *values: str) -> None:
        self.values = values

    def check(self, value: Any, path: str) -> None:
        if value not in self.values:
            code = "invalid_value" if isinstance(value, str) else "invalid_type"
            raise _invalid(path, f"{path} must be one of {', '.join(repr(v) for v in self.values)}.", code)

    def fits(self, value: Any) -> bool:
        return isinstance(value, str)

    def schema(self) -> JsonSchema:
        return {"type": "string", "enum": list(self.values)}


class Array(Shape):
    def __init__(self, items: Shape, *, noun: str = "", min_items: int = 0) -> None:
        self.items, self.min_items = items, min_items
        self.noun = noun or f"a list of {items.noun.removeprefix('a ').removeprefix('an ')}s"
        if min_items:
            self.noun = "a non-empty " + self.noun.removeprefix("a ")

    def check(self, value: Any, path: str) -> None:
        if type(value) is not list or len(value) < self.min_items:
            raise _invalid(path, f"{path} must be {self.noun}.")
        items, types = self.items, self.items.scalar_types
        for index, item in enumerate(value):
            if types is None or type(item) not in types:
                items.check(item, f"{path}[{index}]")

    def fits(self, value: Any) -> bool:
        return isinstance(value, list)

    def schema(self) -> JsonSchema:
        schema: JsonSchema = {"type": "array", "items": self.items.schema()}
        if self.min_items:
            schema["minItems"] = self.min_items
        return schema


class Map(Shape):
    """An object whose every value has one shape (logit_bias, metadata)."""

    def __init__(self, values: Shape, noun: str) -> None:
        self.values, self.noun = values, noun

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _invalid(path, f"{path} must be {self.noun}.")
        for key, item in value.items():
            self.values.check(item, f"{path}.{key}")

    def fits(self, value: Any) -> bool:
        return isinstance(value, dict)

    def schema(self) -> JsonSchema:
        return {"type": "object", "additionalProperties": self.values.schema()}


class Object(Shape):
    """An object with known fields (each optional unless `required`; null counts as absent for an
    optional one); other fields pass, as City forwards them."""

    def __init__(self, fields: dict[str, Shape], *, required: Iterable[str] = (), noun: str = "an object") -> None:
        self.fields, self.required, self.noun = fields, tuple(required), noun

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _invalid(path or "The body", f"{path or 'The body'} must be {self.noun}.")
        self.check_fields(value, path)

    def check_fields(self, value: dict[str, Any], path: str) -> None:
        prefix = f"{path}." if path else ""
        for name in self.required:
            if value.get(name) is None:
                raise _invalid(f"{prefix}{name}", f"{prefix}{name} is required: {self.fields[name].noun}.", "missing_field")
        fields = self.fields
        for name, item in value.items():
            shape = fields.get(name)
            if shape is None or item is None:
                continue
            types = shape.scalar_types
            if types is None or type(item) not in types:
                shape.check(item, prefix + name)

    def fits(self, value: Any) -> bool:
        return isinstance(value, dict)

    def schema(self) -> JsonSchema:
        properties = {}
        for name, shape in self.fields.items():
            field_schema = shape.schema()
            if name not in self.required:
                field_schema = {"anyOf": [field_schema, {"type": "null"}]}
            properties[name] = field_schema
        # Open: fields City does not know go to the upstream as sent (said outright for client generators).
        schema: JsonSchema = {"type": "object", "properties": properties, "additionalProperties": True}
        if self.required:
            schema["required"] = list(self.required)
        return schema


class Tagged(Shape):
    """Objects told apart by one field (`role`, `type`): each tag value has its own Object."""

    def __init__(self, tag: str, variants: dict[str, Object], *, noun: str, default: str | None = None) -> None:
        self.tag, self.variants, self.noun, self.default = tag, variants, noun, default

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _invalid(path, f"{path} must be {self.noun}.")
        kind = value.get(self.tag, self.default)
        variant = self.variants.get(kind) if isinstance(kind, str) else None
        if variant is None:
            where = f"{path}.{self.tag}"
            known = ", ".join(repr(v) for v in self.variants)
            if kind is None:
                raise _invalid(where, f"{where} is required: one of {known}.", "missing_field")
            raise _invalid(where, f"{where} must be one of {known}.", "invalid_value" if isinstance(kind, str) else "invalid_type")
        variant.check_fields(value, path)

    def fits(self, value: Any) -> bool:
        return isinstance(value, dict)

    def schema(self) -> JsonSchema:
        branches = []
        for kind, variant in self.variants.items():
            branch = variant.schema()
            branch["properties"] = {self.tag: {"type": "string", "const": kind}, **branch["properties"]}
            if self.default != kind:
                branch["required"] = [self.tag, *branch.get("required", ())]
            branches.append(branch)
        return {"oneOf": branches}


class Either(Shape):
    """One of several shapes, picked by the value's JSON type: the one branch of that type names the
    deepest wrong field; among several (lists of strings or of token ids), the first the value passes."""

    def __init__(self, *branches: Shape, noun: str) -> None:
        self.branches, self.noun = branches, noun

    def check(self, value: Any, path: str) -> None:
        kind = type(value)
        for branch in self.branches:
            if branch.scalar_types is not None and kind in branch.scalar_types:
                return  # a scalar branch says all there is to say (the common `content: "…"`)
        fitting = [branch for branch in self.branches if branch.fits(value)] if len(self.branches) > 2 else self._pick(value)
        if len(fitting) == 1:
            fitting[0].check(value, path)
            return
        for branch in fitting:
            try:
                branch.check(value, path)
                return
            except ApiError:
                continue
        raise _invalid(path, f"{path} must be {self.noun}.")

    def _pick(self, value: Any) -> list[Shape]:
        first, second = self.branches
        if first.fits(value):
            return [first, second] if second.fits(value) else [first]
        return [second] if second.fits(value) else []

    def fits(self, value: Any) -> bool:
        return any(branch.fits(value) for branch in self.branches)

    def schema(self) -> JsonSchema:
        return {"anyOf": [branch.schema() for branch in self.branches]}


# --- Parts of the chat request ---------------------------------------------------------------------

TEXT_PART = Object({"text": STRING}, required=["text"])
REFUSAL_PART = Object({"refusal": STRING}, required=["refusal"])
IMAGE_PART = Object(
    # `image_url` as a bare string too: some clients send it so, and the adapters read both.
    {"image_url": Either(Object({"url": STRING, "detail": STRING}, required=["url"]), STRING, noun='an object {"url": …}')},
    required=["image_url"],
)
AUDIO_PART = Object({"input_audio": Object({"data": STRING, "format": STRING}, required=["data", "format"])}, required=["input_audio"])
FILE_PART = Object({"file": Object({"file_data": STRING, "file_id": STRING, "filename": STRING})}, required=["file"])

PARTS_NOUN = "a list of content parts"


def content(parts: dict[str, Object]) -> Either:
    part = Tagged("type", parts, noun="a content part object with a type")
    return Either(STRING, Array(part, noun=PARTS_NOUN), noun=f"a string or {PARTS_NOUN}")


TEXT_CONTENT = content({"text": TEXT_PART})
USER_CONTENT = content({"text": TEXT_PART, "image_url": IMAGE_PART, "input_audio": AUDIO_PART, "file": FILE_PART})
ASSISTANT_CONTENT = content({"text": TEXT_PART, "refusal": REFUSAL_PART})

FUNCTION_CALL = Object({"name": STRING, "arguments": STRING}, required=["name"], noun='an object {"name", "arguments"}')
TOOL_CALL = Tagged(
    "type",
    {
        "function": Object({"id": STRING, "function": FUNCTION_CALL}, required=["id", "function"]),
        "custom": Object({"id": STRING, "custom": Object({"name": STRING, "input": STRING}, required=["name"])}, required=["id", "custom"]),
    },
    noun='a tool call object {"id", "type", "function"}',
    default="function",
)

MESSAGE = Tagged(
    "role",
    {
        "system": Object({"content": TEXT_CONTENT, "name": STRING}, required=["content"]),
        "developer": Object({"content": TEXT_CONTENT, "name": STRING}, required=["content"]),
        "user": Object({"content": USER_CONTENT, "name": STRING}, required=["content"]),
        "assistant": Object(
            {
                "content": ASSISTANT_CONTENT,
                "refusal": STRING,
                "name": STRING,
                "audio": Object({"id": STRING}, required=["id"]),
                "tool_calls": Array(TOOL_CALL, noun="a list of tool calls"),
                "function_call": FUNCTION_CALL,
                # Extensions City answers with (DeepSeek's and Claude's thinking), sent back in a tool loop.
                "reasoning_content": STRING,
                "thinking_blocks": Array(ANY_OBJECT, noun="a list of objects"),
            }
        ),
        "tool": Object({"content": TEXT_CONTENT, "tool_call_id": STRING}, required=["content", "tool_call_id"]),
        "function": Object({"content": STRING, "name": STRING}, required=["name"]),
    },
    noun="a message object with a role and content",
)

FUNCTION_DEFINITION = Object(
    {"name": STRING, "description": STRING, "parameters": ANY_OBJECT, "strict": BOOLEAN},
    required=["name"],
    noun='a function object {"name", "description"?, "parameters"?}',
)
TOOL = Tagged(
    "type",
    {
        "function": Object({"function": FUNCTION_DEFINITION}, required=["function"]),
        "custom": Object(
            {"custom": Object({"name": STRING, "description": STRING, "format": ANY_OBJECT}, required=["name"])}, required=["custom"]
        ),
    },
    noun='a tool object {"type": "function", "function": {…}}',
    default="function",
)
TOOL_CHOICE = Either(
    STRING,
    Tagged(
        "type",
        {
            "function": Object({"function": Object({"name": STRING}, required=["name"])}, required=["function"]),
            "custom": Object({"custom": Object({"name": STRING}, required=["name"])}, required=["custom"]),
            "allowed_tools": Object(
                {
                    "allowed_tools": Object(
                        {"mode": STRING, "tools": Array(ANY_OBJECT, noun="a list of objects")}, required=["mode", "tools"]
                    )
                },
                required=["allowed_tools"],
            ),
        },
        noun='a tool choice object {"type": "function", "function": {"name"}}',
    ),
    noun='"none", "auto", "required" or {"type": "function", "function": {"name": …}}',
)
RESPONSE_FORMAT = Tagged(
    "type",
    {
        "text": Object({}),
        "json_object": Object({}),
        "json_schema": Object(
            {"json_schema": Object({"name": STRING, "description": STRING, "schema": ANY_OBJECT, "strict": BOOLEAN}, required=["name"])},
            required=["json_schema"],
        ),
    },
    noun='an object {"type": "text" | "json_object" | "json_schema"}',
)
STOP = Either(STRING, Array(STRING, noun="a list of strings"), noun="a string or a list of strings")
STREAM_OPTIONS = Object({"include_usage": BOOLEAN, "include_obfuscation": BOOLEAN}, noun='an object such as {"include_usage": true}')
LOGIT_BIAS = Map(INTEGER, 'an object of token ids to integers, such as {"50256": -100}')
METADATA = Map(STRING, "an object of strings")

# Fields of OpenAI's chat request that legacy completions share.
SAMPLING: dict[str, Shape] = {
    "model": MODEL,
    "frequency_penalty": NUMBER,
    "presence_penalty": NUMBER,
    "logit_bias": LOGIT_BIAS,
    "max_tokens": INTEGER,
    "n": INTEGER,
    "seed": INTEGER,
    "stop": STOP,
    "stream": BOOLEAN,
    "stream_options": STREAM_OPTIONS,
    "temperature": NUMBER,
    "top_p": NUMBER,
    "user": STRING,
}

CHAT_FIELDS: dict[str, Shape] = {
    **SAMPLING,
    "messages": Array(MESSAGE, noun='a list of messages such as [{"role": "user", "content": "Hello"}]', min_items=1),
    "audio": Object({"voice": Either(STRING, ANY_OBJECT, noun="a string or an object"), "format": STRING}, required=["voice", "format"]),
    "function_call": Either(STRING, Object({"name": STRING}, required=["name"]), noun='"none", "auto" or {"name": …}'),
    "functions": Array(FUNCTION_DEFINITION, noun="a list of functions"),
    "logprobs": BOOLEAN,
    "max_completion_tokens": INTEGER,
    "metadata": METADATA,
    "modalities": Array(STRING, noun='a list of strings such as ["text"]'),
    "moderation": ANY_OBJECT,
    "parallel_tool_calls": BOOLEAN,
    "prediction": Object({"type": STRING, "content": TEXT_CONTENT}, required=["type", "content"]),
    "prompt_cache_key": STRING,
    "prompt_cache_options": ANY_OBJECT,
    "prompt_cache_retention": STRING,
    "reasoning_effort": STRING,
    "response_format": RESPONSE_FORMAT,
    "safety_identifier": STRING,
    "service_tier": STRING,
    "store": BOOLEAN,
    "tool_choice": TOOL_CHOICE,
    "tools": Array(TOOL, noun="a list of tools"),
    "top_logprobs": INTEGER,
    "verbosity": STRING,
    "web_search_options": Object({"user_location": ANY_OBJECT, "search_context_size": STRING}),
}

PROMPT = Either(
    STRING,
    Array(STRING, noun="a list of strings"),
    Array(INTEGER, noun="a list of token ids", min_items=1),
    Array(Array(INTEGER, noun="a list of token ids", min_items=1), noun="a list of lists of token ids", min_items=1),
    noun="a string, a list of strings, or token ids",
)
COMPLETION_FIELDS: dict[str, Shape] = {
    **SAMPLING,
    "prompt": PROMPT,
    "best_of": INTEGER,
    "echo": BOOLEAN,
    "logprobs": INTEGER,
    "suffix": STRING,
}

EMBEDDING_FIELDS: dict[str, Shape] = {
    "model": MODEL,
    "input": Either(
        STRING,
        Array(STRING, noun="a list of strings", min_items=1),
        Array(INTEGER, noun="a list of token ids", min_items=1),
        Array(Array(INTEGER, noun="a list of token ids", min_items=1), noun="a list of lists of token ids", min_items=1),
        noun="a string, a list of strings, or token ids",
    ),
    "encoding_format": Choice("float", "base64"),
    "dimensions": INTEGER,
    "user": STRING,
}


class RequestSpec:
    """A route's accepted body (the InputSpec the registry declares on an Action): `validate` returns
    the body as it is or raises a 400 naming the first wrong field."""

    def __init__(self, fields: dict[str, Shape], *, required: Iterable[str], title: str) -> None:
        self.shape = Object(fields, required=required)
        self.title = title

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        self.shape.check(data, "")
        return data

    def json_schema(self) -> JsonSchema:
        return {"title": self.title, **self.shape.schema()}


CHAT_COMPLETIONS = RequestSpec(CHAT_FIELDS, required=["model", "messages"], title="CreateChatCompletionRequest")
COMPLETIONS = RequestSpec(COMPLETION_FIELDS, required=["model", "prompt"], title="CreateCompletionRequest")
EMBEDDINGS = RequestSpec(EMBEDDING_FIELDS, required=["model", "input"], title="CreateEmbeddingRequest")
