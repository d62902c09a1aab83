"""The studios admin: studios (pause, activate, remove), their user tokens (issue, revoke, rotate),
plans (create, change, remove) and who holds them.

Every change calls `studios.operations` or `studios.plan_operations` with `actor=request.user`;
studio and token detail pages are read-only apart from their plan, changed on a page of its own.
"""

from decimal import Decimal
from functools import partial
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html

from city.admin_toolkit import (
    BulkOutcome,
    LargeTableAdmin,
    OperationFailed,
    OperationsAdminMixin,
    RoutedSearchMixin,
    adopt,
    bounded_rows,
    changelist_url,
    run_operation,
    starts_with,
)
from studios import operations, plan_operations
from studios.models import Plan, Studio, UserToken
from studios.money import MAX_USD, MICROS_PER_USD, micros_to_decimal
from studios.serializers import MAX_MODEL_PATTERNS, MODEL_PATTERN
from studios.spend import activity_text, spend_text, usd_text

SECRETS_TEMPLATE = "admin/studios/usertoken/secrets.html"
ASSIGN_PLAN_TEMPLATE = "admin/studios/assign_plan.html"


class ManagedByOperationsAdmin(OperationsAdminMixin, RoutedSearchMixin, LargeTableAdmin):
    """Detail pages are views; changes are the bulk actions and the add form, through the operations."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # studios are removed (soft) and tokens revoked, never deleted

    def has_manage_permission(self, request: HttpRequest) -> bool:
        """Who may run the bulk actions: holders of Django's change permission (superusers do)."""
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")


class PlanHolderAdmin(ManagedByOperationsAdmin):
    """A studio's or a token's plan on its detail page, and a page of its own to change it.

    The change goes through plan_operations.assign_plan: audited, and every process drops what it
    cached of that studio or token.
    """

    holder_kind = ""  # "studio" or "token": the spend hook's kind and assign_plan's keyword

    def get_urls(self) -> list[Any]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_plan"
        own = [path("<path:object_id>/plan/", self.admin_site.admin_view(self.plan_view), name=name)]
        return own + super().get_urls()

    @admin.display(description="plan")
    def plan_link(self, holder: Studio | UserToken) -> str:
        change = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_plan", args=[holder.pk])
        if holder.plan_id is None:
            return format_html('none · <a href="{}">Give it a plan</a>', change)
        plan_page = reverse("admin:studios_plan_change", args=[holder.plan_id])
        return format_html('<a href="{}">{}</a> · <a href="{}">Change its plan</a>', plan_page, holder.plan, change)

    @admin.display(description="this month's spend")
    def month_spend(self, holder: Studio | UserToken) -> str:
        return spend_text(self.holder_kind, holder.pk)

    @admin.display(description="this month's calls")
    def month_calls(self, holder: Studio | UserToken) -> str:
        return self._activity(holder)[0]

    @admin.display(description="last call")
    def last_call(self, holder: Studio | UserToken) -> str:
        return self._activity(holder)[1]

    def _activity(self, holder: Studio | UserToken) -> tuple[str, str]:
        # Both fields come from one read of the rollups, kept on the object for this page.
        if not hasattr(holder, "_month_activity"):
            holder._month_activity = activity_text(self.holder_kind, holder.pk)  # type: ignore[union-attr]
        return holder._month_activity  # type: ignore[union-attr]

    def plan_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        holder = self.get_object(request, object_id)
        if holder is None:
            raise Http404(f"No {self.opts.verbose_name} {object_id}")
        if not self.has_manage_permission(request):
            raise PermissionDenied
        change_page = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[holder.pk])
        form = AssignPlanForm(request.POST or None, initial={"plan": holder.plan_id})
        if request.method == "POST" and form.is_valid():
            plan = form.cleaned_data["plan"]
            try:
                run_operation(
                    "studios/plans/assign",
                    holder.pk,
                    lambda: plan_operations.assign_plan(
                        plan.id if plan else None, actor=request.user, **{f"{self.holder_kind}_id": holder.pk}
                    ),
                )
            except OperationFailed as failure:
                self.report_failure(request, failure)
            else:
                messages.success(request, f"{holder} now has {'plan ' + plan.name if plan else 'no plan'}.")
                return HttpResponseRedirect(change_page)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Plan of {holder}",
            "holder": holder,
            "form": form,
            "change_page": change_page,
        }
        return TemplateResponse(request, ASSIGN_PLAN_TEMPLATE, context)


class AssignPlanForm(forms.Form):
    plan = forms.ModelChoiceField(
        queryset=Plan.objects.order_by("name"),
        required=False,
        empty_label="No plan",
        help_text="A token's plan wins over its studio's for the model list and the per-request cap; "
        "each plan's budget and rates apply to its holder.",
    )


