"""Validation against the OpenAI API schema subset kept beside this module (openai/README.md says where it comes from)."""

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_PATH = Path(__file__).parent / "openai" / "openai-subset.schema.json"


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    bundle = json.loads(SCHEMA_PATH.read_text())
    schema = {"$schema": bundle["$schema"], "$defs": bundle["$defs"], "$ref": f"#/$defs/{name}"}
    return jsonschema.Draft202012Validator(schema)


def validate(obj: Any, name: str) -> None:
    """Raise jsonschema.ValidationError unless `obj` is a valid `name` (a key of the bundle's $defs,
    e.g. "CreateChatCompletionResponse")."""
    _validator(name).validate(obj)
