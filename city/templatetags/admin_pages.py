"""The apps' own admin pages (settings.CITY_ADMIN_PAGES) as links on the admin's home page.

Each urlconf named there may list `INDEX_LINKS = [(url name, title, what it shows)]`; city reads
the list without knowing the app.
"""

from importlib import import_module
from typing import Any

from django import template
from django.conf import settings
from django.urls import reverse

register = template.Library()


@register.inclusion_tag("admin/city/app_pages.html")
def admin_pages() -> dict[str, Any]:
    links = []
    for urlconf in settings.CITY_ADMIN_PAGES.values():
        for name, title, description in getattr(import_module(urlconf), "INDEX_LINKS", ()):
            links.append({"url": reverse(name), "title": title, "description": description})
    return {"links": links}
