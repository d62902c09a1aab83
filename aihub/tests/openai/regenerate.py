"""Rebuild openai-subset.schema.json from OpenAI's openapi.yaml (README.md beside this file).

    python aihub/tests/openai/regenerate.py path/to/openapi.yaml [--commit SHA --commit-date ISO]

The yaml is the `openapi.yaml` of github.com/openai/openai-openapi at the commit named in
SOURCE_COMMIT (or the one passed with --commit); nothing is downloaded here. The result is written
beside this script unless --out says otherwise.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
SOURCE_REPOSITORY = "https://github.com/openai/openai-openapi"
SOURCE_COMMIT = "f85dbe223d40e1a31cba812ab2d755c7e98a92a3"
SOURCE_COMMIT_DATE = "2026-08-21T20:48:10+00:00"

TITLE = "OpenAI API schema subset: chat completions, responses, completions, embeddings, models, errors, images, audio"
DESCRIPTION = (
    "Component schemas extracted from OpenAI's OpenAPI document, with every $ref they need included"
    ' under $defs. Validate an object against one definition with {"$schema": ..., "$defs": <this $defs>,'
    ' "$ref": "#/$defs/<Name>"}.'
)
TRANSFORMATIONS = [
    "$ref '#/components/schemas/X' rewritten to '#/$defs/X'",
    "OpenAPI 3.0 keyword 'nullable: true' rewritten as JSON Schema null-ability"
    " (type: [T, 'null'] plus null in enum, or anyOf [schema, {type: null}])",
    "dropped keys: 'x-*' extensions, 'example', 'discriminator'",
]

# The members of ResponseStreamEvent's anyOf, in the document's order (build() checks it is all of them).
RESPONSE_STREAM_EVENTS = [
    "ResponseAudioDeltaEvent",
    "ResponseAudioDoneEvent",
    "ResponseAudioTranscriptDeltaEvent",
    "ResponseAudioTranscriptDoneEvent",
    "ResponseCodeInterpreterCallCodeDeltaEvent",
    "ResponseCodeInterpreterCallCodeDoneEvent",
    "ResponseCodeInterpreterCallCompletedEvent",
    "ResponseCodeInterpreterCallInProgressEvent",
    "ResponseCodeInterpreterCallInterpretingEvent",
    "ResponseCompletedEvent",
    "ResponseContentPartAddedEvent",
    "ResponseContentPartDoneEvent",
    "ResponseCreatedEvent",
    "ResponseErrorEvent",
    "ResponseFileSearchCallCompletedEvent",
    "ResponseFileSearchCallInProgressEvent",
    "ResponseFileSearchCallSearchingEvent",
    "ResponseFunctionCallArgumentsDeltaEvent",
    "ResponseFunctionCallArgumentsDoneEvent",
    "ResponseShellCallCommandAddedStreamingEvent",
    "ResponseShellCallCommandDeltaStreamingEvent",
    "ResponseShellCallCommandDoneStreamingEvent",
    "ResponseShellCallOutputContentDeltaStreamingEvent",
    "ResponseShellCallOutputContentDoneStreamingEvent",
    "ResponseInProgressEvent",
    "ResponseFailedEvent",
    "ResponseIncompleteEvent",
    "ResponseOutputItemAddedEvent",
    "ResponseOutputItemDoneEvent",
    "ResponseReasoningSummaryPartAddedEvent",
    "ResponseReasoningSummaryPartDoneEvent",
    "ResponseReasoningSummaryTextDeltaEvent",
    "ResponseReasoningSummaryTextDoneEvent",
    "ResponseReasoningTextDeltaEvent",
    "ResponseReasoningTextDoneEvent",
    "ResponseRefusalDeltaEvent",
    "ResponseRefusalDoneEvent",
    "ResponseTextDeltaEvent",
    "ResponseTextDoneEvent",
    "ResponseWebSearchCallCompletedEvent",
    "ResponseWebSearchCallInProgressEvent",
    "ResponseWebSearchCallSearchingEvent",
    "ResponseImageGenCallCompletedEvent",
    "ResponseImageGenCallGeneratingEvent",
    "ResponseImageGenCallInProgressEvent",
    "ResponseImageGenCallPartialImageEvent",
    "ResponseMCPCallArgumentsDeltaEvent",
    "ResponseMCPCallArgumentsDoneEvent",
    "ResponseMCPCallCompletedEvent",
    "ResponseMCPCallFailedEvent",
    "ResponseMCPCallInProgressEvent",
    "ResponseMCPListToolsCompletedEvent",
    "ResponseMCPListToolsFailedEvent",
    "ResponseMCPListToolsInProgressEvent",
    "ResponseOutputTextAnnotationAddedEvent",
    "ResponseQueuedEvent",
    "ResponseCustomToolCallInputDeltaEvent",
    "ResponseCustomToolCallInputDoneEvent",
]

# The shapes City serves or accepts; everything they refer to comes along.
TARGETS = [
    "CreateChatCompletionRequest",
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "CreateCompletionRequest",
    "CreateCompletionResponse",
    "CreateEmbeddingRequest",
    "CreateEmbeddingResponse",
    "ListModelsResponse",
    "Model",
    "ErrorResponse",
    "Error",
    "CreateImageRequest",
    "ImagesResponse",
    "ImageGenStreamEvent",
    "CreateSpeechRequest",
    "CreateSpeechResponseStreamEvent",
    "CreateTranscriptionRequest",
    "CreateTranscriptionResponseJson",
    "CreateTranscriptionResponseVerboseJson",
    "CreateTranscriptionResponseDiarizedJson",
    "CreateTranscriptionResponseStreamEvent",
    # The Responses API: request, answer, every stream event (ResponseStreamEvent is their anyOf; each
    # event is named too, so a test can validate against the exact event its `type` says), the
    # input-items list.
    "CreateResponse",
    "Response",
    "ResponseStreamEvent",
    *RESPONSE_STREAM_EVENTS,
    "ResponseItemList",
]
ENDPOINTS = [
    ("post", "/chat/completions"),
    ("post", "/completions"),
    ("post", "/embeddings"),
    ("get", "/models"),
    ("get", "/models/{model}"),
    ("post", "/images/generations"),
    ("post", "/audio/speech"),
    ("post", "/audio/transcriptions"),
    ("post", "/responses"),
    ("get", "/responses/{response_id}"),
    ("delete", "/responses/{response_id}"),
    ("get", "/responses/{response_id}/input_items"),
    ("post", "/responses/{response_id}/cancel"),
]

SCHEMA_REF = "#/components/schemas/"
DROPPED = {"example", "discriminator"}
# Keys that describe a schema rather than constrain it: they stay outside the anyOf that makes a
# type-less schema nullable.
ANNOTATIONS = ("title", "description", "default", "deprecated", "readOnly", "writeOnly", "examples")


def convert(node: Any, *, names: bool = False) -> Any:
    """One OpenAPI schema node as JSON Schema 2020-12. `names` is true for a mapping whose keys are
    property names (`properties`), which are data, not keywords: none of them is dropped."""
    if isinstance(node, list):
        return [convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    if names:
        return {key: convert(value) for key, value in node.items()}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-") or key in DROPPED or key == "nullable":
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith(SCHEMA_REF):
            out[key] = "#/$defs/" + value[len(SCHEMA_REF) :]
        else:
            out[key] = convert(value, names=key in ("properties", "patternProperties", "$defs"))
    return nullable(out) if node.get("nullable") is True else out


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` that also accepts null: a typed schema gets "null" in its type (and its enum); any
    other is wrapped as anyOf [schema, {type: null}], its annotations kept outside."""
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        out = dict(schema, type=kinds if "null" in kinds else [*kinds, "null"])
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        return out
    outside = {key: schema[key] for key in ANNOTATIONS if key in schema}
    inside = {key: value for key, value in schema.items() if key not in outside}
    return {**outside, "anyOf": [inside, {"type": "null"}]}


