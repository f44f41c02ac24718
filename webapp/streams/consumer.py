"""The consumer side of the one-connection-one-task lifecycle, shared by every source kind.

A consumer accepts the socket, checks login, source, access, options and limits (closing
with docs/protocol.md's codes), claims a slot and a lease in Redis in one atomic step, records the
stream, sends `status queued` and starts one Celery task on the source's queue that sends to
this consumer's channel. It relays the task's frames, renews the lease (re-checking access)
while connected, and on Stop or disconnect drops the lease and revokes the task with
terminate=True. Every kind uses this class as is: `StreamConsumer.as_asgi(kind=kind)`.
"""

import asyncio
import functools
import logging
import time

import redis.exceptions
from asgiref.sync import sync_to_async
from autobahn.exception import Disconnected
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull, StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from webapp import metrics
from webapp.models import Ending
from webapp.streams import faults, leases, protocol, records, renewals, session
from webapp.streams.aio import cancel_and_wait, dispatch_many
from webapp.streams.backpressure import SendGauge
from webapp.streams.text import from_fields, say

log = logging.getLogger("tailboard.streams")

DRAIN_CHECK_SECONDS = 0.05
RELEASE_SECONDS = 10.0
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                ConnectionError, TimeoutError)


class TaskControl:
    """Starts and revokes stream tasks through Celery (blocking; call off the loop)."""

    def start(self, task, task_id, kwargs, queue):
        """Queue the task on the source's queue with an expiry."""
        task.apply_async(kwargs=kwargs, task_id=task_id, queue=queue,
                         expires=settings.STREAM_QUEUE_EXPIRES, argsrepr="()",
                         kwargsrepr=f"{{'source_id': {kwargs['source_id']!r}, ...}}")

    def revoke(self, task_id):
        """Revoke the task and terminate its process if it is running (`stop.py`)."""
        from webapp.streams.stop import revoke_task

        revoke_task(task_id)


