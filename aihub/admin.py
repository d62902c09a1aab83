"""Usage records in the Django admin: read-only, newest first, searchable by request id or studio."""

from decimal import Decimal

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from aihub.models import COST_UNITS_PER_USD, UsageRecord
from city.admin_toolkit import LargeTableAdmin


class OutcomeFilter(admin.SimpleListFilter):
    title = "outcome"
    parameter_name = "outcome"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("ok", "answered (2xx)"), ("failed", "failed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "ok":
            return queryset.filter(status__lt=300)
        if self.value() == "failed":
            return queryset.filter(status__gte=300)
        return queryset


@admin.register(UsageRecord)
class UsageRecordAdmin(LargeTableAdmin):
    """What each AI call cost, as the metering wrote it; nobody edits a record."""

    list_display = (
        "created_at",
        "studio",
        "model",
        "provider",
        "modality",
        "status",
        "prompt_tokens",
        "completion_tokens",
        "usd",
        "latency_ms",
    )
    list_filter = (OutcomeFilter, "modality")
    list_select_related = ("studio",)
    search_fields = ("request_id", "studio__id", "token_id")
    search_help_text = "An exact request id (the answer's X-Request-Id), studio id (studio_…) or token id (tok_…)."
    ordering = ("-id",)
    sortable_by = ("created_at",)
    raw_id_fields = ("studio",)

    @admin.display(description="cost (USD)")
    def usd(self, record: UsageRecord) -> str:
        return format((Decimal(record.cost) / COST_UNITS_PER_USD).normalize(), "f")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """Routed by the term's shape to one index: studio_…, tok_…, else a request id."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.startswith("studio_"):
            return queryset.filter(studio_id=term), False
        if term.startswith("tok_"):
            return queryset.filter(token_id=term), False
        return queryset.filter(request_id=term), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: UsageRecord | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: UsageRecord | None = None) -> bool:
        return False
