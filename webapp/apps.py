"""App config for the shared Tailboard core."""

from django.apps import AppConfig


class WebappConfig(AppConfig):
    """The project core: sources base, stream records, lifecycle and commands."""

    name = "webapp"
    verbose_name = "Tailboard"

    def ready(self):
        """Load the Celery app, so the stream tasks the kinds make are bound to it."""
        import celery_app  # noqa: F401
