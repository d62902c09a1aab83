"""Two admin pages of the AI hub, for people rather than machines: the usage dashboard
(/admin/usage/) and the model board (/admin/models/, with its test button).

Both are views of Django's admin site (`admin.site.admin_view`: staff only, others go to the admin's
sign-in page) mounted before it through settings.CITY_ADMIN_PAGES. The dashboard reads the rollups
only (aihub/usage_query.py and aihub/dashboard_data.py: the daily ones for a range's whole days, the
hourly ones for its ragged ends), in a fixed number of queries whatever the range or the number of
records (timed by bench/usage_scale.py).
"""

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from aihub.catalog import models_by_id
from aihub.catalog_types import Model
from aihub.dashboard_data import by_day_and_model, per_day, top, totals_of
from aihub.model_test import TestOutcome, is_media, try_model
from aihub.money_json import usd_decimal
from aihub.svg_charts import PALETTE, Series, side_by_side_bars, stacked_bars
from aihub.upstreams import callable_upstreams
from aihub.usage_query import UsageFilter, grouped
from city.runtime_env import runtime_env
from studios.models import Studio, UserToken
from studios.spend import usd_text

RANGES = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
    "90d": ("Last 90 days", timedelta(days=90)),
}
DEFAULT_RANGE = "7d"
MAX_RANGE_DAYS = 366  # a chart of a year's days is still readable; beyond, a bar is under a pixel
STACKED_MODELS = 8  # the models that cost most get a colour each; the rest share "other models"
TOP_ROWS = 10
TEST_STUDIO_SESSION_KEY = "aihub_model_test_studio"


def dollars(cost: int) -> str:
    """1e-12 USD → '$0.000123', exact."""
    return usd_text(usd_decimal(cost))


def per_million(micro_usd: int) -> str:
    return usd_text(Decimal(micro_usd).scaleb(-6))


def per_unit(model: Model) -> str:
    """A media model's price per image, character or second ("$0.04 / image"), variants aside; "—" for text models."""
    if not model.unit:
        return "—"
    return f"{usd_text(Decimal(model.unit_price).scaleb(-12))} / {model.unit.removesuffix('s')}"


# --- The usage dashboard ----------------------------------------------------------------------


FIRST_YEAR, LAST_YEAR = 1970, 9000  # as ai/usage takes; the day after 9999-12-31 is no date


class RangeForm(forms.Form):
    range = forms.ChoiceField(choices=[*((k, label) for k, (label, _) in RANGES.items()), ("custom", "From … to …")], required=False)
    start = forms.DateField(required=False, label="from", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="to (inclusive)", widget=forms.DateInput(attrs={"type": "date"}))
    studio = forms.RegexField(
        regex=r"^studio_[A-Za-z0-9]{1,40}$",
        required=False,
        max_length=48,
        label="studio id",
        error_messages={"invalid": "A studio id looks like studio_…; leave it empty for every studio."},
    )
    model = forms.CharField(required=False, max_length=100)

    def clean_model(self) -> str:
        model = self.cleaned_data["model"]
        if model and model not in models_by_id():
            raise forms.ValidationError(f"No model '{model}' in the catalog; leave it empty for every model.")
        return model

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("range") == "custom":
            start, end = data.get("start"), data.get("end")
            if start is None or end is None:
                raise forms.ValidationError("Give both dates for a custom range (from and to).")
            if end < start:
                raise forms.ValidationError("The end date is before the start date.")
            if not (FIRST_YEAR <= start.year and end.year <= LAST_YEAR):
                raise forms.ValidationError(f"Choose dates between {FIRST_YEAR} and {LAST_YEAR}.")
            if (end - start).days + 1 > MAX_RANGE_DAYS:
                raise forms.ValidationError(f"Choose at most {MAX_RANGE_DAYS} days.")
        return data

    def window(self, now: datetime) -> tuple[datetime, datetime, str]:
        """(start, end, a title) of a valid form."""
        data = self.cleaned_data
        choice = data.get("range") or DEFAULT_RANGE
        if choice == "custom":
            start = datetime.combine(data["start"], time(), tzinfo=UTC)
            end = datetime.combine(data["end"] + timedelta(days=1), time(), tzinfo=UTC)
            return start, end, f"{data['start']} to {data['end']} (UTC)"
        label, span = RANGES[choice]
        return now - span, now, label


