from rest_framework import serializers

from city.validation import StrictCharField
from studios.models import Studio

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


class TokenRefInput(serializers.Serializer):
    studio_id = StrictCharField(max_length=40, required=False)
    token_id = StrictCharField(max_length=40)


class TokenListInput(serializers.Serializer):
    studio_id = StrictCharField(max_length=40, required=False)
    status = serializers.ChoiceField(choices=TOKEN_STATUSES, default="all")
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
    cursor = serializers.CharField(max_length=40, required=False)
