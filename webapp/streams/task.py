"""The task side of a stream: one event loop for the task's life, sending to one channel.

Every kind's Celery task is a `StreamTask` made from its registered `Kind` (`task_for`): it
loads the source, checks it is still enabled, opens the loop, runs the kind's body next to a
watchdog (lease and duration limit), sends the final status, and in `finally` records how the
task ended. A revoke (terminate=True, signal SIGUSR1) ends the loop in order and leaves the
pool process to serve the next task; SIGTERM, the fallback, arrives as SystemExit and ends
the process after its `finally`. The whole stop path, and the parts of it that run here
(`revoke_signal_handled`, `revoked`, `deferred_termination`), are in `stop.py`.
"""

import asyncio
import logging
import time

from celery import Task, shared_task
from django.conf import settings
from django.db import close_old_connections

from webapp.models import Ending
from webapp.streams import faults, leases, protocol, tasklayer
from webapp.streams.aio import cancel_and_wait, close_loop, duration_text
from webapp.streams.flow import Output, receive_acks
from webapp.streams.stop import (
    deferred_termination,
    ignore_revoke_signal,
    revoke_signal_handled,
    revoked,
    termination_lost,
)
from webapp.streams.text import say

log = logging.getLogger("tailboard.tasks")

LOOP_CLOSE_SECONDS = 5.0
REVOKED = "terminated (revoked): ended in order"


class StreamEnded(Exception):
    """Raised by a body to end its stream with a final status (state, message).

    An `error` end is permanent (close 4410, the viewer should not retry) unless `code`
    says otherwise.
    """

    def __init__(self, state, message, code=None, ending=None):
        super().__init__(message)
        self.state = state
        self.message = message
        self.code = code or (protocol.CLOSE_GONE if state == "error" else protocol.CLOSE_NORMAL)
        self.ending = ending or (Ending.SOURCE_GONE if state == "error" else Ending.SOURCE_ENDED)


class Stop:
    """Why the watchdog ends a stream: the lease lapsed, or the duration limit."""

    LEASE = "lease"
    LIMIT = "limit"


# A task ends within 30 s of its consumer vanishing (docs/reliability.md).
VIEWER_GONE_BOUND_SECONDS = 30


def lease_check_interval():
    """How often a task looks at its lease: as seldom as the 30 s bound allows
    (docs/reliability.md).

    Stop and a closed socket reach the task by its revoke signal at once; the lease only
    catches a consumer that vanished (Daphne killed), whose lease lapses within
    STREAM_LEASE_SECONDS and is seen at the next check.
    """
    spare = VIEWER_GONE_BOUND_SECONDS - settings.STREAM_LEASE_SECONDS
    return max(1.0, min(float(settings.STREAM_LEASE_CHECK_SECONDS), spare))


