"""Query options of a feed stream: `entries` (how many newest entries to send first)."""

from django.conf import settings

from webapp.streams.options import int_option


def parse(query):
    """Return {'entries': int} from a parsed query string."""
    return {"entries": int_option(query, "entries", settings.FEED_DEFAULT_ENTRIES, 0,
                                  settings.FEED_MAX_ENTRIES)}
