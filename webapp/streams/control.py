"""Ops control of open streams: list them and stop them from outside their connection.

Stopping a stream asks its consumer (through the channel layer) to tell the viewer
`status stopped` "stopped by an administrator" and close; it also drops the task's lease and
revokes the task with terminate=True (`stop.revoke_task`, the path `stop.py` describes), so
the task ends even when its consumer is gone, and it marks the record ended itself when no
consumer does so in time. Used by
`manage.py streams` and the admin's "stop selected streams" action. Blocking code: call it
from management commands, sync views or a thread.
"""

import logging
import time
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer

from webapp.models import Ending, Stream
from webapp.streams import faults, leases, protocol, records
from webapp.streams.stop import revoke_task  # the one revoke path (stop.py); used here
from webapp.streams.text import say

log = logging.getLogger("tailboard.control")

ADMIN_MESSAGE = say("stopped_by_admin")
CONSUMER_WAIT_SECONDS = 3.0


class NotOpen(LookupError):
    """The stream does not exist or has already ended."""


@dataclass
class StopResult:
    """What stopping one stream did."""

    stream_id: int
    task_id: str
    viewer_told: bool
    had_lease: bool
    ended_by: str

    def describe(self):
        """One line for people: what happened to the stream."""
        how = ("its viewer was told and the connection closed" if self.ended_by == "consumer"
               else "no live connection answered; the record was closed here")
        return f"stream {self.stream_id} stopped (task {self.task_id}): {how}"


def open_streams():
    """Return the open stream records, oldest first."""
    return list(records.open_streams().order_by("started", "pk"))


def prune_lost(client=None):
    """Close open records whose lease has lapsed (their consumer is gone); return how many."""
    client = client or leases.sync_client()
    stale = {pk: task_id for pk, task_id in records.open_task_ids()
             if not leases.held(client, task_id)}
    if not stale:
        return 0
    sent = leases.lines_sent(client, stale.values())
    counts = {pk: sent[task_id] for pk, task_id in stale.items() if task_id in sent}
    return records.end_many(stale, Ending.LEASE_LAPSED, "no live connection renewed it", counts)


def tell_consumer(channel_name, message=ADMIN_MESSAGE, ending=Ending.ADMIN_STOP, reason=""):
    """Send the stop event to a consumer's channel; False when it could not be sent."""
    try:
        async_to_sync(get_channel_layer().send)(
            channel_name, protocol.stop_event(message, ending, reason))
        return True
    except (*faults.OUTSIDE, ChannelFull) as exc:
        log.warning("could not send the stop event to %s: %s", channel_name, exc)
        return False


def stop_streams(stream_ids, message=ADMIN_MESSAGE, reason="", wait=None,
                 ending=Ending.ADMIN_STOP):
    """Stop open streams by id; return {id: StopResult}. Ids not open are left out.

    Every consumer is told first, then leases are dropped and tasks revoked. A consumer that
    held its lease gets `wait` seconds to tell its viewer and close its record; records still
    open then (or whose lease had already lapsed: no live consumer) are ended here.
    """
    streams = list(Stream.objects.filter(pk__in=list(stream_ids), ended__isnull=True))
    if not streams:
        return {}
    results = {}
    client = leases.sync_client()
    for stream in streams:
        had_lease = _held(client, stream.task_id)
        told = tell_consumer(stream.channel_name, message, ending, reason)
        results[stream.pk] = StopResult(stream.pk, stream.task_id, told, had_lease, "")
    for stream in streams:
        try:
            leases.release(client, stream.task_id, stream.user_id)
        except faults.OUTSIDE as exc:
            log.error("stream %s: could not drop the lease: %s", stream.pk, exc)
        revoke_task(stream.task_id)
    waiting = {pk for pk, result in results.items() if result.viewer_told and result.had_lease}
    deadline = time.monotonic() + (CONSUMER_WAIT_SECONDS if wait is None else wait)
    while waiting and time.monotonic() < deadline:
        time.sleep(0.1)
        waiting &= set(Stream.objects.filter(pk__in=waiting, ended__isnull=True)
                       .values_list("pk", flat=True))
    sent = _lines_sent(client, [result.task_id for result in results.values()])
    for pk, result in results.items():
        closed_here = records.end(pk, ending, reason, sent.get(result.task_id))
        result.ended_by = "control" if closed_here else "consumer"
        log.info("%s (%s %s)", result.describe(), ending, reason)
    return results


def stop_stream(stream_id, message=ADMIN_MESSAGE, reason="", wait=None):
    """Stop one open stream; return its StopResult or raise NotOpen."""
    results = stop_streams([stream_id], message, reason, wait)
    if stream_id not in results:
        raise NotOpen(f"no open stream with id {stream_id}")
    return results[stream_id]


def live_lines_sent(streams):
    """Return {stream id: lines sent so far} for open streams (from their consumers' figures)."""
    streams = list(streams)
    sent = _lines_sent(leases.sync_client(), [stream.task_id for stream in streams])
    return {stream.pk: sent.get(stream.task_id, stream.lines_sent) for stream in streams}


def _lines_sent(client, task_ids):
    try:
        return leases.lines_sent(client, task_ids)
    except faults.OUTSIDE as exc:
        log.error("could not read the lines sent from Redis: %s", exc)
        return {}


def _held(client, task_id):
    try:
        return leases.held(client, task_id)
    except faults.OUTSIDE as exc:
        log.error("could not read the lease of task %s: %s", task_id, exc)
        return True
