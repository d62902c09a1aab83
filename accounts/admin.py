"""The accounts admin: accounts (create, disable, enable), their OAuth identities, studio settings, OAuth flows.

Every change calls `accounts.operations` with `actor=request.user`; detail pages are read-only and
never show a password hash, a PKCE verifier or a digest.
"""

from functools import partial
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import operations
from accounts.models import Account, OAuthFlow, OAuthIdentity, StudioAccountSettings
from city.admin_toolkit import BulkOutcome, LargeTableAdmin, OperationsAdminMixin, RoutedSearchMixin, adopt, bounded_rows, run_operation
from studios.models import Studio


class ReadOnlyDetailAdmin(OperationsAdminMixin, RoutedSearchMixin, LargeTableAdmin):
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # accounts are disabled, never deleted: their tokens and usage keep pointing at them

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")


class IdentityInline(admin.TabularInline):
    model = OAuthIdentity
    fields = ("provider", "provider_user_id", "email", "email_verified", "created_at", "last_login_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AccountCreateForm(forms.ModelForm):
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Optional: without one, the account signs in only with GitHub or Google.",
    )

    class Meta:
        model = Account
        fields = ("studio", "email", "display_name")


ACCOUNT_FIELDS = (
    "id",
    "studio",
    "email",
    "display_name",
    "status",
    "email_verified",
    "created_at",
    "updated_at",
    "last_login_at",
    "disabled_at",
)


@admin.register(Account)
class AccountAdmin(ReadOnlyDetailAdmin):
    form = AccountCreateForm
    list_display = ("email", "display_name", "studio", "status", "email_verified", "created", "last_login_at")
    list_select_related = ("studio",)
    list_filter = ("status",)
    raw_id_fields = ("studio",)
    search_fields = ("email", "display_name")
    search_routes = (("acct_", "id"), ("studio_", "studio_id"))
    search_help_text = "An account id (acct_…), a studio id (studio_…), or part of an email or name."
    sortable_by = ("email", "created")
    inlines = [IdentityInline]
    actions = ["disable_accounts", "enable_accounts"]

    @admin.display(description="created", ordering="id")
    def created(self, account: Account) -> Any:
        return account.created_at

    def get_fields(self, request: HttpRequest, obj: Account | None = None) -> tuple[str, ...]:
        return ("studio", "email", "display_name", "password") if obj is None else ACCOUNT_FIELDS

    def get_inlines(self, request: HttpRequest, obj: Account | None) -> list[Any]:
        return self.inlines if obj is not None else []

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "studio":
            kwargs["queryset"] = Studio.objects.exclude(status=Studio.Status.REMOVED)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Account, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        account = run_operation(
            "accounts/create",
            obj.studio_id,
            lambda: operations.create_account(
                obj.studio_id,
                data["email"],
                display_name=data.get("display_name", ""),
                password=data.get("password") or None,
                email_verified=True,
                actor=request.user,
            ),
        )
        adopt(obj, account)

    @admin.action(description="Disable selected accounts (their tokens are revoked)", permissions=["manage"])
    def disable_accounts(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(
            request,
            queryset,
            "accounts/disable",
            operations.disable_account,
            "{count} account(s) disabled; their tokens stop working within seconds.",
        )

    @admin.action(description="Enable selected accounts", permissions=["manage"])
    def enable_accounts(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, "accounts/enable", operations.enable_account, "{count} account(s) enabled.")

    def _each(self, request: HttpRequest, queryset: QuerySet, action: str, operation: Any, success: str) -> None:
        accounts = bounded_rows(request, queryset, "accounts")
        if accounts is None:
            return
        outcome = BulkOutcome(self, request)
        for account in accounts:
            outcome.attempt(action, account.id, partial(operation, account.id, actor=request.user))
        outcome.report(success)


class StudioAccountSettingsForm(forms.ModelForm):
    class Meta:
        model = StudioAccountSettings
        fields = ("studio", "self_registration")


@admin.register(StudioAccountSettings)
class StudioAccountSettingsAdmin(OperationsAdminMixin, LargeTableAdmin):
    """Saving calls operations.set_self_registration (audited)."""

    form = StudioAccountSettingsForm
    list_display = ("studio", "self_registration", "updated_at")
    list_select_related = ("studio",)
    raw_id_fields = ("studio",)
    sortable_by = ("updated_at",)

    def get_readonly_fields(self, request: HttpRequest, obj: StudioAccountSettings | None = None) -> tuple[str, ...]:
        return ("studio",) if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: StudioAccountSettings, form: forms.ModelForm, change: bool) -> None:
        row = run_operation(
            "accounts/settings",
            obj.studio_id,
            lambda: operations.set_self_registration(obj.studio_id, obj.self_registration, actor=request.user),
        )
        adopt(obj, row)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OAuthFlow)
class OAuthFlowAdmin(LargeTableAdmin):
    """OAuth sign-ins in progress and recently finished, read-only (no verifier, no digests)."""

    list_display = ("provider", "studio", "app_name", "purpose", "status", "failure_code", "created_at", "expires_at")
    list_select_related = ("studio",)
    list_filter = ("provider", "status")
    fields = (
        "provider",
        "studio",
        "app_name",
        "redirect_uri",
        "purpose",
        "status",
        "failure_code",
        "failure_message",
        "account",
        "created_at",
        "expires_at",
        "finished_at",
    )
    sortable_by = ("created_at",)
    ordering = ("-created_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
