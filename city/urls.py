from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from city import dispatch
from city.home import home
from city.metrics_view import metrics_view

urlpatterns = [
    path("", home),
    path("metrics", metrics_view),  # Prometheus; guarded by CITY_METRICS_KEY or the admin key
    path("v1/services", dispatch.services),
    re_path(r"^v1/(?P<route>[a-z0-9_\-]+/[a-z0-9_\-/.]+)$", dispatch.dispatch),
    re_path(r"^v1/(?P<route>[a-z0-9_\-.]+)$", dispatch.dispatch),  # aliases such as /v1/models, /v1/openapi.json
    re_path(r"^v1(?:/(?P<route>.*))?$", dispatch.not_found),
    # The apps' pages inside the admin first: the admin's catch-all would answer 404 for them.
    *(path(prefix, include(urlconf)) for prefix, urlconf in settings.CITY_ADMIN_PAGES.items()),
    path("admin/", admin.site.urls),
    # The apps' own pages, named in settings (city/ names no app).
    *(path(prefix, include(urlconf)) for prefix, urlconf in settings.CITY_APP_PAGES.items()),
]

handler400 = "city.errors.handler400"
handler403 = "city.errors.handler403"
handler404 = "city.errors.handler404"
handler500 = "city.errors.handler500"
