"""The request log in the Django admin: every AI call's usage record, newest first, read-only.

It stays fast on millions of records: filters whose choices come from small tables or the catalog
(never a DISTINCT over the records), a capped count (LargeTableAdmin), and every filter and search
answered by one of the request log's indexes (aihub/models.py), as `ai/logs` is.
"""

from datetime import UTC, timedelta
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html

from aihub.catalog import models_by_id
from aihub.logs_api import status_condition
from aihub.metering import CLIENT_CLOSED
from aihub.models import FAILED, UsageRecord
from aihub.money_json import usd_text
from city.admin_toolkit import LargeTableAdmin
from studios.models import Studio, UserToken

# Choices a filter lists at most; past them the list's links and the search narrow the log.
MAX_CHOICES = 100
# Error codes offered: those of the latest failures (one short index range, not a scan).
RECENT_FAILURES_FOR_CODES = 1000


class ChosenValueFilter(admin.SimpleListFilter):
    """A filter by one exact value whose choices are listed by `choices()`; a value from a link or
    a typed URL (`?studio=studio_…`) works even when it is not among them."""

    field = ""

    def choices_of(self, request: HttpRequest) -> list[tuple[str, str]]:
        raise NotImplementedError

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        found = self.choices_of(request)
        chosen = self.value()
        if chosen and chosen not in {value for value, _ in found}:
            found.insert(0, (chosen, chosen))
        return found

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(**{self.field: self.value()}) if self.value() else queryset


class StudioFilter(ChosenValueFilter):
    title = "studio"
    parameter_name = field = "studio_id"

    def choices_of(self, request: HttpRequest) -> list[tuple[str, str]]:
        return [(s.id, s.name) for s in Studio.objects.order_by("name").only("id", "name")[:MAX_CHOICES]]


class TokenFilter(ChosenValueFilter):
    """Listed once a studio is chosen: that studio's tokens."""

    title = "token"
    parameter_name = field = "token_id"

    def choices_of(self, request: HttpRequest) -> list[tuple[str, str]]:
        studio_id = request.GET.get("studio_id")
        if not studio_id:
            return []
        tokens = UserToken.objects.filter(studio_id=studio_id).order_by("-id").only("id", "prefix", "name")[:MAX_CHOICES]
        return [(t.id, f"{t.name} ({t.prefix}…)") for t in tokens]


class ModelFilter(ChosenValueFilter):
    title = "model"
    parameter_name = field = "model"

    def choices_of(self, request: HttpRequest) -> list[tuple[str, str]]:
        return [(model_id, model_id) for model_id in sorted(models_by_id())]


class ErrorCodeFilter(ChosenValueFilter):
    title = "error code"
    parameter_name = field = "error_code"

    def choices_of(self, request: HttpRequest) -> list[tuple[str, str]]:
        recent = UsageRecord.objects.filter(FAILED).order_by("-created_at", "-id").values_list("error_code", flat=True)
        return [(code, code) for code in sorted(set(recent[:RECENT_FAILURES_FOR_CODES]) - {""})]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        # Only failures carry a code: saying so lets the failure indexes answer.
        return queryset.filter(FAILED).filter(error_code=self.value()) if self.value() else queryset


