"""The `tail_file` task: follows one log file for one WebSocket connection."""

import asyncio
import time

from celery import shared_task

from tailf.follow import Follower
from webapp import protocol
from webapp.tasking import StreamEnded, run_stream

IDLE_POLL_SECONDS = 0.1


@shared_task(bind=True, name="tailf.tail_file")
def tail_file(self, source_id, channel_name, options, stream_id=None):
    """Tail a log source and send its lines to the consumer at `channel_name`."""
    from tailf.models import LogSource

    source = LogSource.objects.filter(pk=source_id).first()
    worker = self.request.hostname or "unknown"

    async def body(out, worker_name):
        if source is None or not source.enabled:
            raise StreamEnded("error", f"log source {source_id} no longer exists or is disabled")
        await follow(out, worker_name, source, options)

    return run_stream(self.request.id, worker, channel_name, body)


async def follow(out, worker, source, options):
    """Send the backlog, report `running`, then send appended lines until cancelled."""
    from django.conf import settings

    matcher = compile_filter(options.get("grep"))
    follower = Follower(source.path, backlog=options.get("lines", 50), encoding=source.encoding,
                        max_line=settings.TAIL_MAX_LINE_BYTES)
    try:
        backlog = follower.start()
        await emit(out, backlog, matcher)
        await out.send(protocol.status("running", f"following {source.name}",
                                       worker=worker))
        while True:
            events = follower.poll(time.monotonic())
            if events:
                await emit(out, events, matcher)
            else:
                await asyncio.sleep(IDLE_POLL_SECONDS)
    finally:
        follower.close()


async def emit(out, events, matcher):
    """Send engine events: lines (filtered) as `lines` frames, notices as `notice`."""
    for kind, value in events:
        if kind == "lines":
            batch = [line for line in value if matcher(line)] if matcher else value
            if batch:
                await out.send_lines(batch)
        else:
            await out.notice(value)


def compile_filter(pattern):
    """Return a predicate for the `grep` option, or None when there is none."""
    if not pattern:
        return None
    from tailf.options import compile_grep

    return compile_grep(pattern).search
