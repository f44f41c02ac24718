"""WebSocket consumer for feed streams."""

from feeds import options
from feeds.models import FeedSource
from feeds.tasks import watch_feed
from webapp.streaming import StreamConsumer


class FeedConsumer(StreamConsumer):
    """One feed watcher per connection: `/ws/feeds/<id>/?entries=N`."""

    kind = "feed"
    source_model = FeedSource
    task = watch_feed

    def parse_options(self, query):
        """Parse `entries`."""
        return options.parse(query)