def days_between(start: datetime, end: datetime) -> list[date]:
    first, last = start.astimezone(UTC).date(), (end - timedelta(microseconds=1)).astimezone(UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def spend_chart(rows: list[dict[str, Any]], days: list[date]) -> tuple[Any, list[tuple[str, str, int]]]:
    """The stacked spend chart of by_day_and_model's rows, and its legend [(model, colour, cost)]."""
    by_model: dict[str, dict[date, int]] = defaultdict(dict)
    for row in rows:
        by_model[row["model"]][row["day"].date()] = row["cost"] or 0
    ranked = sorted(by_model, key=lambda m: (-sum(by_model[m].values()), m))
    shown, rest = ranked[:STACKED_MODELS], ranked[STACKED_MODELS:]
    series = [Series(m, [by_model[m].get(d, 0) for d in days], PALETTE[i]) for i, m in enumerate(shown)]
    if rest:
        series.append(Series("other models", [sum(by_model[m].get(d, 0) for m in rest) for d in days], PALETTE[-2]))
    legend = [(s.label, s.color, sum(s.values)) for s in series]
    chart = stacked_bars("Spend per day, stacked by model", [d.strftime("%m-%d") for d in days], series, dollars, "spend (USD)")
    return chart, legend


def traffic_chart(rows: list[dict[str, Any]], days: list[date]) -> Any:
    daily = {day.date(): sums for day, sums in per_day(rows).items()}
    requests = Series("requests", [daily[d]["requests"] if d in daily else 0 for d in days], PALETTE[0])
    errors = Series("errors", [daily[d]["errors"] if d in daily else 0 for d in days], PALETTE[5])
    return side_by_side_bars("Requests and errors per day", [d.strftime("%m-%d") for d in days], [requests, errors], str, "calls")


def require_usage_view(request: HttpRequest) -> None:
    """Staff who may view the usage records may see what they sum; other staff get 403."""
    if not request.user.has_perm("aihub.view_usagerecord"):
        raise PermissionDenied


def dashboard_view(request: HttpRequest) -> HttpResponse:
    require_usage_view(request)
    form = RangeForm(request.GET or None)
    now = timezone.now()
    if form.is_bound and not form.is_valid():
        for error in [
            *form.non_field_errors(),
            *(f"{form[name].label}: {e}" for name, errs in form.errors.items() if name != "__all__" for e in errs),
        ]:
            messages.error(request, f"{error} Showing the last 7 days instead.")
        form = RangeForm({"range": DEFAULT_RANGE})
        form.is_valid()
    elif not form.is_bound:
        form = RangeForm({"range": DEFAULT_RANGE})
        form.is_valid()
    start, end, period = form.window(now)
    data = form.cleaned_data
    f = UsageFilter(start=start, end=end, studio_id=data.get("studio") or None, model=data.get("model") or None)
    days = days_between(start, end)
    rows = by_day_and_model(f)
    summed = totals_of(rows)
    spend_svg, legend = spend_chart(rows, days)
    top_studios, top_tokens = top(f, "studio", TOP_ROWS), top(f, "token", TOP_ROWS)
    studios = Studio.objects.in_bulk([row["key"] for row in top_studios])
    tokens = UserToken.objects.only("id", "name", "prefix", "studio_id").in_bulk([row["key"] for row in top_tokens])
    for row in top_studios:
        row["studio"] = studios.get(row["key"])
    for row in top_tokens:
        row["token"] = tokens.get(row["key"])
    error_rate = f"{summed['errors'] / summed['requests']:.2%}" if summed["requests"] else "—"
    context = {
        **admin.site.each_context(request),
        "title": "Usage",
        "form": form,
        "period": period,
        "start": start,
        "end": end,
        "totals": summed,
        "spend": dollars(summed["cost"]),
        "error_rate": error_rate,
        "spend_svg": spend_svg,
        "legend": [(model, color, dollars(cost)) for model, color, cost in legend],
        "traffic_svg": traffic_chart(rows, days),
        "top_studios": [{**row, "spend": dollars(row["cost"])} for row in top_studios],
        "top_tokens": [{**row, "spend": dollars(row["cost"])} for row in top_tokens],
        "models": sorted(models_by_id()),
        "request_log": reverse("admin:aihub_usagerecord_changelist"),
    }
    return TemplateResponse(request, "admin/aihub/usage_dashboard.html", context)


# --- The model board --------------------------------------------------------------------------


def model_rows(now: datetime) -> list[dict[str, Any]]:
    """Every catalog model with its callability, missing env, prices and its last 24 hours (one query)."""
    catalog = list(models_by_id().values())
    callable_ids = async_to_sync(_callable_ids)(catalog)
    traffic = {row["key"]: row for row in grouped(UsageFilter(start=now - timedelta(hours=24), end=now), "model")}
    rows = []
    for model in catalog:
        used = traffic.get(model.id, {})
        requests, errors = used.get("requests", 0), used.get("errors", 0)
        missing = [req.key for req in model.env_requirements() if req.required and not runtime_env.get(req.key)]
        rows.append(
            {
                "model": model,
                "providers": ", ".join(dict.fromkeys(d.provider for d in model.deployments)),
                "callable": model.id in callable_ids,
                "missing": missing,
                "input_price": per_million(model.input_price),
                "output_price": per_million(model.output_price),
                "unit_price": per_unit(model),
                "media": is_media(model),
                "requests": requests,
                "errors": errors,
                "error_rate": f"{errors / requests:.1%}" if requests else "—",
                "spend": dollars(used.get("cost", 0)),
            }
        )
    return rows


async def _callable_ids(catalog: list[Model]) -> set[str]:
    return {model.id for model in catalog if await callable_upstreams(model)}


def board_response(request: HttpRequest, outcome: TestOutcome | None = None, studio_id: str = "") -> HttpResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Models",
        "rows": model_rows(timezone.now()),
        "outcome": outcome,
        "studio_id": studio_id or request.session.get(TEST_STUDIO_SESSION_KEY, ""),
        "env_page": reverse("admin:city_envvar_changelist"),
    }
    return TemplateResponse(request, "admin/aihub/model_board.html", context)


