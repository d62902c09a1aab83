"""What an action takes: its declared input, which the dispatcher validates before the handler runs.

An action declares a DRF serializer class (most actions) or an object with the `InputSpec` protocol
(the AI routes, whose requests are OpenAI's shapes). Either way the handler receives the validated
data as `call.data`, and `GET /v1/openapi.json` shows the same declaration as JSON Schema.
"""

from typing import Any, Protocol, runtime_checkable

from rest_framework import serializers

from city.field_schemas import serializer_schema
from city.validation import validated


@runtime_checkable
class InputSpec(Protocol):
    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        """The data the handler receives; raises city.errors.ApiError(400, …, param=field) naming the first bad field."""
        ...

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema (OpenAPI 3.1) of the body, or of the query parameters: an object with `properties`."""
        ...


InputDeclaration = type[serializers.Serializer] | InputSpec


class SerializerInput:
    """A DRF serializer as an InputSpec: unknown fields refused, the first problem named (city/validation.py)."""

    def __init__(self, serializer_class: type[serializers.Serializer]) -> None:
        self.serializer_class = serializer_class

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        return validated(self.serializer_class, data)

    def json_schema(self) -> dict[str, Any]:
        return serializer_schema(self.serializer_class())

    def __repr__(self) -> str:
        return f"SerializerInput({self.serializer_class.__name__})"


class NoInput:
    """An action that takes nothing: any field is refused, as an unknown one."""

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        return validated(serializers.Serializer, data) if data else {}

    def json_schema(self) -> dict[str, Any]:
        return {"type": "object", "properties": {}, "additionalProperties": False}


class OpenInput:
    """Named string fields, all optional, and any others besides, passed on as they came.

    For what another party sends and City does not choose, such as an OAuth provider's redirect
    (`code`, `state`, and whatever else that provider adds).
    """

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields  # name → description

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def json_schema(self) -> dict[str, Any]:
        properties = {name: {"type": "string", "description": text} for name, text in self.fields.items()}
        return {"type": "object", "properties": properties, "additionalProperties": True}


NO_INPUT = NoInput()


def input_spec(declared: Any) -> InputSpec:
    """The InputSpec of a declaration: a serializer class is wrapped, an InputSpec is itself."""
    if isinstance(declared, type) and issubclass(declared, serializers.Serializer):
        return SerializerInput(declared)
    if isinstance(declared, InputSpec):
        return declared
    raise TypeError(f"An action's input is a DRF serializer class or an InputSpec (validate, json_schema), not {declared!r}.")


class PassedOn:
    """For an action that checks its own fields (one action that takes a create, a list and a delete):
    this only describes them for GET /v1/openapi.json, and passes everything on."""

    def __init__(self, properties: dict[str, Any], required: tuple[str, ...] = ()) -> None:
        self.properties, self.required = properties, required

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "object", "properties": self.properties}
        if self.required:
            schema["required"] = list(self.required)
        return schema
