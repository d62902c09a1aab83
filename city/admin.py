"""The Django admin: a thin, safe window on City, and the pieces every City ModelAdmin shares.

Two rules hold for every page here:

- State changes go through the named operations (`studios.operations`, `city.envops`) with
  `actor=request.user`, so each writes its audit entry in its own transaction. An ApiError they
  raise becomes an admin error message and a failed audit entry, never a 500.
- Pages stay fast at any table size: no full counts, no facet counts, no N+1 queries, and search
  lookups that an index answers (see LargeTableAdmin and RoutedSearchMixin).
"""

from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property

from city import envops
from city.audit import record
from city.errors import ApiError
from city.models import AuditEntry, EnvVar
from city.registry import registry

T = TypeVar("T")

admin.site.site_header = "City administration"
admin.site.site_title = "City admin"
admin.site.index_title = "Studios, tokens, runtime env and the audit log"

# Rows one bulk action may touch: each row is its own operation and transaction, and a rotation
# shows every new secret on one page. Past this, narrow the list with a filter or a search.
MAX_ROWS_PER_ACTION = 500


# --- Scale -----------------------------------------------------------------------------------


class CappedCountPaginator(Paginator):
    """Counts at most `count_cap` rows, so a page over 200,000 rows costs a LIMITed subquery, not a full COUNT(*).

    Past the cap the changelist says "more than 10,000" and links the first 10,000 rows' pages;
    a filter or a search narrows the list instead of paging deeper.
    """

    count_cap = 10_000
    object_list: QuerySet[Any]  # the admin pages querysets only

    @cached_property
    def _counted(self) -> int:
        # values("pk"): the count needs no join, whatever list_select_related adds to the rows.
        return self.object_list.order_by().values("pk")[: self.count_cap + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._counted, self.count_cap)

    @property
    def count_is_capped(self) -> bool:
        return self._counted > self.count_cap


class SortableColumnsChangeList(ChangeList):
    """Sorts only by `sortable_by`: a hand-written `?o=` naming another column would sort the whole table."""

    def get_ordering_field(self, field_name: Any) -> Any:
        if self.sortable_by is not None and field_name not in self.sortable_by:
            return None
        return super().get_ordering_field(field_name)


class LargeTableAdmin(admin.ModelAdmin):
    """A changelist that answers in milliseconds at any size.

    `show_full_result_count = False` drops the unfiltered COUNT(*), facets are never counted, the
    filtered count is capped (CappedCountPaginator), and only indexed columns are sortable
    (subclasses set `sortable_by`). Subclasses pin their query counts in tests.
    """

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    list_per_page = 100
    sortable_by: ClassVar[tuple[str, ...]] = ()

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return SortableColumnsChangeList


def starts_with(field: str) -> Callable[[str], Q]:
    """A search route: `field` starts with the term (case-sensitive), answered from `field`'s index.

    PostgreSQL runs `LIKE 'ub\\_abc%'` on the varchar_pattern_ops index Django adds beside every
    indexed CharField. SQLite's LIKE ignores case, so it cannot use an index at all; the range
    [term, term + U+10FFFF) over the BINARY-collated index finds the same rows.
    """

    def lookup(term: str) -> Q:
        q = Q(**{f"{field}__startswith": term})
        if connection.vendor == "sqlite":
            q &= Q(**{f"{field}__gte": term, f"{field}__lt": term + "\U0010ffff"})
        return q

    return lookup


if TYPE_CHECKING:
    # The mixins below are only ever mixed into a ModelAdmin: type-check them as one.
    _AdminMixinBase = admin.ModelAdmin[Any]
else:
    _AdminMixinBase = object


