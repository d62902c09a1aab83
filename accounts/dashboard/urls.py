"""/dashboard/keys and its forms (included by city/urls.py at dashboard/)."""

from django.urls import path
from django.views.generic import RedirectView

from accounts.dashboard import views

urlpatterns = [
    path("", RedirectView.as_view(url="/dashboard/keys", query_string=True)),  # /dashboard/ is where people look first
    path("keys", views.keys, name="dashboard-keys"),
    path("keys/signin", views.signin, name="dashboard-signin"),
    path("keys/signout", views.signout, name="dashboard-signout"),
    path("keys/oauth/start", views.oauth_start, name="dashboard-oauth-start"),
    path("keys/oauth/finish", views.oauth_finish, name="dashboard-oauth-finish"),
    path("keys/create", views.create_key, name="dashboard-create-key"),
    path("keys/revoke", views.revoke_key, name="dashboard-revoke-key"),
]
