"""WebSocket consumer for log streams."""

from tailf import options
from tailf.models import LogSource
from tailf.tasks import tail_file
from webapp.streaming import StreamConsumer


class TailConsumer(StreamConsumer):
    """One log tail per connection: `/ws/tailf/<id>/?lines=N&grep=RE`."""

    kind = "log"
    source_model = LogSource
    task = tail_file

    def parse_options(self, query):
        """Parse `lines` and `grep`."""
        return options.parse(query)
