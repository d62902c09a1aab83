"""The admin toolkit every app's ModelAdmins share: large lists, index-routed search, and changes
through the named operations.

Two rules hold for every page built with it:

- State changes go through the named operations (an app's `operations`, `city.envops`) with
  `actor=request.user`, so each writes its audit entry in its own transaction. An ApiError they
  raise becomes an admin error message and a failed audit entry, never a 500 (OperationsAdminMixin).
- Pages stay fast at any table size: no full counts, no facet counts, no N+1 queries, and search
  lookups that an index answers (LargeTableAdmin, RoutedSearchMixin). A capped count reads "more
  than 10000" on every LargeTableAdmin's list, whichever app it belongs to: one change-list
  template (admin/large_lists/) serves them all.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.functional import cached_property

from city.audit import record
from city.errors import ApiError

T = TypeVar("T")


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
    (subclasses set `sortable_by`). Its change-list template says "more than 10000" where the count
    is capped. Subclasses pin their query counts in tests.
    """

    change_list_template = "admin/large_lists/change_list.html"
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


def changelist_url(model: type[Model], **query: str) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(query)}" if query else url
