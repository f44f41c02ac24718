"""The feed kind's stream body: one viewer of one feed, fed from the fetch all viewers share."""

import asyncio
import random

from feeds import reach
from feeds.cache import SharedFeed
from feeds.watch import MIN_INTERVAL, FeedGone, FeedWatcher, Upstream, make_client
from webapp.streams import leases, protocol
from webapp.streams.task import StreamEnded
from webapp.streams.text import say

WAKE_SPREAD = 0.25


def entry_messages(items, limit=protocol.MAX_FRAME_BYTES):
    """Split entries into `entries` messages whose frames stay under the frame limit."""
    chunk, size = [], 40
    for item in items:
        cost = len(protocol.encode(item).encode()) + 1
        if chunk and size + cost > limit:
            yield protocol.entries(chunk)
            chunk, size = [], 40
        chunk.append(item)
        size += cost
    if chunk:
        yield protocol.entries(chunk)


async def watch(out, source, options, worker):
    """Send the baseline entries, report `running`, then send what is new each interval."""
    from django.conf import settings

    interval = max(MIN_INTERVAL, source.interval)
    viewer = FeedWatcher(source.url, first_entries=options.get("entries", 10),
                         resume=options.get("resume"))
    redis = leases.async_client()
    running = False
    try:
        async with make_client(read_timeout=settings.FEED_FETCH_TIMEOUT,
                               allow=reach.parse_allow(settings.FEED_INTERNAL_ALLOW)) as client:
            shared = SharedFeed(redis, Upstream(client, max_bytes=settings.FEED_MAX_BYTES))
            while True:
                state = await shared.current(viewer.url, interval)
                try:
                    result = viewer.accept(state, interval)
                except FeedGone as exc:
                    raise StreamEnded("error", str(exc)) from None
                for text in result.notices:
                    await out.notice(text)
                if result.baseline and not result.entries:
                    await out.send(protocol.entries([]))
                for message in entry_messages(result.entries):
                    await out.send(message)
                if out.wants_position:
                    position = viewer.position()
                    if position is not None:
                        out.note_position(position)
                watching = say("watching", name=source.name, interval=interval)
                if not running:
                    running = True
                    extra = {"warning": result.warning} if result.warning else {}
                    await out.send(protocol.status("running", watching, worker=worker, **extra))
                elif result.warning_changed:
                    await out.send(protocol.status("running", result.warning or watching,
                                                   warning=result.warning))
                await asyncio.sleep(viewer.wait_seconds(state, interval)
                                    + random.uniform(0, WAKE_SPREAD))
    finally:
        await redis.aclose()
