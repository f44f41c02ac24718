"""App config for the shared Tailboard core."""

from django.apps import AppConfig


class WebappConfig(AppConfig):
    """The project core: sources base, stream records, lifecycle and commands."""

    name = "webapp"
    verbose_name = "Tailboard"

    def ready(self):
        """Load the Celery app (so the kinds' stream tasks bind to it); close requests' DBs."""
        import celery_app  # noqa: F401
        from webapp import dbconnections

        dbconnections.connect()
