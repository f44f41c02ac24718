"""URLs of the alerts app: the Alerts page."""

from django.urls import path

from alerts import views

urlpatterns = [
    path("", views.alert_events, name="alerts"),
]
