"""GET /v1/reference: the API reference, Swagger UI rendering /v1/openapi.json.

Swagger UI comes from the drf-spectacular-sidecar package, collected into City's static files
(`make migrate`); nothing loads from another origin, and the page's Content-Security-Policy says so.
"""

from django.http import HttpResponse
from django.template.loader import render_to_string
from django.urls import get_script_prefix

from city.calls import Call

SWAGGER_UI = "drf_spectacular_sidecar/swagger-ui-dist/"
# Own origin only. Swagger UI sets inline styles and shows data: images; it runs no inline script.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def reference_page(call: Call) -> HttpResponse:
    html = render_to_string("city/reference.html", {"swagger_ui": SWAGGER_UI, "openapi_url": f"{get_script_prefix()}v1/openapi.json"})
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response
