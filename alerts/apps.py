"""App config for alert rules: rules that watch sources with no browser open."""

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    """Alert rules, destinations, firings; the rule tasks and their supervisor."""

    name = "alerts"
    verbose_name = "Alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        """Check ALERT_INTERNAL_ALLOW; restart or revoke a rule's task on save or delete."""
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        from alerts import signals
        from feeds.reach import parse_allow

        try:
            parse_allow(settings.ALERT_INTERNAL_ALLOW)
        except ValueError as error:
            raise ImproperlyConfigured(f"ALERT_INTERNAL_ALLOW: {error}") from None
        signals.connect()
