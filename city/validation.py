"""Input validation with DRF serializers: the first problem, naming its field, as a 400."""

from typing import Any

from rest_framework import serializers

from city.errors import ApiError


def validated(serializer_class: type[serializers.Serializer], data: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Return the serializer's validated data, or raise ApiError(400) naming the first bad field.

    Unknown fields are refused, so that a typo never passes silently.
    """
    serializer = serializer_class(data=data, partial=partial)
    unknown = sorted(set(data) - set(serializer.fields))
    if unknown:
        known = ", ".join(sorted(serializer.fields)) or "none"
        raise ApiError(400, f"Unknown field '{unknown[0]}'. Accepted fields: {known}.", param=unknown[0], code="unknown_field")
    if not serializer.is_valid():
        field, problem = _first_error(serializer.errors)
        raise ApiError(400, f"{field}: {problem}", param=field, code="invalid_field")
    return dict(serializer.validated_data)


def _first_error(errors: Any, prefix: str = "") -> tuple[str, str]:
    if isinstance(errors, dict):
        name, nested = next(iter(errors.items()))
        name = "body" if name == "non_field_errors" else name
        return _first_error(nested, f"{prefix}.{name}" if prefix else name)
    if isinstance(errors, list) and errors:
        first = errors[0]
        if isinstance(first, (dict, list)):
            return _first_error(first, prefix)
        return prefix, str(first)
    return prefix, str(errors)


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into strings."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """true/false only (query strings may also say true/false/1/0)."""

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        if isinstance(data, str) and data.lower() in {"true", "false", "1", "0"}:
            return data.lower() in {"true", "1"}
        self.fail("invalid", input=data)
        raise AssertionError  # fail() raises
