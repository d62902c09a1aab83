"""Stored responses of the Responses API (`store`, on by default as on OpenAI's): what makes
`previous_response_id`, `GET /v1/responses/{id}`, `DELETE /v1/responses/{id}` and
`GET /v1/responses/{id}/input_items` work, per studio, for CITY_RESPONSES_RETENTION_DAYS
(`manage.py purge_responses` deletes the expired).

A row keeps its own request's input items (the conversation before them lives in the rows its
`previous_response_id` chain names) and the whole response object as the client received it.
"""

from django.db import models
from django.utils import timezone


class StoredResponse(models.Model):
    id = models.CharField(primary_key=True, max_length=64)  # "resp_…", as the client saw it
    studio = models.ForeignKey("studios.Studio", on_delete=models.CASCADE, related_name="stored_responses")
    token_id = models.CharField(max_length=40, null=True, blank=True)
    model = models.CharField(max_length=100)  # City's model id
    previous_response_id = models.CharField(max_length=64, blank=True)
    input_items = models.JSONField(default=list)  # this request's input items, as Responses input items with ids
    response = models.JSONField(default=dict)  # the response object as answered
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["studio", "created_at"], name="aihub_responses_by_studio")]

    def __str__(self) -> str:
        return self.id
