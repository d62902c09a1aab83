"""`/`: a plain page for people who open City in a browser, leading to what they came for.

The links come from settings.CITY_HOME_LINKS, so that City names no app's pages itself.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    links = [{"title": title, "href": href, "text": text} for title, href, text in settings.CITY_HOME_LINKS]
    response = render(request, "city/home.html", {"links": links})
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    return response
