import re
from typing import Any

from rest_framework import serializers

from city.validation import StrictCharField
from studios.models import Studio
from studios.money import MAX_USD, MoneyError, usd_to_micros

TOKEN_STATUSES = ["active", "revoked", "expired", "all"]


class NameField(StrictCharField):
    def __init__(self, **kwargs):
        super().__init__(min_length=1, allow_blank=False, trim_whitespace=True, **kwargs)


class StudioCreateInput(serializers.Serializer):
    name = NameField(max_length=200)


class StudioRefInput(serializers.Serializer):
    studio_id = StrictCharField(max_length=40)


class OwnStudioInput(serializers.Serializer):
    studio_id = StrictCharField(max_length=40, required=False)  # a user may name its own studio; another is refused (403)


class StudioListInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=Studio.Status.values, required=False)
    search = serializers.CharField(max_length=200, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
    cursor = serializers.CharField(max_length=40, required=False)


class TokenApplyInput(serializers.Serializer):
    studio_id = StrictCharField(max_length=40, required=False)
    name = NameField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    plan_id = StrictCharField(max_length=40, required=False, allow_null=True, help_text="The token's own plan (admin only)")


class TokenRefInput(serializers.Serializer):
    studio_id = StrictCharField(max_length=40, required=False)
    token_id = StrictCharField(max_length=40)


class TokenListInput(serializers.Serializer):
    studio_id = StrictCharField(max_length=40, required=False)
    status = serializers.ChoiceField(choices=TOKEN_STATUSES, default="all")
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
    cursor = serializers.CharField(max_length=40, required=False)


# --- Plans -----------------------------------------------------------------------------------

MAX_LIMIT = 2_147_483_647  # the database's PositiveIntegerField
MAX_MODEL_PATTERNS = 500
MODEL_PATTERN = re.compile(r"[^\s]{1,200}")


class MoneyField(serializers.FloatField):
    """US dollars as a JSON number (at most 6 decimals, ≥ 0), validated as micro-dollars (an int).

    A number is read exactly, through its shortest decimal form: 0.000001 is 1 micro-dollar.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Described to the OpenAPI document; checked in to_internal_value (the validators would see micro-dollars).
        self.min_value, self.max_value = 0, MAX_USD + 0.999999

    def to_internal_value(self, data: Any) -> int:
        try:
            return usd_to_micros(data)
        except MoneyError as error:
            raise serializers.ValidationError(str(error)) from None


class ModelPatternField(StrictCharField):
    """A model id (`gpt-5-mini`) or a glob pattern over ids (`gpt-5*`, `claude-*-4-6`), case-sensitive."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=200, min_length=1, allow_blank=False, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not MODEL_PATTERN.fullmatch(value):
            raise serializers.ValidationError("a model id or glob pattern has no spaces, such as 'gpt-5*'.")
        return value


def limit_field(help_text: str) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, required=False, allow_null=True, help_text=help_text)


class PlanFieldsInput(serializers.Serializer):
    """A plan's limits; each field left out is no limit on create, and unchanged on update."""

    models = serializers.ListField(
        child=ModelPatternField(),
        max_length=MAX_MODEL_PATTERNS,
        required=False,
        allow_null=True,
        allow_empty=True,
        help_text="Model ids and glob patterns the plan allows; null: every model, []: none",
    )
    max_cost_per_request = MoneyField(required=False, allow_null=True, help_text="US dollars; worst-case cost of one call")
    monthly_budget = MoneyField(required=False, allow_null=True, help_text="US dollars per UTC calendar month")
    rpm = limit_field("Requests per minute")
    tpm = limit_field("Tokens per minute (input and output)")
    max_concurrency = limit_field("Calls in flight at once")


class PlanCreateInput(PlanFieldsInput):
    name = NameField(max_length=100)


class PlanUpdateInput(PlanFieldsInput):
    plan_id = StrictCharField(max_length=40)
    name = NameField(max_length=100, required=False)


class PlanRefInput(serializers.Serializer):
    plan_id = StrictCharField(max_length=40)


class PlanAssignInput(serializers.Serializer):
    plan_id = StrictCharField(max_length=40, allow_null=True, help_text="The plan to give; null takes the plan away")
    studio_id = StrictCharField(max_length=40, required=False, help_text="Either the studio…")
    token_id = StrictCharField(max_length=40, required=False, help_text="…or the token that gets it")


class PlanListInput(serializers.Serializer):
    search = serializers.CharField(max_length=100, required=False, help_text="Words of the name, or a plan id")
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
    cursor = serializers.CharField(max_length=40, required=False)