def refs(node: Any) -> set[str]:
    """Names of the component schemas `node` refers to (directly)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
                found.add(ref[len(SCHEMA_REF) :])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def closure(schemas: dict[str, Any], targets: list[str]) -> list[str]:
    """The targets and every schema they reach through $ref, sorted."""
    seen: set[str] = set()
    todo = list(targets)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in schemas:
            raise SystemExit(f"components.schemas has no {name!r}")
        seen.add(name)
        todo.extend(refs(schemas[name]) - seen)
    return sorted(seen)


def schema_name(schema: dict[str, Any]) -> Any:
    """A response or request schema as the bundle lists it: a $defs name, {oneOf: [names]}, or the
    schema itself when it is inline."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
        return ref[len(SCHEMA_REF) :]
    if set(schema) == {"oneOf"} and all("$ref" in item for item in schema["oneOf"]):
        return {"oneOf": [schema_name(item) for item in schema["oneOf"]]}
    return convert(schema)


def contents(content: dict[str, Any]) -> dict[str, Any]:
    return {media: schema_name(body["schema"]) for media, body in content.items()}


def auth(document: dict[str, Any], operation: dict[str, Any]) -> str:
    schemes = document["components"]["securitySchemes"]
    names = [name for requirement in operation.get("security", document["security"]) for name in requirement]
    if len(names) != 1 or schemes[names[0]] != {"type": "http", "scheme": "bearer"}:
        raise SystemExit(f"unexpected security {names} for {operation['operationId']}")
    return "Authorization: Bearer <api key>"


