"""The studios admin: studios (pause, activate, remove) and their user tokens (issue, revoke, rotate).

Every change calls `studios.operations` with `actor=request.user`; detail pages are read-only
because no operation edits a studio's or a token's fields in place.
"""

from functools import partial
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html

from city.admin_toolkit import (
    BulkOutcome,
    LargeTableAdmin,
    OperationsAdminMixin,
    RoutedSearchMixin,
    adopt,
    bounded_rows,
    changelist_url,
    run_operation,
    starts_with,
)
from studios import operations
from studios.models import Studio, UserToken

SECRETS_TEMPLATE = "admin/studios/usertoken/secrets.html"


class ManagedByOperationsAdmin(OperationsAdminMixin, RoutedSearchMixin, LargeTableAdmin):
    """Detail pages are views; changes are the bulk actions and the add form, through the operations."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # studios are removed (soft) and tokens revoked, never deleted

    def has_manage_permission(self, request: HttpRequest) -> bool:
        """Who may run the bulk actions: holders of Django's change permission (superusers do)."""
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")


# --- Studios ---------------------------------------------------------------------------------

STUDIO_FIELDS = ("id", "name", "status", "created_at", "updated_at", "paused_at", "removed_at", "tokens")


@admin.register(Studio)
class StudioAdmin(ManagedByOperationsAdmin):
    list_display = ("id", "name", "status", "created")
    list_filter = ("status",)  # backed by studios_by_status (status, -id)
    search_fields = ("name",)
    search_routes = (("studio_", "id"),)  # an id is a primary-key lookup
    search_help_text = "A studio id (studio_…), or words of its name."
    sortable_by = ("id", "name", "status", "created")
    actions = ["pause_selected", "activate_selected", "remove_selected"]

    @admin.display(description="created", ordering="id")  # ids are ULIDs: creation order, indexed
    def created(self, studio: Studio) -> Any:
        return studio.created_at

    @admin.display(description="tokens")
    def tokens(self, studio: Studio) -> str:
        issue = reverse("admin:studios_usertoken_add") + f"?studio={studio.id}"
        return format_html(
            '<a href="{}">List its tokens</a> · <a href="{}">Issue a token</a>', changelist_url(UserToken, q=studio.id), issue
        )

    def get_fields(self, request: HttpRequest, obj: Studio | None = None) -> tuple[str, ...]:
        return ("name",) if obj is None else STUDIO_FIELDS

    def save_model(self, request: HttpRequest, obj: Studio, form: forms.ModelForm, change: bool) -> None:
        adopt(obj, operations.create_studio(form.cleaned_data["name"], actor=request.user))

    @admin.action(description="Pause selected studios (their tokens get 403)", permissions=["manage"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_status(request, queryset, Studio.Status.PAUSED)

    @admin.action(description="Activate selected studios", permissions=["manage"])
    def activate_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_status(request, queryset, Studio.Status.ACTIVE)

    @admin.action(description="Remove selected studios for good…", permissions=["manage"])
    def remove_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponseBase | None:
        """Asks first: removal is final, and every token of the studio stops working."""
        studios = bounded_rows(request, queryset, "studios")
        if studios is None:
            return None
        if request.POST.get("confirmed") == "yes":
            self._set_status(request, queryset, Studio.Status.REMOVED, studios)
            return None
        live_tokens = UserToken.objects.filter(studio__in=[s.id for s in studios], revoked_at__isnull=True).aggregate(n=Count("id"))["n"]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Remove these studios for good?",
            "studios": studios,
            "live_tokens": live_tokens,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/studios/studio/remove_confirmation.html", context)

    def _set_status(self, request: HttpRequest, queryset: QuerySet, status: str, studios: list[Studio] | None = None) -> None:
        studios = studios if studios is not None else bounded_rows(request, queryset, "studios")
        if studios is None:
            return None
        verbs: dict[str, str] = {Studio.Status.PAUSED: "pause", Studio.Status.ACTIVE: "activate", Studio.Status.REMOVED: "remove"}
        verb = verbs[status]
        outcome = BulkOutcome(self, request)
        for studio in studios:
            outcome.attempt(f"studios/{verb}", studio.id, partial(operations.set_studio_status, studio.id, status, actor=request.user))
        outcome.report(f"{{count}} studio(s) now {status}.")
        return None


# --- Tokens ----------------------------------------------------------------------------------


class TokenStatusFilter(admin.SimpleListFilter):
    """The same three states as `UserToken.status` and studios/tokens/list."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("active", "active"), ("revoked", "revoked"), ("expired", "expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)  # partial index studios_token_revoked
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)  # partial index studios_token_expiring
        return queryset


class TokenIssueForm(forms.ModelForm):
    """Studio, name and optional expiry; the secret is made by operations.issue_token."""

    class Meta:
        model = UserToken
        fields = ("studio", "name", "expires_at")
        help_texts = {"expires_at": "Optional. After this time the token gets 401."}

    def clean_expires_at(self) -> Any:
        # issue_token refuses it too; checked here so the form shows the error beside the field.
        expires_at = self.cleaned_data["expires_at"]
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("Choose a time in the future, or leave it empty for a token that does not expire.")
        return expires_at


TOKEN_FIELDS = ("id", "studio", "name", "prefix", "status", "created_at", "expires_at", "last_used_at", "rotated_at", "revoked_at")


@admin.register(UserToken)
class UserTokenAdmin(ManagedByOperationsAdmin):
    """Tokens without their secrets: the digest is never displayed, the prefix is read-only."""

    form = TokenIssueForm
    exclude = ("digest",)
    list_display = ("prefix", "name", "studio", "status", "created", "last_used_at", "expires_at", "revoked_at")
    list_select_related = ("studio",)
    list_filter = (TokenStatusFilter,)
    raw_id_fields = ("studio",)  # 5,000 studios: a lookup popup, not a <select>
    search_fields = ("name",)
    search_routes = (
        ("ub_", starts_with("prefix")),  # the index on prefix
        ("tok_", "id"),
        ("studio_", "studio_id"),  # studios_token_by_studio (studio, -id) also serves the ordering
    )
    search_help_text = "A token prefix (ub_…), a token id (tok_…), a studio id (studio_…), or words of the token's name."
    sortable_by = ("created",)  # the primary key's order; other columns would sort 200,000 rows
    actions = ["revoke_selected", "rotate_selected"]

    @admin.display(description="created", ordering="id")  # ids are ULIDs: creation order, indexed
    def created(self, token: UserToken) -> Any:
        return token.created_at

    def get_fields(self, request: HttpRequest, obj: UserToken | None = None) -> tuple[str, ...]:
        return ("studio", "name", "expires_at") if obj is None else TOKEN_FIELDS

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "studio":
            kwargs["queryset"] = Studio.objects.exclude(status=Studio.Status.REMOVED)
            kwargs["error_messages"] = {"invalid_choice": "No such studio, or it is removed (a removed studio cannot get new tokens)."}
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # One button: the answer is the page that shows the secret, not another form.
        extra = {"title": "Issue a token", "show_save_and_add_another": False, "show_save_and_continue": False, **(extra_context or {})}
        return super().add_view(request, form_url, extra)

    def save_model(self, request: HttpRequest, obj: UserToken, form: forms.ModelForm, change: bool) -> None:
        token, raw = run_operation(
            "studios/tokens/apply",
            obj.studio_id,
            lambda: operations.issue_token(obj.studio_id, obj.name, expires_at=obj.expires_at, actor=request.user),
        )
        adopt(obj, token)
        obj._raw_secret = raw  # type: ignore[attr-defined]  # lives as long as this request; read by response_add

    def response_add(self, request: HttpRequest, obj: UserToken, post_url_continue: str | None = None) -> HttpResponse:
        raw = obj.__dict__.pop("_raw_secret")
        return self.secrets_response(request, [(obj, raw)], title="Token issued")

    @admin.action(description="Revoke selected tokens", permissions=["manage"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        tokens = bounded_rows(request, queryset, "tokens")
        if tokens is None:
            return
        outcome = BulkOutcome(self, request)
        for token in tokens:
            outcome.attempt("studios/tokens/revoke", token.id, partial(operations.revoke_token, token.id, actor=request.user))
        outcome.report("{count} token(s) revoked; every City process refuses them within seconds.")

    @admin.action(description="Rotate selected tokens (new secrets, shown once)", permissions=["manage"])
    def rotate_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponseBase | None:
        tokens = bounded_rows(request, queryset, "tokens")
        if tokens is None:
            return None
        outcome = BulkOutcome(self, request)
        for token in tokens:
            outcome.attempt("studios/tokens/rotate", token.id, partial(operations.rotate_token, token.id, actor=request.user))
        outcome.report("{count} token(s) rotated; their old secrets stop working within seconds.")
        if not outcome.done:
            return None
        return self.secrets_response(request, outcome.done, title="Tokens rotated")

    def secrets_response(self, request: HttpRequest, issued: list[tuple[UserToken, str]], *, title: str) -> TemplateResponse:
        """The one page that shows raw secrets: rendered in this response only, never stored.

        Not a message: Django messages travel in a cookie or the session.
        """
        context = {**self.admin_site.each_context(request), "opts": self.opts, "title": title, "issued": issued}
        response = TemplateResponse(request, SECRETS_TEMPLATE, context)
        add_never_cache_headers(response)  # no cached copy, no back-button copy
        return response
