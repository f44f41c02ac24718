"""App config for log tailing."""

from django.apps import AppConfig


class TailfConfig(AppConfig):
    """Log sources, the tail engine and the tail task."""

    name = "tailf"
    verbose_name = "Log tail"