async def watchdog(redis, task_id, deadline, out):
    """Keep the consumer told the task is alive; return Stop.LEASE or Stop.LIMIT.

    It wakes once per STREAM_HEARTBEAT_SECONDS (or per lease check, if those are more
    often), not whenever the last frame is that old (a stream sending a line a second would
    wake it every second), and sends a heartbeat only when nothing went out for half a beat
    (any frame tells the consumer as much): the longest silence is 1.5 beats, well inside
    STREAM_WORKER_LOST_SECONDS. The lease is read on every few wakes, at most
    `lease_check_interval()` apart.
    """
    beat = settings.STREAM_HEARTBEAT_SECONDS
    period = min(beat, lease_check_interval())
    checks_every = max(1, int(lease_check_interval() // period))
    wakes = 0
    while True:
        now = time.monotonic()
        if now - out.last_sent >= beat / 2:
            await out.heartbeat()
        if wakes % checks_every == 0 and wakes:
            if not await leases.aheld(redis, task_id):
                return Stop.LEASE
        if now >= deadline:
            return Stop.LIMIT
        wakes += 1
        await asyncio.sleep(max(0.05, min(now + period, deadline) - time.monotonic()))


def task_layer():
    """Return a channel layer of the task's own, for the task's one event loop.

    channels-redis keeps locks, receive buffers and pools on the layer object; the shared
    process-wide layer would carry them from one task's loop into the next, where a lock left
    behind by a cancelled receive breaks every later receive in that process ("bound to a
    different event loop"). The layer's connections close with the task (`supervise`). It is
    of the configured backend: `weblayer.ReaderLayer` sends each message in one Redis round
    trip and reads the task's acks in one round trip each; CHANNEL_LAYER_STOCK runs stock
    channels-redis.
    """
    return tasklayer.task_layer()


async def final(out, state, message, ending, close_code=None):
    """Send the last status, which tells the consumer to close; return the end text."""
    await out.send(protocol.status(state, message), final=True, ending=ending,
                   reason=message, close_code=close_code)
    return f"{ending}: {message}"


async def supervise(task_id, worker, channel_name, body, signalled=None):
    """Run the body beside the watchdog and send the final status; return the end text.

    `signalled` (an asyncio.Event) is set by the revoke signal: the stream then ends at
    once, without a final status (its consumer has gone or is closing).
    """
    signalled = signalled or asyncio.Event()
    layer = task_layer()
    redis = leases.async_client()
    out = Output(layer, channel_name, settings.STREAM_WINDOW_FRAMES,
                 settings.STREAM_BUFFER_LINES)
    helpers = []
    try:
        if not await leases.aheld(redis, task_id):
            return f"{Ending.LEASE_LAPSED}: not started, the viewer left before a worker took it"
        ack_channel = await layer.new_channel()
        await layer.send(channel_name, protocol.hello_event(ack_channel))
        helpers.append(asyncio.ensure_future(receive_acks(layer, ack_channel, out)))
        body_task = asyncio.ensure_future(body(out, worker))
        guard = asyncio.ensure_future(
            watchdog(redis, task_id, time.monotonic() + settings.STREAM_MAX_SECONDS, out))
        revoke = asyncio.ensure_future(revoked(redis, task_id, signalled))
        done, _ = await asyncio.wait({body_task, guard, revoke, *helpers},
                                     return_when=asyncio.FIRST_COMPLETED)
        for helper in helpers:
            if helper in done:
                helper.result()
        for pending in (body_task, guard, revoke):
            if pending not in done:
                await cancel_and_wait(pending)
        if revoke in done:
            revoke.result()
            return REVOKED
        if guard in done:
            if guard.result() == Stop.LEASE:
                return f"{Ending.LEASE_LAPSED}: viewer gone"
            limit = duration_text(settings.STREAM_MAX_SECONDS)
            return await final(out, "stopped", say("duration_limit", limit=limit),
                               Ending.MAX_DURATION)
        try:
            body_task.result()
        except StreamEnded as end:
            return await final(out, end.state, end.message, end.ending, end.code)
        except Exception as exc:
            if isinstance(exc, faults.OUTSIDE):
                log.error("task %s failed: %r", task_id, exc)
            else:
                faults.contained(log, "task %s failed", task_id)
            return await final(out, "error", f"the task failed: {type(exc).__name__}: {exc}",
                               Ending.ERROR)
        return await final(out, "stopped", say("source_ended"), Ending.SOURCE_ENDED)
    finally:
        for helper in helpers:
            await cancel_and_wait(helper)
        await redis.aclose()
        if hasattr(layer, "close_pools"):
            await layer.close_pools()


def run_stream(task_id, worker, channel_name, body):
    """Run one stream task on its own event loop; record its end even under SIGTERM.

    The revoke signal (`stop.REVOKE_SIGNAL`; steps 3 and 4 of `stop.py`) ends the stream in
    order: the loop winds down, everything the task opened is closed, its end is recorded,
    and the pool process lives on for the next task. SIGTERM (the fallback, step 6) still
    ends the process.
    """
    loop = asyncio.new_event_loop()
    signalled = asyncio.Event()
    reason = "terminated"
    try:
        with revoke_signal_handled(loop, signalled.set):
            reason = loop.run_until_complete(
                supervise(task_id, worker, channel_name, body, signalled))
        return reason
    except SystemExit:
        reason = "terminated (revoked)"
        raise
    except Exception as exc:
        reason = f"failed: {type(exc).__name__}: {exc}"
        log.exception("task %s failed", task_id)
        raise
    finally:
        with deferred_termination():
            finish(loop, task_id, reason)


class StreamTask(Task):
    """Base of every kind's Celery task: load the source, run the kind's body, record the end."""

    kind = None

    def stream(self, source_id, channel_name, options):
        """Stream one source to the consumer at `channel_name` until revoked or ended."""
        ignore_revoke_signal()
        close_old_connections()  # CONN_MAX_AGE and the health check (CELERY_DB_REUSE_MAX)
        kind = self.kind
        source = kind.source_model.objects.filter(pk=source_id).first()
        worker = self.request.hostname or "unknown"

        async def body(out, worker_name):
            if source is None or not source.enabled:
                raise StreamEnded("error", f"{kind.slug} source {source_id} no longer exists "
                                           "or is disabled")
            await kind.run(out, source, options, worker_name)

        return run_stream(self.request.id, worker, channel_name, body)


def run_task(self, source_id, channel_name, options):
    """Stream one source for one WebSocket connection (the body of every kind's task)."""
    return self.stream(source_id, channel_name, options)


_TASKS = {}


def task_for(kind):
    """Return (making it once) the Celery task that runs streams of this kind."""
    task = _TASKS.get(kind.slug)
    if task is None:
        base = type(f"{kind.slug.title()}StreamTask", (StreamTask,), {"kind": kind})
        # Nothing reads a stream task's result or its STARTED state: storing them cost two
        # Redis round trips in the pool process on every start and end.
        task = shared_task(bind=True, base=base, name=kind.task_name or f"{kind.slug}.stream",
                           ignore_result=True, track_started=False)(run_task)
        _TASKS[kind.slug] = task
    return task


def finish(loop, task_id, reason):
    """Close the task's loop and record its end; a process that must not go on ends here.

    That is a process with a task that will not stop, and one whose termination was lost.
    """
    stuck = close_loop(loop, LOOP_CLOSE_SECONDS)
    if stuck:
        reason += "; its process was restarted (tasks that would not stop)"
        for task in stuck:
            log.error("task %s: %r did not stop when cancelled", task_id, task)
    lost = termination_lost() and not reason.startswith("terminated")
    if lost:
        log.warning("task %s: its process was told to terminate and did not; it exits now",
                    task_id)
    try:
        leases.record_end(leases.sync_client(), task_id, reason)
    except faults.OUTSIDE as exc:
        log.error("task %s: could not record its end: %s", task_id, exc)
    log.info("task %s ended: %s", task_id, reason)
    if stuck or lost:
        raise SystemExit(1)
