"""HTTP URLs: dashboard, login/logout, admin, health, metrics."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from webapp import views
from webapp.metrics_view import metrics_view
from webapp.signin.forms import LoginForm

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=LoginForm),
         name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