def documented(operation: dict[str, Any]) -> Any:
    """The example answer in an operation's x-oaiMeta, parsed."""
    try:
        return json.loads(operation["x-oaiMeta"]["examples"]["response"])
    except (KeyError, ValueError) as error:
        raise SystemExit(f"{operation['operationId']}: no schema and no JSON example answer ({error!r})") from error


def endpoint(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    operation = document["paths"][path][method]
    out: dict[str, Any] = {"operationId": operation["operationId"], "auth": auth(document, operation)}
    if "requestBody" in operation:
        out["request"] = contents(operation["requestBody"]["content"])
    query = [parameter for parameter in operation.get("parameters", []) if parameter.get("in") == "query"]
    if query:
        out["query"] = {parameter["name"]: convert(parameter["schema"]) for parameter in query}
    responses: dict[str, Any] = {}
    for status, response in operation["responses"].items():
        ref = response.get("$ref")
        if ref is None and "content" not in response:
            # An answer the document gives no schema for (DELETE /responses/{id}): its documented
            # example is all there is, kept so a test can compare against it.
            responses[str(status)] = {"description": response["description"], "example": documented(operation)}
            continue
        if ref is None:
            # An operation's own answer: only what it holds matters, per media type.
            responses[str(status)] = contents(response["content"])
            continue
        # A shared answer (components.responses), e.g. TooManyRequests: kept whole.
        shared = document["components"]["responses"][ref.rsplit("/", 1)[1]]
        entry: dict[str, Any] = {"description": shared["description"], "content": contents(shared["content"])}
        if "headers" in shared:
            entry["headers"] = convert(shared["headers"], names=True)
        responses[str(status)] = entry
    out["responses"] = responses
    return out


def build(document: dict[str, Any], commit: str, commit_date: str) -> dict[str, Any]:
    schemas = document["components"]["schemas"]
    members = [refs(member).pop() for member in schemas["ResponseStreamEvent"]["anyOf"]]
    if members != RESPONSE_STREAM_EVENTS:
        raise SystemExit(f"ResponseStreamEvent's members changed: RESPONSE_STREAM_EVENTS should be {members}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": TITLE,
        "description": DESCRIPTION,
        "x-source": {
            "repository": SOURCE_REPOSITORY,
            "path": "openapi.yaml",
            "commit": commit,
            "commit_date": commit_date,
            "openapi": document["openapi"],
            "info.version": document["info"]["version"],
            "license": "MIT (Copyright (c) OpenAI)",
        },
        "x-transformations": TRANSFORMATIONS,
        "x-targets": TARGETS,
        "x-endpoints": {f"{method.upper()} {path}": endpoint(document, method, path) for method, path in ENDPOINTS},
        "$defs": {name: convert(schemas[name]) for name in closure(schemas, TARGETS)},
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("yaml", type=Path, help="openapi.yaml of openai/openai-openapi")
    parser.add_argument("--commit", default=SOURCE_COMMIT, help="the commit the yaml comes from")
    parser.add_argument("--commit-date", default=SOURCE_COMMIT_DATE, help="that commit's date (ISO 8601)")
    parser.add_argument("--out", type=Path, default=HERE / "openai-subset.schema.json")
    args = parser.parse_args(argv)
    with args.yaml.open("rb") as source:
        # The C loader when PyYAML has it: the document is about 3 MB.
        document = yaml.load(source, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    bundle = build(document, args.commit, args.commit_date)
    args.out.write_text(json.dumps(bundle, indent=1, ensure_ascii=False) + "\n")
    print(f"{args.out}: {len(bundle['$defs'])} definitions")


if __name__ == "__main__":
    main(sys.argv[1:])
