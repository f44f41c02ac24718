"""Feed sources: an RSS or Atom URL polled by a Celery queue's workers."""

from django.core.validators import MinValueValidator, URLValidator
from django.db import models

from feeds.upstream import MIN_INTERVAL
from webapp.models import Source, validate_queue


class FeedSource(Source):
    """An RSS/Atom feed, polled every `interval` seconds while someone watches it."""

    url = models.URLField(max_length=2000, validators=[URLValidator(schemes=["http", "https"])])
    interval = models.PositiveIntegerField(default=60, validators=[MinValueValidator(MIN_INTERVAL)],
                                           help_text=f"Seconds between polls (at least {MIN_INTERVAL}).")
    queue = models.CharField(max_length=100, default="feeds", validators=[validate_queue],
                             help_text="Celery queue whose workers fetch this feed.")

    class Meta(Source.Meta):
        verbose_name = "feed source"
