"""The `watch_feed` task: polls one feed for one WebSocket connection."""

import asyncio
import random

from celery import shared_task

from feeds.watch import FeedGone, FeedWatcher, FetchError
from webapp import protocol
from webapp.tasking import StreamEnded, run_stream

MAX_BACKOFF_SECONDS = 15 * 60


@shared_task(bind=True, name="feeds.watch_feed")
def watch_feed(self, source_id, channel_name, options, stream_id=None):
    """Watch a feed source and send its new entries to the consumer at `channel_name`."""
    from feeds.models import FeedSource

    source = FeedSource.objects.filter(pk=source_id).first()
    worker = self.request.hostname or "unknown"

    async def body(out, worker_name):
        if source is None or not source.enabled:
            raise StreamEnded("error", f"feed source {source_id} no longer exists or is disabled")
        await watch(out, worker_name, source, options)

    return run_stream(self.request.id, worker, channel_name, body)


async def watch(out, worker, source, options):
    """Send the baseline entries, report `running`, then send new entries each interval."""
    from django.conf import settings

    watcher = FeedWatcher(source.url, first_entries=options.get("entries", 10),
                          timeout=settings.FEED_FETCH_TIMEOUT, max_bytes=settings.FEED_MAX_BYTES)
    interval = max(settings.FEED_MIN_INTERVAL, source.interval)
    failures = 0
    running_sent = False
    async with watcher.client() as client:
        while True:
            try:
                result = await watcher.poll(client)
            except FeedGone as exc:
                raise StreamEnded("error", str(exc)) from None
            except FetchError as exc:
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, interval * 2 ** min(failures - 1, 10))
                delay = delay * random.uniform(0.8, 1.2)
                await out.notice(f"{exc}; retrying in {delay:.0f} s")
            else:
                if failures:
                    await out.notice(f"the feed answers again after {failures} failed "
                                     f"attempt{'s' if failures > 1 else ''}")
                failures = 0
                delay = interval
                for text in result.notices:
                    await out.notice(text)
                if result.entries or not running_sent:
                    await out.send(protocol.entries(result.entries))
            if not running_sent:
                running_sent = True
                await out.send(protocol.status(
                    "running", f"watching {source.name} every {interval} s",
                    worker=worker))
            await asyncio.sleep(delay)
