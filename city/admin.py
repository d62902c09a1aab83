"""City's own models in the Django admin: the runtime env and the audit log (the shared pieces are
city.admin_toolkit)."""

from datetime import timedelta
from functools import partial

from django import forms
from django.contrib import admin
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponseBase
from django.utils import timezone

from city import envops
from city.admin_toolkit import BulkOutcome, LargeTableAdmin, OperationsAdminMixin, adopt, run_operation
from city.models import AuditEntry, EnvVar
from city.registry import registry

admin.site.site_header = "City administration"
admin.site.site_title = "City admin"
admin.site.index_title = "Studios, tokens, runtime env and the audit log"
admin.site.index_template = "admin/city/index.html"  # the apps' own pages (CITY_ADMIN_PAGES) above the models


# --- Runtime env -----------------------------------------------------------------------------


def sentence(problem: str) -> str:
    return f"{problem[:1].upper()}{problem[1:]}."


class EnvVarForm(forms.ModelForm):
    """Key, write-only value, description. The value is never sent to the browser, not even masked."""

    value = forms.CharField(
        required=False,
        strip=False,
        max_length=envops.MAX_VALUE_CHARS,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "size": 60}),
        help_text="Write-only: City stores it encrypted and never shows it again. On an existing variable, leave it blank to keep the current value.",
    )

    class Meta:
        model = EnvVar
        fields = ("key", "value", "description")

    def clean_key(self) -> str:
        key = self.cleaned_data["key"]
        if problem := envops.key_problem(key):
            raise forms.ValidationError(sentence(problem))
        return key

    def clean_value(self) -> str:
        """The value to store: the one typed, or (blank, on an existing variable) the current one."""
        value = self.cleaned_data["value"]
        if not value and self.instance._state.adding:
            raise forms.ValidationError("Enter the value; it is required for a new variable.")
        if not self.instance._state.adding and not value:
            value = envops.value_of(self.instance)  # keep the current value; for upsert_env only, never rendered
            if value is None:
                raise forms.ValidationError(
                    "The stored value cannot be decrypted (CITY_SECRET_KEY changed without CITY_SECRET_KEY_FALLBACKS); "
                    "enter the value again to replace it."
                )
        if problem := envops.value_problem(value, self.cleaned_data.get("key") or self.instance.key):
            raise forms.ValidationError(sentence(problem))
        return value


def masked(row: EnvVar) -> str:
    value = envops.value_of(row)
    if value is None:
        return "(cannot decrypt: CITY_SECRET_KEY changed without CITY_SECRET_KEY_FALLBACKS)"
    return envops.shown(row.key, value) or ""


@admin.register(EnvVar)
class EnvVarAdmin(OperationsAdminMixin, LargeTableAdmin):
    """Runtime env variables. Saving calls envops.upsert_env, deleting envops.remove_env."""

    form = EnvVarForm
    actions = ["delete_selected"]  # replaces Django's, which would report failures as deletions
    list_display = ("key", "masked_value", "description", "updated_at", "updated_by")
    search_fields = ("key", "description")
    sortable_by = ("key", "updated_at")
    ordering = ("key",)

    @admin.display(description="value")
    def masked_value(self, row: EnvVar) -> str:
        return masked(row)

    def get_fields(self, request: HttpRequest, obj: EnvVar | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("key", "value", "description")
        return ("key", "masked_value", "value", "description", "updated_at", "updated_by")

    def get_readonly_fields(self, request: HttpRequest, obj: EnvVar | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("key", "masked_value", "updated_at", "updated_by")  # a new key is a new variable

    def save_model(self, request: HttpRequest, obj: EnvVar, form: EnvVarForm, change: bool) -> None:
        value = form.cleaned_data["value"]  # blank in the form: the current value (EnvVarForm.clean_value)
        row, _ = run_operation(
            "env/upsert",
            obj.key,
            lambda: envops.upsert_env(obj.key, value, description=form.cleaned_data["description"], actor=request.user),
        )
        adopt(obj, row)

    def delete_model(self, request: HttpRequest, obj: EnvVar) -> None:
        run_operation("env/remove", obj.key, lambda: envops.remove_env(obj.key, actor=request.user))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._remove_rows(request, queryset)

    @admin.action(permissions=["delete"], description="Delete selected env variables")
    def delete_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponseBase | None:
        """Django's confirmation page first; then remove_env per key, with a report that counts only successes."""
        if not request.POST.get("post"):
            return django_delete_selected(self, request, queryset)
        self._remove_rows(request, queryset)
        return None

    def _remove_rows(self, request: HttpRequest, queryset: QuerySet) -> None:
        outcome = BulkOutcome(self, request)
        for row in queryset:
            outcome.attempt("env/remove", row.key, partial(envops.remove_env, row.key, actor=request.user))
        outcome.report("{count} env variable(s) removed.")


# --- Audit log -------------------------------------------------------------------------------


def audited_actions() -> list[str]:
    """Every action the services declare as audited, read from the registry (no query)."""
    names = {f"{service.id}/{action.name}" for service in registry().services.values() for action in service.actions if action.audit}
    return sorted(names)


class AuditActionFilter(admin.SimpleListFilter):
    """The choices come from the registry: a DISTINCT over the whole log would scan it."""

    title = "action"
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(name, name) for name in audited_actions()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(action=self.value()) if self.value() else queryset


class AuditOutcomeFilter(admin.SimpleListFilter):
    title = "outcome"
    parameter_name = "outcome"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("ok", "ok"), ("failed", "failed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "ok":
            return queryset.filter(outcome="ok")
        if self.value() == "failed":
            return queryset.filter(~Q(outcome="ok"))  # the same predicate as the partial index city_audit_failures
        return queryset


class AuditAgeFilter(admin.SimpleListFilter):
    title = "time"
    parameter_name = "within"
    WINDOWS = {
        "1h": ("Last hour", timedelta(hours=1)),
        "1d": ("Last 24 hours", timedelta(days=1)),
        "7d": ("Last 7 days", timedelta(days=7)),
        "30d": ("Last 30 days", timedelta(days=30)),
    }

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _) in self.WINDOWS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        window = self.WINDOWS.get(self.value() or "")
        return queryset.filter(created_at__gte=timezone.now() - window[1]) if window else queryset


@admin.register(AuditEntry)
class AuditEntryAdmin(LargeTableAdmin):
    """The audit log, read-only: nobody adds, changes or deletes an entry from the admin."""

    list_display = ("created_at", "actor", "action", "target", "outcome")
    list_filter = (AuditActionFilter, AuditOutcomeFilter, AuditAgeFilter)
    search_fields = ("target", "actor")
    search_help_text = "An exact target (studio_…, tok_…, an env key) or actor (admin, admin:<username>)."
    ordering = ("-created_at",)
    sortable_by = ("created_at",)
    fields = ("created_at", "actor", "action", "target", "outcome", "detail")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """Exact target or actor, each one index lookup (city_audit_by_target, city_audit_by_actor).

        Two cheap probes pick the column first: given `target = x OR actor = x`, SQLite's planner,
        which expects tens of thousands of rows per actor, reads the whole log in time order instead.
        """
        term = search_term.strip()
        if not term:
            return queryset, False
        is_actor = AuditEntry.objects.filter(actor=term).exists()
        is_target = AuditEntry.objects.filter(target=term).exists()
        if is_actor and is_target:
            return queryset.filter(Q(target=term) | Q(actor=term)), False
        if is_actor:
            return queryset.filter(actor=term), False
        if is_target:
            return queryset.filter(target=term), False
        return queryset.none(), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False