class StatusFilter(admin.SimpleListFilter):
    """The statuses of ai/logs's `status` filter (aihub/logs_api.py)."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("2xx", "answered (2xx)"),
            ("error", "failed (not 2xx, not 499)"),
            ("4xx", "4xx"),
            ("5xx", "5xx"),
            ("cancelled", "client left (499)"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value not in {"2xx", "error", "4xx", "5xx", "cancelled"}:
            return queryset
        return queryset.filter(status_condition(value))


class SinceFilter(admin.SimpleListFilter):
    title = "time"
    parameter_name = "since"
    SPANS = {
        "1h": ("last hour", timedelta(hours=1)),
        "24h": ("last 24 hours", timedelta(days=1)),
        "7d": ("last 7 days", timedelta(days=7)),
        "30d": ("last 30 days", timedelta(days=30)),
    }

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _) in self.SPANS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        span = self.SPANS.get(self.value() or "")
        return queryset.filter(created_at__gte=timezone.now() - span[1]) if span else queryset


@admin.register(UsageRecord)
class UsageRecordAdmin(LargeTableAdmin):
    """The request log: what each AI call did and cost, as the metering wrote it; nobody edits a record."""

    list_display = (
        "request",
        "time",
        "studio_name",
        "token",
        "model",
        "upstream",
        "route",
        "status",
        "error_code",
        "tokens",
        "usd",
        "timing",
        "streaming",
    )
    change_list_template = "admin/aihub/request_log.html"
    list_display_links = ("request",)
    list_filter = (SinceFilter, StatusFilter, StudioFilter, TokenFilter, ModelFilter, ErrorCodeFilter)
    list_select_related = ("studio",)
    search_fields = ("request_id",)
    search_help_text = "An exact request id (the answer's X-Request-Id), call id (call_…), studio id (studio_…) or token id (tok_…)."
    ordering = ("-created_at", "-id")
    sortable_by = ("created_at",)
    raw_id_fields = ("studio",)
    fieldsets = (
        (None, {"fields": ("request_id", "call_id", "created_at", "studio", "token_id", "account_id")}),
        ("Call", {"fields": ("route", "modality", "model", "provider", "deployment", "status", "error_code", "streamed", "cancelled")}),
        (
            "Usage",
            {
                "fields": (
                    "prompt_tokens",
                    "cached_tokens",
                    "cache_write_tokens",
                    "completion_tokens",
                    "reasoning_tokens",
                    "unit",
                    "units",
                    "usage_estimated",
                    "usd",
                    "picousd",
                )
            },
        ),
        ("Timing", {"fields": ("latency_ms", "ttft_ms")}),
    )
    readonly_fields = ("usd", "picousd")

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        # Thirteen columns and the filters need the width the navigation sidebar would take.
        return super().changelist_view(request, {"is_nav_sidebar_enabled": False, **(extra_context or {})})  # type: ignore[return-value]

    @admin.display(description="request id")
    def request(self, record: UsageRecord) -> str:
        return record.request_id or record.call_id or str(record.pk)

    # Short cells, so that the columns fit 1,400 pixels; the detail page shows every field whole.
    @admin.display(description="time (UTC)", ordering="created_at")
    def time(self, record: UsageRecord) -> str:
        return f"{record.created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}"

    @admin.display(description="studio")
    def studio_name(self, record: UsageRecord) -> str:
        return record.studio.name

    @admin.display(description="token")
    def token(self, record: UsageRecord) -> str:
        if not record.token_id:
            return "—"
        return format_html('<span title="{}">…{}</span>', record.token_id, record.token_id[-6:])

    @admin.display(description="tokens in → out")
    def tokens(self, record: UsageRecord) -> str:
        return f"{record.prompt_tokens} → {record.completion_tokens}"

    @admin.display(description="ms (ttft)")
    def timing(self, record: UsageRecord) -> str:
        return f"{record.latency_ms}" if record.ttft_ms is None else f"{record.latency_ms} ({record.ttft_ms})"

    @admin.display(description="streamed")
    def streaming(self, record: UsageRecord) -> str:
        """Streamed or not, and whether the client left before the end (cancelled)."""
        streamed = "yes" if record.streamed else "no"
        return f"{streamed}, cancelled" if record.cancelled or record.status == CLIENT_CLOSED else streamed

    @admin.display(description="provider / deployment")
    def upstream(self, record: UsageRecord) -> str:
        return f"{record.provider} / {record.deployment}" if record.deployment else record.provider

    @admin.display(description="cost (USD)")
    def usd(self, record: UsageRecord) -> str:
        return usd_text(record.cost)

    @admin.display(description="cost (1e-12 USD)")
    def picousd(self, record: UsageRecord) -> int:
        return record.cost

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """Routed by the term's shape to one index: studio_…, tok_…, call_…, else a request id."""
        term = search_term.strip()
        if not term:
            return queryset, False
        for start, field in (("studio_", "studio_id"), ("tok_", "token_id"), ("call_", "call_id")):
            if term.startswith(start):
                return queryset.filter(**{field: term}), False
        return queryset.filter(request_id=term), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Stored responses register in a module of their own, which uses StudioFilter above.
from aihub import admin_responses  # noqa: E402, F401