def ack_stride():
    """Frames of credit the consumer gathers before it passes them on to the task."""
    return max(1, min(settings.STREAM_ACK_EVERY_FRAMES, settings.STREAM_WINDOW_FRAMES // 2))


def viewer_gone(exc):
    """True for the error the server raises on a send to a socket the viewer has dropped."""
    return isinstance(exc, (Disconnected, ConnectionResetError))


class StreamConsumer(AsyncWebsocketConsumer):
    """One stream per connection, for the source kind given to `as_asgi(kind=...)`."""

    control_class = TaskControl

    def __init__(self, kind=None, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind
        self.control = self.control_class()
        self.redis = None
        self.user = None
        self.source = None
        self.stream_id = None
        self.task_id = None
        self.claimed = False
        self.helpers = []
        self.rounds = None  # this loop's renewal rounds, once the stream has a slot
        self.monitor = None
        self.ack_channel = None
        self.client_acks = False
        self.last_beat = None
        self.worker = ""
        self.finished = False
        self.lines_sent = 0
        self.gauge = None
        self.credit = -1
        self.forwarded = -1
        self.draining = None
        self.tally = metrics.Tally()
        self.connected_at = time.monotonic()
        self.running_seen = False

    async def dispatch(self, message):
        """Call the handler of a message, without channels' per-message database tidy-up.

        Channels runs `close_old_connections` in the database thread before every message:
        a thread hop per relayed frame and ack. The handlers that use the database do so
        through `database_sync_to_async`, which tidies up around each call itself.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def __call__(self, scope, receive, send):
        """Run the consumer; a failure under a live stream is told to the viewer and logged.

        Channels lets an exception from the channel layer's receive end the consumer, and
        Daphne then closes the socket with 1011 without a word; the viewer is told instead.
        """
        self.gauge = SendGauge(send)
        try:
            await self.run(scope, receive, send)
        except asyncio.CancelledError:
            if not self.finished:  # Daphne is stopping: revoke and record before going
                await self.finish(Ending.DISCONNECT, "the web server stopped")
            raise
        except Exception as exc:
            if self.finished:
                raise
            await self.crashed(exc)

    async def run(self, scope, receive, send):
        """channels' AsyncConsumer.__call__, dispatching through `aio.dispatch_many`.

        A copy of channels' code: `internals.RELIANCES` names what it must match, and
        tests/unit/test_library_internals.py checks it against the installed channels.
        """
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
        self.base_send = send
        try:
            await dispatch_many([receive, self.channel_receive], self.dispatch)
        except StopConsumer:
            pass

    async def crashed(self, exc):
        """Say what went wrong: the viewer left, Redis failed (retry) or a server error."""
        if viewer_gone(exc):
            log.info("stream %s: the viewer went away as a frame was sent", self.stream_id)
            return await self.finish(Ending.DISCONNECT, "dropped as a frame was sent")
        if isinstance(exc, REDIS_ERRORS):
            log.error("stream %s: lost contact with Redis: %s", self.stream_id, exc)
            message, detail, retry = say("redis_lost", error=exc), f"redis: {exc}", True
        else:
            if isinstance(exc, faults.OUTSIDE):
                log.error("stream %s: server error: %r", self.stream_id, exc)
            else:
                faults.contained(log, "stream %s: server error", self.stream_id)
            message, detail, retry = say("server_error"), repr(exc), True
        try:
            await self.fail(message, detail, retry=retry)
        except Exception as again:
            log.info("stream %s: could not tell the viewer: %s", self.stream_id, again)
            await self.finish(Ending.ERROR, detail)

    async def connect(self):
        """Accept, then authorize and start the stream or close with a code."""
        await self.accept()
        self.redis = leases.loop_client()
        user = self.scope.get("user")
        try:
            source, options = await session.authorize(
                self.kind, user, self.scope["url_route"]["kwargs"].get("source_id"),
                self.scope.get("query_string", b"").decode("latin-1"))
        except session.Refusal as refusal:
            return await self.refuse(refusal.code, refusal.message)
        self.user, self.source = user, source
        await self.start(options)

    async def find_source(self, raw_id):
        """Return the enabled source with this id, or None (also for malformed ids)."""
        return await session.find_source(self.kind, raw_id)

    async def start(self, options):
        """Claim a slot and the lease, record the stream and queue the task."""
        try:
            opened = await session.open_stream(self.redis, self.kind, self.user, self.source,
                                               options, self.channel_name)
        except session.Refusal as refusal:
            return await self.refuse(refusal.code, refusal.message)
        self.task_id, self.stream_id, self.claimed = opened.task_id, opened.stream_id, True
        await self.send_message(opened.queued)
        self.rounds = renewals.rounds()
        self.rounds.join(self)
        kwargs = session.task_kwargs(self.source, self.channel_name, options)
        await sync_to_async(self.control.start, thread_sensitive=False)(
            self.kind.task, self.task_id, kwargs, self.source.queue)

    async def workers_online(self, queue):
        """Return how many workers consume this queue now (-1 when unknown)."""
        return await session.workers_online(self.redis, queue)

    async def end_access(self, lost):
        """End a stream whose viewer lost access (4403) or whose source went away (4410)."""
        if self.finished:
            return
        log.warning("stream %s: %s", self.stream_id, lost.message)
        ending = Ending.SOURCE_GONE if lost.gone else Ending.ACCESS_LOST
        await self.finish(ending, lost.message)
        await self.send_message(protocol.status("error", lost.message, code=lost.code))
        await self.close(lost.code)

    async def receive(self, text_data=None, bytes_data=None):
        """Handle a client frame: `stop` ends the stream, `ack` gives the task credit."""
        try:
            action, data = (protocol.parse_client(text_data) if text_data is not None
                            else (None, None))
        except protocol.ClientMessageError as exc:
            return await self.refuse_message(exc.args[0])
        if action == "stop":  # tell the viewer first; revoking and recording follow
            await self.send_message(protocol.status("stopped", say("stopped_by_viewer")))
            await self.close(protocol.CLOSE_NORMAL)
            await self.finish(Ending.VIEWER_STOP)
        elif action == "ack" and isinstance(data.get("seq"), int):
            self.client_acks = True
            await self.forward_ack(data["seq"])
        else:
            await self.send_message(protocol.notice(say("unknown_message")))

    async def refuse_message(self, message):
        """End the stream over a client frame refused unparsed (4400): no traceback."""
        if self.finished:
            return
        log.warning("stream %s: %s", self.stream_id, message)
        await self.finish(Ending.ERROR, message)
        await self.send_message(protocol.status("error", message,
                                                code=protocol.CLOSE_BAD_OPTION))
        await self.close(protocol.CLOSE_BAD_OPTION)

    async def forward_ack(self, seq):
        """Pass the viewer's credit on to the task, unless the viewer's socket is backed up.

        Credit is cumulative, so it goes on once per `ack_stride()` frames, not per frame:
        the task still has at least half its window of credit when the credit arrives.
        While Daphne holds more than STREAM_SEND_BUFFER_BYTES for this viewer (it does not
        read, whether or not it acks), the credit waits here, so the task waits too and the
        lag stays on disk.
        """
        if not self.ack_channel or self.finished or seq < 0:
            return
        self.credit = max(self.credit, seq)
        if self.draining is not None or self.credit - self.forwarded < ack_stride():
            return
        if self.gauge.pending() > settings.STREAM_SEND_BUFFER_BYTES:
            self.draining = asyncio.create_task(self.wait_for_drain())
            self.helpers.append(self.draining)
            return
        await self.send_credit()

    async def send_credit(self):
        """Send the credit gathered so far to the task."""
        if self.credit <= self.forwarded:
            return
        self.forwarded = self.credit
        try:
            await self.channel_layer.send(self.ack_channel, protocol.ack_event(self.credit))
        except (*faults.OUTSIDE, ChannelFull) as exc:
            log.warning("stream %s: could not forward an ack: %s", self.stream_id, exc)

    async def wait_for_drain(self):
        """Hold the credit until the viewer's socket takes what Daphne holds for it."""
        low = settings.STREAM_SEND_BUFFER_BYTES // 2
        while not self.finished:
            pending = self.gauge.pending()
            if pending > settings.STREAM_MAX_BUFFER_BYTES:
                return await self.too_slow(pending)
            if pending <= low:
                self.draining = None
                return await self.send_credit()
            await asyncio.sleep(DRAIN_CHECK_SECONDS)

    async def too_slow(self, pending):
        """End a stream whose viewer does not read its socket (4408)."""
        message = say("too_slow", mib=pending // (1024 * 1024))
        log.warning("stream %s: %s", self.stream_id, message)
        await self.finish(Ending.TOO_SLOW, message)
        await self.send_message(protocol.status("error", message, code=protocol.CLOSE_TOO_SLOW))
        await self.close(protocol.CLOSE_TOO_SLOW)

    async def stream_hello(self, event):
        """The task has started: remember its ack channel and watch its heartbeat."""
        self.ack_channel = event["ack_channel"]
        self.last_beat = time.monotonic()
        if self.monitor is None and not self.finished:
            self.monitor = asyncio.create_task(self.watch_worker())
            self.helpers.append(self.monitor)

    async def stream_heartbeat(self, event):
        """The task is alive."""
        self.last_beat = time.monotonic()

    async def watch_worker(self):
        """Tell the viewer when the task's worker stops answering (killed, lost).

        Wakes when the silence could first exceed the limit, not every second.
        """
        limit = settings.STREAM_WORKER_LOST_SECONDS
        while not self.finished:
            await asyncio.sleep(max(0.25, self.last_beat + limit + 0.05 - time.monotonic()))
            silent = time.monotonic() - self.last_beat
            if silent > limit and not self.finished:
                where = f" {self.worker}" if self.worker else ""
                log.error("stream %s: worker%s lost (silent for %.0f s)", self.stream_id, where,
                          silent)
                await self.finish(Ending.WORKER_LOST, f"worker{where} silent {silent:.0f} s")
                await self.send_message(protocol.status(
                    "error", say("worker_lost", worker=self.worker or "the worker",
                                 seconds=round(silent)), retry=True))
                await self.close(protocol.CLOSE_WORKER_LOST)
                return

    async def stream_frame(self, event):
        """Relay one frame from the task; a final frame ends the stream."""
        if self.finished:
            return
        self.last_beat = time.monotonic()
        await self.send(text_data=event["text"])
        if event.get("worker") and self.stream_id:  # `running`: the viewer has it already
            self.worker = event["worker"]
            if not self.running_seen:
                self.running_seen = True
                await metrics.aobserve(self.redis, "connect_to_running_seconds", self.labels(),
                                       time.monotonic() - self.connected_at)
            await database_sync_to_async(records.set_worker)(self.stream_id, event["worker"])
        sent = protocol.items_sent(event)
        self.lines_sent += sent
        self.count(event)
        if sent:  # published within a second: `streams --json`, the admin
            self.rounds.counted(self)
        pending = self.gauge.pending()
        if pending > settings.STREAM_MAX_BUFFER_BYTES:
            return await self.too_slow(pending)
        if "seq" in event and not self.client_acks:
            await self.forward_ack(event["seq"])
        if "close" in event:
            await self.finish(event.get("ending", Ending.SOURCE_ENDED), event.get("reason", ""),
                              revoke=False)
            await self.close(event["close"])

    def labels(self):
        """The metric labels of this stream: its kind and its source's queue."""
        return {"kind": self.kind.slug, "queue": self.source.queue}

    def count(self, event):
        """Add a relayed frame's lines, entries and drops to the metrics tally."""
        session.count(self.tally, self.labels(), event)

    async def stream_stop(self, event):
        """Stop on behalf of an administrator or a limit, telling the viewer why."""
        if self.finished:
            return
        await self.finish(event.get("ending", Ending.ADMIN_STOP), event.get("reason", ""))
        await self.send_message(protocol.status(
            "stopped", from_fields(event.get("message", "stopped"), event)))
        await self.close(protocol.CLOSE_NORMAL)

    async def disconnect(self, code):
        """End the stream when the socket goes away."""
        await self.finish(Ending.DISCONNECT, f"close code {code}")

    async def refuse(self, code, message):
        """Send `status error` and close with the given code (socket already accepted)."""
        await session.refused(self.redis, self.kind,
                              self.scope["url_route"]["kwargs"].get("source_id"),
                              self.scope.get("user"), session.Refusal(code, message))
        await self.finish(Ending.ERROR, message, revoke=False)
        await self.send_message(protocol.status("error", message, code=code))
        await self.close(code)

    async def fail(self, message, detail, retry=False):
        """End the stream with `status error` and a server-error close."""
        await self.finish(Ending.ERROR, detail)
        extra = {"retry": True} if retry else {}
        await self.send_message(protocol.status("error", message, **extra))
        await self.close(protocol.CLOSE_SERVER_ERROR)

    async def finish(self, ending, detail="", revoke=True):
        """Release everything this connection holds and record the end; runs once.

        The release goes on when the consumer is cancelled meanwhile (Daphne stopping), so
        the task is still revoked and the record still closed.
        """
        if self.finished:
            return
        self.finished = True
        work = asyncio.ensure_future(self.release(ending, detail, revoke,
                                                  asyncio.current_task()))
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            await asyncio.wait({work}, timeout=RELEASE_SECONDS)
            raise

    async def release(self, ending, detail, revoke, caller):
        """Stop the helpers (not the caller), drop slot and lease, revoke and record."""
        for helper in self.helpers:
            if helper is not caller:
                await cancel_and_wait(helper)
        if self.rounds is not None:
            self.rounds.leave(self)
        if self.claimed:
            await session.release(self.redis, self.control, self.task_id, self.user.pk,
                                  self.stream_id, revoke)
        if self.stream_id:
            await session.record_end(self.redis, self.kind, self.stream_id, ending, detail,
                                     self.lines_sent, self.tally)
        self.redis = None  # the loop's shared client: not closed here
        self.forget_channel_later()

    def forget_channel_later(self):
        """Have the web layer drop what the task still sends after the viewer left.

        channels-redis would keep messages for a process-local channel nobody reads any more
        (channels_redis #384); `weblayer.ReaderLayer.forget` drops the channel's buffer and
        what arrives for it until the task has surely stopped. Other layers (the in-memory
        one of unit tests) keep nothing of the kind.
        """
        forget = getattr(self.channel_layer, "forget", None)
        if forget is not None and self.channel_name:
            forget(self.channel_name, leases.ttl() + 5)

    async def send_message(self, message):
        """Send one protocol message as a JSON text frame."""
        await self.send(text_data=protocol.encode(message))
