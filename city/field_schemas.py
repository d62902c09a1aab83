"""JSON Schema (the dialect of OpenAPI 3.1) of a DRF serializer's fields, for City's OpenAPI document.

Covers the fields City's actions declare and their usual kin: strings (length, blank, email, URL,
UUID, date-time), integers and numbers (bounds), booleans, choices, lists, dicts, JSON values and
nested serializers. A field this does not know is described as any value, never guessed.
"""

from typing import Any

from rest_framework import fields, serializers

# DRF's CharField trims whitespace before its blank check: with a blank refused, a value needs one non-space character.
NOT_ONLY_SPACES = r"\S"


def serializer_schema(serializer: serializers.Serializer) -> dict[str, Any]:
    """The object a serializer accepts: its writable fields, those required, and nothing else."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, field in serializer.fields.items():
        if field.read_only:
            continue
        properties[name] = field_schema(field)
        if field.required:
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def field_schema(field: fields.Field) -> dict[str, Any]:
    schema = _value_schema(field)
    if field.allow_null:
        schema = _nullable(schema)
    if field.help_text:
        schema["description"] = str(field.help_text)
    default = field.default
    if default is not fields.empty and not callable(default):
        schema["default"] = default
    return schema


def _value_schema(field: fields.Field) -> dict[str, Any]:
    """The schema of the field's non-null values; the most specific DRF class first."""
    if isinstance(field, serializers.ListSerializer):  # a nested serializer with many=True
        items = field_schema(field.child) if field.child is not None else {}
        return _list_schema(items, field.allow_empty is not False, getattr(field, "min_length", None), getattr(field, "max_length", None))
    if isinstance(field, serializers.Serializer):
        return serializer_schema(field)
    if isinstance(field, fields.BooleanField):
        return {"type": "boolean"}
    if isinstance(field, fields.MultipleChoiceField):
        return {"type": "array", "items": _enum_schema(list(field.choices)), "uniqueItems": True}
    if isinstance(field, fields.ChoiceField):
        return _enum_schema([*field.choices, *([""] if field.allow_blank else [])])
    if isinstance(field, fields.DateTimeField):
        return {"type": "string", "format": "date-time"}
    if isinstance(field, fields.DateField):
        return {"type": "string", "format": "date"}
    if isinstance(field, fields.CharField):
        return _string_schema(field)
    if isinstance(field, fields.UUIDField):
        return {"type": "string", "format": "uuid"}
    if isinstance(field, fields.IntegerField):
        return _bounded({"type": "integer"}, field.min_value, field.max_value)
    if isinstance(field, fields.FloatField):
        return _bounded({"type": "number"}, field.min_value, field.max_value)
    if isinstance(field, fields.DecimalField):
        return {"type": "string", "format": "decimal"}  # DRF answers decimals as strings by default
    if isinstance(field, fields.ListField):
        return _list_schema(field_schema(field.child), field.allow_empty, field.min_length, field.max_length)
    if isinstance(field, fields.DictField):
        return {"type": "object", "additionalProperties": field_schema(field.child)}
    return {}  # JSONField and anything unknown: any JSON value


def _enum_schema(choices: list[Any]) -> dict[str, Any]:
    """The choices, typed when they share a type (client generators make an enum of strings from it)."""
    schema: dict[str, Any] = {"enum": choices}
    if choices and all(isinstance(c, str) for c in choices):
        schema["type"] = "string"
    elif choices and all(isinstance(c, int) and not isinstance(c, bool) for c in choices):
        schema["type"] = "integer"
    return schema


def _string_schema(field: fields.CharField) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for kind, name in ((fields.EmailField, "email"), (fields.URLField, "uri")):
        if isinstance(field, kind):
            schema["format"] = name
    min_length = field.min_length or 0
    if not field.allow_blank:
        min_length = max(min_length, 1)
        if field.trim_whitespace:
            schema["pattern"] = NOT_ONLY_SPACES
    if min_length:
        schema["minLength"] = min_length
    if field.max_length is not None:
        schema["maxLength"] = field.max_length
    regex = getattr(field.validators[-1], "regex", None) if isinstance(field, fields.RegexField) and field.validators else None
    if regex is not None:  # RegexField adds its RegexValidator last
        schema["pattern"] = regex.pattern
    return schema


def _bounded(schema: dict[str, Any], minimum: Any, maximum: Any) -> dict[str, Any]:
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def _list_schema(items: dict[str, Any], allow_empty: bool, min_length: int | None, max_length: int | None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": items}
    least = max(min_length or 0, 0 if allow_empty else 1)
    if least:
        schema["minItems"] = least
    if max_length is not None:
        schema["maxItems"] = max_length
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "enum" in schema:
        schema = {**schema, "enum": [*schema["enum"], None]}
    if isinstance(schema.get("type"), str):
        return {**schema, "type": [schema["type"], "null"]}
    if "enum" in schema:
        return schema
    if not schema:
        return schema  # any value already includes null
    return {"anyOf": [schema, {"type": "null"}]}
