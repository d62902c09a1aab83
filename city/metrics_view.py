"""GET /metrics: the Prometheus exposition of every process (city/metrics.py), for a scraper holding
CITY_METRICS_KEY or the admin key. A metrics key lets Prometheus read the numbers without holding the
key that opens everything; both are compared in constant time."""

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from city import metrics
from city.errors import ApiError
from city.identity import bearer_credential, is_admin_secret


def may_scrape(credential: str) -> bool:
    key = settings.CITY_METRICS_KEY
    # Both comparisons always run: the time taken says nothing about which key was close.
    by_metrics_key = bool(key) & hmac.compare_digest(credential.encode(), (key or "\0").encode())
    return by_metrics_key | is_admin_secret(credential)


@csrf_exempt  # bearer credentials, not cookies
def metrics_view(request: HttpRequest) -> HttpResponse:
    try:
        if request.method not in ("GET", "HEAD"):
            raise ApiError(
                405, f"{request.method} is not allowed on /metrics; use GET.", code="method_not_allowed", headers={"Allow": "GET"}
            )
        credential = bearer_credential(request)
        if credential is None or not may_scrape(credential):
            raise ApiError(
                401,
                "Send the metrics key (CITY_METRICS_KEY) or the admin key as 'Authorization: Bearer <key>'.",
                code="invalid_metrics_key" if credential else "missing_credential",
            )
    except ApiError as exc:
        return exc.response()
    if not metrics.ENABLED:
        return ApiError(404, "Metrics are off on this server (CITY_METRICS=off).", code="metrics_off").response()
    body, content_type = metrics.render()
    return HttpResponse(b"" if request.method == "HEAD" else body, content_type=content_type)
