"""The transport-independent steps of a stream: authorize, open (claim, record, queue), end.

The WebSocket consumer (`consumer.py`) and the long-poll transport (`polling.py`) both run a
stream through these steps; only how messages reach the browser differs.
"""

import logging
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from webapp import metrics
from webapp.streams import faults, leases, protocol, records, workers
from webapp.streams.options import OptionError, source_id
from webapp.streams.text import say

log = logging.getLogger("tailboard.streams")


class Refusal(Exception):
    """A stream refused before it started: a close code of docs/protocol.md's and the text
    for the viewer."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Opened:
    """A stream that holds a slot and its lease and has a record; its task is not queued yet."""

    task_id: str
    stream_id: int
    queued: dict  # the `status queued` message for the viewer


async def find_source(kind, raw_id):
    """Return the enabled source of this kind with this id, or None (also for malformed ids)."""
    pk = source_id(raw_id)
    if pk is None:
        return None
    return await database_sync_to_async(
        kind.source_model.objects.filter(pk=pk, enabled=True).first)()


async def authorize(kind, user, raw_id, query_string):
    """Return (source, options) for a viewer's request, or raise Refusal with its code."""
    if user is None or not user.is_authenticated:
        raise Refusal(protocol.CLOSE_NOT_LOGGED_IN, say("not_logged_in"))
    source = await find_source(kind, raw_id)
    if source is None:
        raise Refusal(protocol.CLOSE_NO_SOURCE, say("no_source", kind=kind.slug))
    if not await database_sync_to_async(source.allows)(user):
        raise Refusal(protocol.CLOSE_FORBIDDEN, say("forbidden", kind=kind.slug, id=source.pk))
    try:
        options = kind.parse_options(parse_qs(query_string))
    except OptionError as exc:
        raise Refusal(protocol.CLOSE_BAD_OPTION, say("bad_option", error=exc)) from None
    return source, options


async def refused(redis, kind, raw_id, user, refusal):
    """Log and count a refusal."""
    log.warning("refused %s stream %r for %s: %s %r", kind.slug, raw_id, user, refusal.code,
                refusal.message)
    await metrics.arecord(redis, "streams_refused", {"kind": kind.slug, "code": str(refusal.code)})


async def open_stream(redis, kind, user, source, options, channel_name):
    """Claim a slot and the lease, record the stream; return Opened or raise Refusal (4429)."""
    task_id = str(uuid.uuid4())
    pools = kind.pools(options) if kind.pools else ()
    refusal = await leases.aclaim(redis, task_id, channel_name, user.pk, pools)
    if refusal:
        raise Refusal(protocol.CLOSE_TOO_MANY, refusal)
    stream = await database_sync_to_async(records.create)(
        user, kind.slug, source, options, task_id, channel_name)
    log.info("stream %s: %s opened %s %s (%s) task %s on queue %s", stream.pk, user,
             kind.slug, source.pk, source.name, task_id, source.queue)
    online = await workers_online(redis, source.queue)
    queued = protocol.status(
        "queued", say("queued", queue=source.queue, online=online),
        task_id=task_id, stream=stream.pk, queue=source.queue, workers_online=online)
    return Opened(task_id, stream.pk, queued)


def task_kwargs(source, channel_name, options):
    """The keyword arguments of a stream's task."""
    return {"source_id": source.pk, "channel_name": channel_name, "options": options}


async def workers_online(redis, queue):
    """Return how many workers consume this queue now (-1 when unknown)."""
    try:
        return len((await workers.aonline(redis)).get(queue, []))
    except faults.OUTSIDE as exc:
        log.warning("could not read the worker registry: %s", exc)
        return -1


async def release(redis, control, task_id, user_id, stream_id, revoke):
    """Drop the slot and the lease, and revoke the task (terminate=True) unless told not to."""
    from asgiref.sync import sync_to_async

    try:
        await leases.arelease(redis, task_id, user_id)
    except faults.OUTSIDE as exc:
        log.error("stream %s: could not drop the lease: %s", stream_id, exc)
    if revoke:
        try:
            await sync_to_async(control.revoke, thread_sensitive=False)(task_id)
        except faults.OUTSIDE as exc:
            log.error("stream %s: revoke failed (the lease ends the task): %s", stream_id, exc)


async def record_end(redis, kind, stream_id, ending, detail, lines_sent, tally):
    """Close the stream's record, count its end and flush its metrics."""
    await database_sync_to_async(records.end)(stream_id, ending, detail, lines_sent)
    log.info("stream %s ended: %s %s", stream_id, ending, detail)
    await metrics.arecord(redis, "stream_ends", {"kind": kind.slug, "ending": str(ending)})
    await tally.aflush(redis)


def count(tally, labels, event):
    """Add a relayed frame's lines, entries and drops to a metrics tally."""
    for field, name in (("lines", "lines_sent"), ("entries", "entries_sent"),
                        ("dropped", "dropped_lines")):
        if event.get(field):
            tally.add(name, labels, event[field])