class RoutedSearchMixin(_AdminMixinBase):
    """Search by the shape of the term, so that an id or a prefix is one index lookup.

    Django ORs every entry of `search_fields` with `icontains`: one unindexable branch turns the
    whole query into a scan of the table. Here a term that starts like an id or a token prefix uses
    only its route, `(start, lookup)`: a field lookup (`"studio_id"`, exact) or a function of the
    term returning a Q (`starts_with("prefix")`). Any other term falls back to `search_fields`
    (names: finding a substring is a scan whatever the index).
    """

    search_routes: tuple[tuple[str, str | Callable[[str], Q]], ...] = ()

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        for start, lookup in self.search_routes:
            if term.startswith(start) and " " not in term:
                return queryset.filter(lookup(term) if callable(lookup) else Q(**{lookup: term})), False
        return super().get_search_results(request, queryset, search_term)


# --- Operations ------------------------------------------------------------------------------


class OperationFailed(Exception):
    """An operation refused (ApiError) while serving an admin page; carries what the audit log needs."""

    def __init__(self, action: str, target: str, error: ApiError) -> None:
        super().__init__(error.message)
        self.action, self.target, self.error = action, target, error

    @property
    def outcome(self) -> str:
        return f"{self.error.status} {self.error.code or self.error.type}"


def run_operation(action: str, target: str, operation: Callable[[], T]) -> T:
    """Run one named operation; its ApiError comes out as OperationFailed, naming action and target."""
    try:
        return operation()
    except ApiError as exc:
        raise OperationFailed(action, target, exc) from exc


class OperationsAdminMixin(_AdminMixinBase):
    """Turns OperationFailed into an error message and a failed audit entry instead of a 500.

    Add and delete views run inside Django's transaction; the failure is recorded after it has
    rolled back, so that the record survives. Bulk actions call `note_failure` per row.
    """

    def note_failure(self, request: HttpRequest, failure: OperationFailed) -> None:
        record(request.user, failure.action, target=failure.target, outcome=failure.outcome)

    def report_failure(self, request: HttpRequest, failure: OperationFailed) -> None:
        self.note_failure(request, failure)
        messages.error(request, failure.error.message)

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except OperationFailed as failure:
            self.report_failure(request, failure)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except OperationFailed as failure:
            self.report_failure(request, failure)
            return HttpResponseRedirect(request.get_full_path())


class BulkOutcome:
    """What one bulk action did: rows that went through, and failures (each already audited)."""

    MESSAGES_SHOWN = 5

    def __init__(self, modeladmin: OperationsAdminMixin, request: HttpRequest) -> None:
        self.modeladmin, self.request = modeladmin, request
        self.done: list[Any] = []
        self.failures: list[OperationFailed] = []

    def attempt(self, action: str, target: str, operation: Callable[[], T]) -> T | None:
        try:
            result = run_operation(action, target, operation)
        except OperationFailed as failure:
            self.modeladmin.note_failure(self.request, failure)
            self.failures.append(failure)
            return None
        self.done.append(result)
        return result

    def report(self, success: str) -> None:
        """`success` is a message with `{count}`; failures follow, a few by name, the rest counted."""
        if self.done:
            messages.success(self.request, success.format(count=len(self.done)))
        for failure in self.failures[: self.MESSAGES_SHOWN]:
            messages.error(self.request, failure.error.message)
        hidden = len(self.failures) - self.MESSAGES_SHOWN
        if hidden > 0:
            messages.error(self.request, f"{hidden} more failed; the audit log lists each one.")


def bounded_rows(request: HttpRequest, queryset: QuerySet, noun: str) -> list[Any] | None:
    """The selected rows, or None (with a message) when they are more than one action may touch."""
    rows = list(queryset[: MAX_ROWS_PER_ACTION + 1])
    if len(rows) > MAX_ROWS_PER_ACTION:
        messages.error(
            request,
            f"Select at most {MAX_ROWS_PER_ACTION} {noun} per action; narrow the list with a filter or a search first. Nothing was changed.",
        )
        return None
    return rows


def adopt(target: Model, source: Model) -> None:
    """Make the admin's unsaved form instance `target` the row an operation created or updated.

    The admin goes on to log and link `target` (its history entry, its change page).
    """
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding, target._state.db = False, source._state.db


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
        if problem := envops.value_problem(value):
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


def changelist_url(model: type[Model], **query: str) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(query)}" if query else url