def model_board_view(request: HttpRequest) -> HttpResponse:
    require_usage_view(request)
    return board_response(request)


class ModelTestForm(forms.Form):
    model = forms.CharField(max_length=100)
    studio_id = forms.RegexField(
        regex=r"^studio_[A-Za-z0-9]{1,40}$",
        max_length=48,
        error_messages={"invalid": "A studio id looks like studio_…", "required": "Name the studio the test call is billed to."},
    )

    def clean_model(self) -> str:
        model = self.cleaned_data["model"]
        if model not in models_by_id():
            raise forms.ValidationError(f"No model '{model[:100]}' in the catalog.")
        return model


@require_POST
def model_test_view(request: HttpRequest) -> HttpResponse:
    """Runs the test call and shows the board with its outcome (a refusal or an upstream failure included).

    Superusers only: the call is made with the admin identity, which passes every check of the API.
    """
    if not request.user.is_superuser:
        raise PermissionDenied
    form = ModelTestForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return board_response(request, studio_id=request.POST.get("studio_id", "")[:48])
    model, studio_id = form.cleaned_data["model"], form.cleaned_data["studio_id"]
    request.session[TEST_STUDIO_SESSION_KEY] = studio_id
    outcome = async_to_sync(try_model)(request, model, studio_id, who=request.user.get_username())
    return board_response(request, outcome, studio_id)


def urls() -> list[Any]:
    view = admin.site.admin_view
    return [
        path("usage/", view(dashboard_view), name="aihub_usage_dashboard"),
        path("models/", view(model_board_view), name="aihub_model_board"),
        path("models/test/", view(model_test_view), name="aihub_model_test"),
    ]


urlpatterns = urls()
# Shown on the admin's home page (city/templatetags/admin_pages.py).
INDEX_LINKS = [
    ("aihub_usage_dashboard", "Usage dashboard", "Spend, calls and errors per day, by model, studio and token"),
    ("aihub_model_board", "Model board", "Every model: callable or not, its prices, its last 24 hours, a test call"),
    ("admin:aihub_usagerecord_changelist", "Request log", "One row per AI call"),
]
