"""Stored responses (Responses API) in the Django admin: which studio keeps which, until when;
read-only, and without their contents (users' conversations stay out of the admin, as prompts stay
out of the request log). GET /v1/responses/{id} with the admin credential and `studio_id` reads one
whole."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from aihub.admin import StudioFilter
from aihub.models_responses import StoredResponse
from city.admin_toolkit import LargeTableAdmin

# The columns kept from a row; the two JSON columns (input items, the response) are never loaded.
SHOWN = ("id", "studio", "token_id", "model", "previous_response_id", "created_at", "expires_at")


@admin.register(StoredResponse)
class StoredResponseAdmin(LargeTableAdmin):
    list_display = ("id", "studio", "model", "created_at", "expires_at", "previous_response_id")
    list_filter = (StudioFilter,)
    list_select_related = ("studio",)
    search_fields = ("=id", "=previous_response_id")
    search_help_text = "An exact response id (resp_…): the response, and the one that continued it."
    # Ids are ULIDs, so the primary key's index gives creation order at any size.
    ordering = ("-id",)
    sortable_by = ("id",)
    fields = SHOWN
    readonly_fields = SHOWN

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).only(*SHOWN)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
