"""The task side of a stream: one event loop for the task's life, sending to one channel.

`run_stream` is what every stream task calls: it opens the loop, sends `status running`,
runs the task's body next to a watchdog (lease and duration limit), and in `finally`
records how the task ended, including when SIGTERM from revoke(terminate=True) arrives
as SystemExit.
"""

import asyncio
import logging
import time

from channels.exceptions import ChannelFull
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers
from django.conf import settings

from webapp import leases, protocol
from webapp.aio import cancel_and_wait, close_loop, duration_text
from webapp.termination import deferred_termination, termination_lost

log = logging.getLogger("tailboard.tasks")

LEASE_CHECK_SECONDS = 1.0
LOOP_CLOSE_SECONDS = 5.0


class StreamEnded(Exception):
    """Raised by a body to end its stream with a final status (state, message)."""

    def __init__(self, state, message):
        super().__init__(message)
        self.state = state
        self.message = message


class Output:
    """Sends protocol messages to one consumer's channel with credit-based flow control.

    Data frames (`lines`) are numbered; at most `window` of them are in flight until the
    viewer acknowledges them. Lines that find no credit wait in a bounded buffer; when it
    overflows the oldest lines are dropped and counted, and the count is sent as `dropped`
    before the next lines, so nothing is lost silently and nothing grows without bound.
    """

    def __init__(self, layer, channel_name, window=8, buffer_lines=20000):
        self.layer = layer
        self.channel_name = channel_name
        self.window = window
        self.buffer_lines = buffer_lines
        self.next_seq = 0
        self.acked = -1
        self.pending = []
        self.dropped = 0
        self.sent_lines = 0
        self.lock = asyncio.Lock()
        self.room = asyncio.Event()
        self.room.set()
        self.drained = asyncio.Event()
        self.drained.set()

    @property
    def in_flight(self):
        """Frames sent and not yet acknowledged."""
        return self.next_seq - 1 - self.acked

    async def send(self, message, final=False, reason="", close_code=None):
        """Send one control message after the lines before it; False when the channel is full.

        Control messages are not counted against the window, but a non-final one waits
        until the lines queued before it have gone out, so the viewer sees them in order.
        """
        if self.pending and not final:
            await self.drained.wait()
        return await self._send_now(message, final, reason, close_code)

    async def _send_now(self, message, final=False, reason="", close_code=None):
        try:
            await self.layer.send(self.channel_name, protocol.frame_event(
                message, final=final, reason=reason, close_code=close_code))
        except ChannelFull:
            log.warning("channel %s is full; a %s message was not delivered",
                        self.channel_name, message.get("type"))
            return False
        return True

    def has_room(self):
        """True when the viewer can take more now: a producer should read more only then."""
        return self.in_flight < self.window or len(self.pending) < self.buffer_lines // 2

    async def wait_room(self, timeout=None):
        """Wait until the viewer has room again (or the timeout passes); return has_room()."""
        if not self.has_room():
            self.room.clear()
            try:
                await asyncio.wait_for(self.room.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        return self.has_room()

    def drop(self, count):
        """Count lines the producer skipped for this viewer; reported before the next lines."""
        self.dropped += count

    async def send_lines(self, batch):
        """Queue lines for the viewer and send what the window allows."""
        self.pending.extend(batch)
        if self.pending:
            self.drained.clear()
        overflow = len(self.pending) - self.buffer_lines
        if overflow > 0:
            del self.pending[:overflow]
            self.dropped += overflow
        await self.flush()

    async def flush(self):
        """Send buffered lines while the viewer has credit."""
        async with self.lock:
            while self.pending and self.in_flight < self.window:
                if self.dropped:
                    if not await self._send_now(protocol.dropped(self.dropped)):
                        return
                    self.dropped = 0
                seq, count, text = next(protocol.lines_frames(self.pending, self.next_seq))
                try:
                    await self.layer.send(self.channel_name,
                                          protocol.data_frame_event(text, seq, count))
                except ChannelFull:
                    return
                del self.pending[:count]
                self.next_seq += 1
                self.sent_lines += count
            if not self.pending:
                self.drained.set()

    async def acknowledge(self, seq):
        """Record the viewer's credit (cumulative) and send what was waiting."""
        if seq > self.acked:
            self.acked = min(seq, self.next_seq - 1)
            if self.pending:
                await self.flush()
            if self.has_room():
                self.room.set()

    async def notice(self, text):
        """Send a notice (best effort)."""
        await self.send(protocol.notice(text))

    async def heartbeat(self):
        """Tell the consumer the task is alive (best effort)."""
        try:
            await self.layer.send(self.channel_name, protocol.heartbeat_event())
        except ChannelFull:
            pass


async def receive_acks(layer, ack_channel, out):
    """Apply the consumer's acks to the output until cancelled."""
    while True:
        event = await layer.receive(ack_channel)
        if event.get("type") == protocol.EVENT_ACK:
            await out.acknowledge(int(event.get("seq", -1)))


async def watchdog(redis, task_id, deadline, out):
    """Send heartbeats; return the reason to stop once the lease lapses or time is up."""
    next_beat = 0.0
    while True:
        if time.monotonic() >= next_beat:
            await out.heartbeat()
            next_beat = time.monotonic() + settings.STREAM_HEARTBEAT_SECONDS
        if not await leases.aheld(redis, task_id):
            return ("lease", "viewer gone (lease lapsed)")
        if time.monotonic() >= deadline:
            limit = duration_text(settings.STREAM_MAX_SECONDS)
            return ("stopped", f"stream duration limit reached ({limit}); start it again "
                               "to continue")
        await asyncio.sleep(LEASE_CHECK_SECONDS)


def task_layer():
    """Return a channel layer of the task's own, for the task's one event loop.

    channels-redis keeps locks, receive buffers and pools on the layer object; the shared
    process-wide layer would carry them from one task's loop into the next, where a lock left
    behind by a cancelled receive breaks every later receive in that process ("bound to a
    different event loop"). The layer's connections close with the task's loop.
    """
    return channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)