# --- Studios ---------------------------------------------------------------------------------

STUDIO_FIELDS = (
    "id",
    "name",
    "status",
    "plan_link",
    "month_spend",
    "month_calls",
    "last_call",
    "created_at",
    "updated_at",
    "paused_at",
    "removed_at",
    "tokens",
)


@admin.register(Studio)
class StudioAdmin(PlanHolderAdmin):
    holder_kind = "studio"
    list_display = ("id", "name", "status", "created", "plan")
    list_select_related = ("plan",)
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
    """Studio, name, optional expiry and plan; the secret is made by operations.issue_token."""

    class Meta:
        model = UserToken
        fields = ("studio", "name", "expires_at", "plan")
        help_texts = {
            "expires_at": "Optional. After this time the token gets 401.",
            "plan": "Optional. Limits this token alone, and wins over its studio's plan for the model list and the per-request cap.",
        }

    def clean_expires_at(self) -> Any:
        # issue_token refuses it too; checked here so the form shows the error beside the field.
        expires_at = self.cleaned_data["expires_at"]
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("Choose a time in the future, or leave it empty for a token that does not expire.")
        return expires_at


TOKEN_FIELDS = (
    "id",
    "studio",
    "name",
    "prefix",
    "status",
    "account_link",
    "plan_link",
    "month_spend",
    "month_calls",
    "last_call",
    "created_at",
    "expires_at",
    "last_used_at",
    "rotated_at",
    "revoked_at",
)


@admin.register(UserToken)
class UserTokenAdmin(PlanHolderAdmin):
    """Tokens without their secrets: the digest is never displayed, the prefix is read-only."""

    holder_kind = "token"
    form = TokenIssueForm
    exclude = ("digest",)
    list_display = ("prefix", "name", "studio", "account_link", "status", "created", "last_used_at", "expires_at", "revoked_at", "plan")
    list_select_related = ("studio", "plan", "account")
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
        return ("studio", "name", "expires_at", "plan") if obj is None else TOKEN_FIELDS

    @admin.display(description="account")
    def account_link(self, token: UserToken) -> str:
        """The account that owns the token, linked to its admin page; "—" for a studio's own token."""
        if token.account_id is None:
            return "—"
        # The account's admin page by the foreign key's model: studios name no accounts module.
        opts = UserToken._meta.get_field("account").related_model._meta
        page = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[token.account_id])
        return format_html('<a href="{}">{}</a>', page, token.account)

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
            lambda: operations.issue_token(obj.studio_id, obj.name, expires_at=obj.expires_at, actor=request.user, plan_id=obj.plan_id),
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


# --- Plans -----------------------------------------------------------------------------------


def dollars_field(label: str, help_text: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=False,
        min_value=0,
        max_value=MAX_USD + Decimal("0.999999"),
        max_digits=15,
        decimal_places=6,
        help_text=help_text + " US dollars, up to 6 decimals; empty: no limit.",
    )


