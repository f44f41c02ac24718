"""App config for the shared Tailboard core."""

from django.apps import AppConfig


class WebappConfig(AppConfig):
    """The project core: sources base, stream records, lifecycle and commands."""

    name = "webapp"
    verbose_name = "Tailboard"