async def supervise(task_id, worker, channel_name, body):
    """Run the body beside the watchdog and send the final status; return the end reason."""
    layer = task_layer()
    redis = leases.async_client()
    out = Output(layer, channel_name, settings.STREAM_WINDOW_FRAMES,
                 settings.STREAM_BUFFER_LINES)
    helpers = []
    try:
        if not await leases.aheld(redis, task_id):
            return "not started: viewer left before a worker took the task"
        ack_channel = await layer.new_channel()
        await layer.send(channel_name, protocol.hello_event(ack_channel))
        helpers.append(asyncio.ensure_future(receive_acks(layer, ack_channel, out)))
        body_task = asyncio.ensure_future(body(out, worker))
        guard = asyncio.ensure_future(
            watchdog(redis, task_id, time.monotonic() + settings.STREAM_MAX_SECONDS, out))
        done, _ = await asyncio.wait({body_task, guard, *helpers},
                                     return_when=asyncio.FIRST_COMPLETED)
        for helper in helpers:
            if helper in done:
                helper.result()
        for pending in (body_task, guard):
            if pending not in done:
                await cancel_and_wait(pending)
        if guard in done:
            kind, message = guard.result()
            if kind == "lease":
                return message
            await out.send(protocol.status("stopped", message), final=True, reason="limit")
            return message
        close_code = None
        try:
            body_task.result()
            state, message = "stopped", "the source ended"
        except StreamEnded as end:
            state, message = end.state, end.message
            close_code = protocol.CLOSE_GONE if end.state == "error" else None
        except Exception as exc:
            log.exception("task %s failed", task_id)
            state, message = "error", f"the task failed: {type(exc).__name__}: {exc}"
        await out.send(protocol.status(state, message), final=True, reason=f"{state}: {message}",
                       close_code=close_code)
        return f"{state}: {message}"
    finally:
        for helper in helpers:
            await cancel_and_wait(helper)
        await redis.aclose()


def run_stream(task_id, worker, channel_name, body):
    """Run one stream task on its own event loop; record its end even under SIGTERM."""
    loop = asyncio.new_event_loop()
    reason = "terminated"
    try:
        reason = loop.run_until_complete(supervise(task_id, worker, channel_name, body))
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
    except Exception as exc:
        log.error("task %s: could not record its end: %s", task_id, exc)
    log.info("task %s ended: %s", task_id, reason)
    if stuck or lost:
        raise SystemExit(1)
