"""A service for the tests of declared inputs: each handler records the data it received."""

from typing import Any

from rest_framework import serializers

from city.calls import Call
from city.errors import ApiError
from city.models import EnvVar
from city.registry import Action, Service
from city.validation import StrictBooleanField, StrictCharField

RECEIVED: list[dict[str, Any]] = []


class PlantInput(serializers.Serializer):
    name = StrictCharField(max_length=20)
    height = serializers.IntegerField(min_value=1, max_value=100, default=10)
    kind = serializers.ChoiceField(choices=["fern", "moss"], required=False)
    wet = StrictBooleanField(required=False)


class FreeKeyInput(serializers.Serializer):
    """A validator that queries the database: it must run in the sync handler's thread, not on the event loop."""

    key = StrictCharField(max_length=20)

    def validate_key(self, value: str) -> str:
        if EnvVar.objects.filter(key=value).exists():
            raise serializers.ValidationError("This key is taken.")
        return value


class EvenInput:
    """An InputSpec object: `n`, an even integer."""

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        n = data.get("n")
        if not isinstance(n, int) or n % 2:
            raise ApiError(400, "n must be an even integer.", param="n", code="invalid_value")
        return {"n": n, "half": n // 2}

    def json_schema(self) -> dict[str, Any]:
        return {"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 2}}, "required": ["n"]}


def record(call: Call) -> dict[str, Any]:
    RECEIVED.append(call.data)
    return {"received": call.data}


def echo_raw(call: Call) -> dict[str, Any]:
    return {"bytes": len(call.request.body), "data": call.data}


SERVICE = Service(
    id="garden",
    name="Garden",
    actions=(
        Action("plant", record, allow=(), input=PlantInput),
        Action("plants", record, methods=("GET", "HEAD"), allow=(), input=PlantInput),
        Action("even", record, allow=(), input=EvenInput()),
        Action("nothing", record, methods=("GET",), allow=()),
        Action("upload", echo_raw, allow=(), json_body=False),
        Action("claim", record, allow=(), input=FreeKeyInput),
    ),
)
