"""HTTP URLs: dashboard, login/logout, admin, health, metrics."""

from django.contrib import admin
from django.urls import include, path

from webapp import views
from webapp.metrics_view import metrics_view
from webapp.signin.views import CallbackView, LoginPage, SignInView, SignOutView, admin_login
from webapp.streams import httpviews

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("accounts/login/", LoginPage.as_view(), name="login"),
    path("accounts/logout/", SignOutView.as_view(), name="logout"),
    path("oidc/signin/", SignInView.as_view(), name="oidc_signin"),
    path("oidc/callback/", CallbackView.as_view(), name="oidc_authentication_callback"),
    path("admin/login/", admin_login),
    path("admin/", admin.site.urls),
    # Streams over plain HTTP (long polling), where WebSockets cannot pass a proxy.
    path("streams/poll/<str:token>/", httpviews.stream, name="stream_poll"),
    path("streams/<str:kind_url>/<str:source_id>/", httpviews.start, name="stream_start"),
    path("alerts/", include("alerts.urls")),
]
