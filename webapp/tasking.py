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
from channels.layers import get_channel_layer
from django.conf import settings

from webapp import leases, protocol

log = logging.getLogger("tailboard.tasks")

LEASE_CHECK_SECONDS = 1.0


class StreamEnded(Exception):
    """Raised by a body to end its stream with a final status (state, message)."""

    def __init__(self, state, message):
        super().__init__(message)
        self.state = state
        self.message = message


class Output:
    """Sends protocol messages to one consumer's channel and counts what it could not."""

    def __init__(self, layer, channel_name):
        self.layer = layer
        self.channel_name = channel_name
        self.dropped = 0
        self.sent_lines = 0

    async def send(self, message, final=False, reason=""):
        """Send one message; return False when the viewer's channel is full."""
        try:
            await self.layer.send(self.channel_name,
                                  protocol.frame_event(message, final=final, reason=reason))
        except ChannelFull:
            return False
        return True

    async def send_lines(self, batch):
        """Send lines in frames under 1 MiB; lines that do not fit are counted as dropped."""
        for message in protocol.split_lines(batch):
            if self.dropped and await self.send(protocol.dropped(self.dropped)):
                self.dropped = 0
            if await self.send(message):
                self.sent_lines += len(message["lines"])
            else:
                self.dropped += len(message["lines"])

    async def notice(self, text):
        """Send a notice (best effort)."""
        await self.send(protocol.notice(text))


async def watchdog(redis, task_id, deadline):
    """Return the reason to stop once the lease lapses or the duration limit is reached."""
    while True:
        if not await leases.aheld(redis, task_id):
            return ("lease", "viewer gone (lease lapsed)")
        if time.monotonic() >= deadline:
            hours = settings.STREAM_MAX_SECONDS / 3600
            return ("stopped", f"stream duration limit reached ({hours:g} h); start it again "
                               "to continue")
        await asyncio.sleep(LEASE_CHECK_SECONDS)


async def supervise(task_id, worker, channel_name, body):
    """Run the body beside the watchdog and send the final status; return the end reason."""
    layer = get_channel_layer()
    redis = leases.async_client()
    out = Output(layer, channel_name)
    try:
        if not await leases.aheld(redis, task_id):
            return "not started: viewer left before a worker took the task"
        body_task = asyncio.ensure_future(body(out, worker))
        guard = asyncio.ensure_future(
            watchdog(redis, task_id, time.monotonic() + settings.STREAM_MAX_SECONDS))
        done, _ = await asyncio.wait({body_task, guard}, return_when=asyncio.FIRST_COMPLETED)
        for pending in (body_task, guard):
            if pending not in done:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
        if guard in done:
            kind, message = guard.result()
            if kind == "lease":
                return message
            await out.send(protocol.status("stopped", message), final=True, reason="limit")
            return message
        try:
            body_task.result()
            state, message = "stopped", "the source ended"
        except StreamEnded as end:
            state, message = end.state, end.message
        except Exception as exc:
            log.exception("task %s failed", task_id)
            state, message = "error", f"the task failed: {type(exc).__name__}: {exc}"
        await out.send(protocol.status(state, message), final=True, reason=f"{state}: {message}")
        return f"{state}: {message}"
    finally:
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
    finally:
        try:
            pending = asyncio.all_tasks(loop)
            for leftover in pending:
                leftover.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        except BaseException as exc:
            log.warning("task %s: cleanup of its loop was cut short: %r", task_id, exc)
        loop.close()
        try:
            leases.record_end(leases.sync_client(), task_id, reason)
        except Exception as exc:
            log.error("task %s: could not record its end: %s", task_id, exc)
        log.info("task %s ended: %s", task_id, reason)
