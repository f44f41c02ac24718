"""App config for feed watching."""

from django.apps import AppConfig


class FeedsConfig(AppConfig):
    """Feed sources, the watch engine and the feed task."""

    name = "feeds"
    verbose_name = "Feeds"
