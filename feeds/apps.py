"""App config for feed watching: registers the `feed` source kind."""

from django.apps import AppConfig


def describe(source):
    """Where a feed source reads, in the active language: its URL and interval."""
    from django.utils.translation import gettext

    return gettext("{url} every {seconds} s").format(url=source.url, seconds=source.interval)


class FeedsConfig(AppConfig):
    """Feed sources, the feed watcher and the feed stream."""

    name = "feeds"
    verbose_name = "Feeds"

    def ready(self):
        """Check FEED_INTERNAL_ALLOW; register the feed kind with the stream lifecycle."""
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        from feeds import options, reach, stream

        try:
            reach.parse_allow(settings.FEED_INTERNAL_ALLOW)
        except ValueError as error:
            raise ImproperlyConfigured(f"FEED_INTERNAL_ALLOW: {error}") from None
        from webapp.streams.kinds import Kind, register

        register(Kind(slug="feed", label="Feeds", url="feeds", model="feeds.FeedSource",
                      run=stream.watch, parse_options=options.parse,
                      describe=describe,
                      task_name="feeds.watch_feed",
                      default_queue="feeds", options_template="feeds/options.html",
                      fields=("url", "interval"),
                      location_fields=("url",),
                      add_argument=("url", "http or https URL of an RSS/Atom feed."),
                      add_options=(("--interval", "interval", int,
                                    "Seconds between polls (min 5, default 60)."),)))