class PlanForm(forms.ModelForm):
    """Dollars as decimals (stored as micro-dollars), the model list one pattern per line."""

    MODEL_CHOICES = [("all", "Every model"), ("listed", "Only the models listed below (none if the list is empty)")]
    models_allowed = forms.ChoiceField(label="Models", choices=MODEL_CHOICES, widget=forms.RadioSelect, initial="all")
    model_patterns = forms.CharField(
        label="Model list",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 40}),
        help_text="One model id or glob pattern per line, such as gpt-5* or deepseek-v4-flash (case-sensitive).",
    )
    max_cost_per_request_usd = dollars_field("Max cost per request", "The worst-case cost one call may reach.")
    monthly_budget_usd = dollars_field("Monthly budget", "Per UTC calendar month.")

    class Meta:
        model = Plan
        fields = ("name", "rpm", "tpm", "max_concurrency")
        labels = {"rpm": "Requests per minute", "tpm": "Tokens per minute", "max_concurrency": "Concurrent calls"}
        help_texts = {"rpm": "Empty: no limit.", "tpm": "Input and output tokens. Empty: no limit.", "max_concurrency": "Empty: no limit."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plan = self.instance
        if not plan._state.adding:
            self.initial["models_allowed"] = "all" if plan.models is None else "listed"
            self.initial["model_patterns"] = "\n".join(plan.models or [])
            self.initial["max_cost_per_request_usd"] = micros_to_decimal(plan.max_cost_per_request)
            self.initial["monthly_budget_usd"] = micros_to_decimal(plan.monthly_budget)

    def clean_model_patterns(self) -> list[str]:
        patterns = [line.strip() for line in self.cleaned_data["model_patterns"].splitlines() if line.strip()]
        for pattern in patterns:
            if not MODEL_PATTERN.fullmatch(pattern):
                raise forms.ValidationError(
                    f"'{pattern[:50]}' is not a model id or pattern: one per line, no spaces, at most 200 characters."
                )
        if len(patterns) > MAX_MODEL_PATTERNS:
            raise forms.ValidationError(f"At most {MAX_MODEL_PATTERNS} models or patterns.")
        return patterns

    def plan_fields(self) -> dict[str, Any]:
        """What the operations take: micro-dollars, and None for every model."""
        data = self.cleaned_data
        to_micros = lambda dollars: None if dollars is None else int(dollars * MICROS_PER_USD)  # noqa: E731
        return {
            "name": data["name"],
            "models": None if data["models_allowed"] == "all" else data["model_patterns"],
            "max_cost_per_request": to_micros(data["max_cost_per_request_usd"]),
            "monthly_budget": to_micros(data["monthly_budget_usd"]),
            "rpm": data["rpm"],
            "tpm": data["tpm"],
            "max_concurrency": data["max_concurrency"],
        }


@admin.register(Plan)
class PlanAdmin(OperationsAdminMixin, admin.ModelAdmin):
    """Plans are few: a plain list, with what each allows and how many live studios and tokens hold it."""

    form = PlanForm
    list_display = ("name", "id", "models_shown", "cost_cap", "budget", "rpm", "tpm", "max_concurrency", "studios", "tokens")
    search_fields = ("name",)
    readonly_fields = ("id", "studios", "tokens", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "models_allowed", "model_patterns")}),
        ("Money", {"fields": ("max_cost_per_request_usd", "monthly_budget_usd")}),
        ("Rates", {"fields": ("rpm", "tpm", "max_concurrency")}),
    )
    actions: list[Any] = []  # no bulk delete: each removal checks who holds the plan

    def get_fieldsets(self, request: HttpRequest, obj: Plan | None = None) -> Any:
        if obj is None:
            return self.fieldsets
        return ((None, {"fields": ("id", "studios", "tokens", "created_at", "updated_at")}), *self.fieldsets)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return plan_operations.plans_with_usage()

    @admin.display(description="models")
    def models_shown(self, plan: Plan) -> str:
        if plan.models is None:
            return "every model"
        return ", ".join(plan.models) if plan.models else "none"

    @admin.display(description="max cost per request")
    def cost_cap(self, plan: Plan) -> str:
        return "no cap" if plan.max_cost_per_request is None else usd_text(Decimal(plan.max_cost_per_request).scaleb(-6))

    @admin.display(description="monthly budget")
    def budget(self, plan: Plan) -> str:
        return "no budget" if plan.monthly_budget is None else usd_text(Decimal(plan.monthly_budget).scaleb(-6))

    @admin.display(description="studios")
    def studios(self, plan: Plan) -> str:
        count = getattr(plan, "studios_count", 0)
        return format_html('<a href="{}">{}</a>', changelist_url(Studio, plan__id__exact=plan.id), count)

    @admin.display(description="tokens")
    def tokens(self, plan: Plan) -> str:
        count = getattr(plan, "tokens_count", 0)
        return format_html('<a href="{}">{}</a>', changelist_url(UserToken, plan__id__exact=plan.id), count)

    def save_model(self, request: HttpRequest, obj: Plan, form: forms.ModelForm, change: bool) -> None:
        fields = form.plan_fields()  # type: ignore[attr-defined]  # a PlanForm
        if change:
            plan = run_operation("studios/plans/update", obj.id, lambda: plan_operations.update_plan(obj.id, fields, actor=request.user))
        else:
            name = fields.pop("name")
            plan = run_operation("studios/plans/create", name, lambda: plan_operations.create_plan(name, fields, actor=request.user))
        adopt(obj, plan)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        plan = plan_operations.plans_with_usage().filter(id=object_id).first()
        if plan is not None and (plan.studios_count or plan.tokens_count):  # type: ignore[attr-defined]
            messages.error(
                request,
                f"Plan {plan.name} is assigned to {plan.studios_count} studio(s) and {plan.tokens_count} token(s); "  # type: ignore[attr-defined]
                "give each of them another plan or none (the “Change its plan” link on its page) before removing it.",
            )
            return HttpResponseRedirect(reverse("admin:studios_plan_change", args=[plan.id]))
        return super().delete_view(request, object_id, extra_context)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        # Removed studios and revoked or expired tokens let go of the plan in remove_plan: nothing protected.
        return [str(obj) for obj in objs], {"plans": len(objs)}, set(), []

    def delete_model(self, request: HttpRequest, obj: Plan) -> None:
        run_operation("studios/plans/remove", obj.id, lambda: plan_operations.remove_plan(obj.id, actor=request.user))
