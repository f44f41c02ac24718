"""The one-connection-one-task lifecycle shared by every stream consumer.

A consumer accepts the socket, checks login, source, access, options and limits (closing
with SPEC's codes), records the stream, grants a lease in Redis, sends `status queued` and
starts one Celery task on the source's queue that sends to this consumer's channel. It
relays the task's frames, renews the lease while connected, and on Stop or disconnect drops
the lease and revokes the task with terminate=True.
"""

import asyncio
import logging
import re
import time
import uuid
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from webapp import leases, protocol, records, workers
from webapp.aio import cancel_and_wait

log = logging.getLogger("tailboard.streams")

MAX_SOURCE_ID = 2**63 - 1
SOURCE_ID_RE = re.compile(r"[1-9][0-9]{0,18}")


class OptionError(ValueError):
    """A query option that cannot be used; the message is shown to the user."""


def int_option(query, name, default, minimum, maximum):
    """Read one integer query option within bounds, or raise OptionError."""
    raw = query.get(name, [None])[-1]
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise OptionError(f"{name} must be a whole number, got {raw[:40]!r}") from None
    if not minimum <= value <= maximum:
        raise OptionError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


class TaskControl:
    """Starts and revokes stream tasks through Celery (blocking; call off the loop)."""

    def start(self, task, task_id, kwargs, queue):
        """Queue the task on the source's queue with an expiry."""
        task.apply_async(kwargs=kwargs, task_id=task_id, queue=queue,
                         expires=settings.STREAM_QUEUE_EXPIRES)

    def revoke(self, task_id):
        """Revoke the task and terminate its process if it is running."""
        from celery_app import app
        app.control.revoke(task_id, terminate=True, signal="SIGTERM")


def viewer_gone(exc):
    """True for the error the server raises on a send to a socket the viewer has dropped."""
    return type(exc).__name__ == "Disconnected" or isinstance(exc, ConnectionResetError)


class StreamConsumer(AsyncWebsocketConsumer):
    """Base consumer for one stream; subclasses name the kind, model, task and options."""

    kind = None
    source_model = None
    task = None
    control_class = TaskControl

    async def __call__(self, scope, receive, send):
        """Run the consumer; when the channel layer (Redis) fails under a stream, say so.

        Channels lets an exception from the channel layer's receive end the consumer, and
        Daphne then closes the socket with 1011 without a word; the viewer is told instead.
        """
        try:
            await super().__call__(scope, receive, send)
        except Exception as exc:
            if getattr(self, "finished", True):
                raise
            if viewer_gone(exc):
                log.info("stream %s: the viewer went away as a frame was sent", self.stream_id)
                await self.finish("disconnect (dropped)")
                return
            log.error("stream %s: the channel layer failed: %s", self.stream_id, exc)
            try:
                await self.send_message(protocol.status(
                    "error", f"lost contact with Redis: {exc}", retry=True))
                await self.close(protocol.CLOSE_SERVER_ERROR)
            except Exception as again:
                log.info("stream %s: could not tell the viewer: %s", self.stream_id, again)
            finally:
                await self.finish("error (redis)")

    def parse_options(self, query):
        """Return the task options from the query string, or raise OptionError."""
        return {}

    async def connect(self):
        """Accept, then authorize and start the stream or close with a code."""
        self.stream_id = None
        self.task_id = None
        self.redis = None
        self.lease_keeper = None
        self.monitor = None
        self.ack_channel = None
        self.client_acks = False
        self.last_beat = None
        self.worker = ""
        self.finished = False
        self.lines_sent = 0
        self.control = self.control_class()
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return await self.refuse(protocol.CLOSE_NOT_LOGGED_IN, "not logged in")
        source = await self.find_source(self.scope["url_route"]["kwargs"].get("source_id"))
        if source is None:
            return await self.refuse(protocol.CLOSE_NO_SOURCE, f"no such {self.kind} source")
        if not await database_sync_to_async(source.allows)(user):
            return await self.refuse(protocol.CLOSE_FORBIDDEN,
                                     f"you may not view {self.kind} source {source.pk}")
        try:
            options = self.parse_options(parse_qs(self.scope.get("query_string", b"").decode(
                "latin-1")))
        except OptionError as exc:
            return await self.refuse(protocol.CLOSE_BAD_OPTION, f"bad option: {exc}")
        self.redis = leases.async_client()
        try:
            await self.start(user, source, options)
        except Exception:
            log.exception("could not start %s stream of %s for %s", self.kind, source.pk, user)
            await self.fail("could not start the stream: the server's queue is unreachable")

    async def find_source(self, raw_id):
        """Return the enabled source with this id, or None (also for malformed ids)."""
        if not isinstance(raw_id, str) or not SOURCE_ID_RE.fullmatch(raw_id):
            return None
        source_id = int(raw_id)
        if source_id > MAX_SOURCE_ID:
            return None
        return await database_sync_to_async(
            self.source_model.objects.filter(pk=source_id, enabled=True).first)()

    async def start(self, user, source, options):
        """Check the limits, record the stream, grant the lease and queue the task."""
        refusal = await self.over_limit(user)
        if refusal:
            return await self.refuse(protocol.CLOSE_TOO_MANY, refusal)
        self.task_id = str(uuid.uuid4())
        await leases.agrant(self.redis, self.task_id, self.channel_name)
        stream = await database_sync_to_async(records.create)(
            user, self.kind, source, options, self.task_id, self.channel_name)
        self.stream_id = stream.pk
        log.info("stream %s: %s opened %s %s (%s) task %s on queue %s", stream.pk, user,
                 self.kind, source.pk, source.name, self.task_id, source.queue)
        online = await self.workers_online(source.queue)
        await self.send_message(protocol.status(
            "queued", f"waiting for a worker on queue {source.queue} ({online} online)",
            task_id=self.task_id, stream=stream.pk, queue=source.queue, workers_online=online))
        self.lease_keeper = asyncio.create_task(self.keep_lease())
        kwargs = {"source_id": source.pk, "channel_name": self.channel_name,
                  "options": options, "stream_id": stream.pk}
        await sync_to_async(self.control.start, thread_sensitive=False)(
            self.task, self.task_id, kwargs, source.queue)

    async def workers_online(self, queue):
        """Return how many workers consume this queue now (-1 when unknown)."""
        try:
            return len((await workers.aonline(self.redis)).get(queue, []))
        except Exception as exc:
            log.warning("could not read the worker registry: %s", exc)
            return -1

    async def over_limit(self, user):
        """Return a refusal message when the user or the server has too many streams."""
        mine = await self.live_count(user)
        if mine >= settings.STREAM_MAX_PER_USER:
            return (f"too many streams: you have {mine} open, the limit is "
                    f"{settings.STREAM_MAX_PER_USER} per user")
        total = await self.live_count(None)
        if total >= settings.STREAM_MAX_TOTAL:
            return (f"too many streams: the server has {total} open, the limit is "
                    f"{settings.STREAM_MAX_TOTAL}")
        return None

    async def live_count(self, user):
        """Count open streams, first closing records whose lease has lapsed."""
        pairs = await database_sync_to_async(records.open_task_ids)(user)
        stale = [pk for pk, task_id in pairs if not await leases.aheld(self.redis, task_id)]
        if stale:
            await database_sync_to_async(records.end_many)(stale, "lost (lease expired)")
        return len(pairs) - len(stale)

    async def keep_lease(self):
        """Renew the lease while connected; tell the viewer if Redis stops answering."""
        try:
            while not self.finished:
                await asyncio.sleep(leases.refresh_interval())
                if not self.finished:
                    await leases.agrant(self.redis, self.task_id, self.channel_name,
                                        self.lines_sent)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("stream %s: lease renewal failed: %s", self.stream_id, exc)
            await self.fail(f"lost contact with Redis: {exc}", "error (redis)", retry=True)

    async def receive(self, text_data=None, bytes_data=None):
        """Handle a client frame: `stop` ends the stream, `ack` gives the task credit."""
        action, data = protocol.parse_client(text_data) if text_data is not None else (None, None)
        if action == "stop":
            await self.finish("client stop")
            await self.send_message(protocol.status("stopped", "stopped by the viewer"))
            await self.close(protocol.CLOSE_NORMAL)
        elif action == "ack" and isinstance(data.get("seq"), int):
            self.client_acks = True
            await self.forward_ack(data["seq"])
        else:
            await self.send_message(protocol.notice(
                "ignored a message the server does not understand"))

    async def forward_ack(self, seq):
        """Pass the viewer's credit on to the task."""
        if self.ack_channel and not self.finished and seq >= 0:
            try:
                await self.channel_layer.send(self.ack_channel, protocol.ack_event(seq))
            except Exception as exc:
                log.warning("stream %s: could not forward an ack: %s", self.stream_id, exc)

    async def stream_hello(self, event):
        """The task has started: remember its ack channel and watch its heartbeat."""
        self.ack_channel = event["ack_channel"]
        self.last_beat = time.monotonic()
        if self.monitor is None and not self.finished:
            self.monitor = asyncio.create_task(self.watch_worker())

    async def stream_heartbeat(self, event):
        """The task is alive."""
        self.last_beat = time.monotonic()

    async def watch_worker(self):
        """Tell the viewer when the task's worker stops answering (killed, lost)."""
        limit = settings.STREAM_WORKER_LOST_SECONDS
        while not self.finished:
            await asyncio.sleep(1)
            silent = time.monotonic() - self.last_beat
            if silent > limit and not self.finished:
                where = f" {self.worker}" if self.worker else ""
                log.error("stream %s: worker%s lost (silent for %.0f s)", self.stream_id, where,
                          silent)
                await self.finish(f"error: worker{where} lost")
                await self.send_message(protocol.status(
                    "error", f"worker lost: no sign of life from{where or ' the worker'} for "
                             f"{silent:.0f} s", retry=True))
                await self.close(protocol.CLOSE_WORKER_LOST)
                return

    async def stream_frame(self, event):
        """Relay one frame from the task; a final frame ends the stream."""
        if self.finished:
            return
        self.last_beat = time.monotonic()
        if event.get("worker") and self.stream_id:
            self.worker = event["worker"]
            await database_sync_to_async(records.set_worker)(self.stream_id, event["worker"])
        await self.send(text_data=event["text"])
        self.lines_sent += event.get("lines", 0)
        if "seq" in event and not self.client_acks:
            await self.forward_ack(event["seq"])
        if "close" in event:
            await self.finish(event.get("reason", "task ended"), revoke=False)
            await self.close(event["close"])

    async def stream_stop(self, event):
        """Stop on behalf of an administrator or a limit, telling the viewer why."""
        if self.finished:
            return
        await self.finish(event.get("reason", "stopped"))
        await self.send_message(protocol.status("stopped", event.get("message", "stopped")))
        await self.close(protocol.CLOSE_NORMAL)

    async def disconnect(self, code):
        """End the stream when the socket goes away."""
        await self.finish(f"disconnect ({code})")

    async def refuse(self, code, message):
        """Send `status error` and close with the given code (socket already accepted)."""
        user = self.scope.get("user")
        log.warning("refused %s stream %s for %s: %s %s", self.kind,
                    self.scope["url_route"]["kwargs"].get("source_id"), user, code, message)
        self.finished = True
        await self.send_message(protocol.status("error", message, code=code))
        await self.close(code)

    async def fail(self, message, reason="error", retry=False):
        """End the stream with `status error` and a server-error close."""
        await self.finish(reason)
        extra = {"retry": True} if retry else {}
        await self.send_message(protocol.status("error", message, **extra))
        await self.close(protocol.CLOSE_SERVER_ERROR)

    async def finish(self, reason, revoke=True):
        """Drop the lease, revoke the task and record the end; runs once per stream."""
        if self.finished:
            return
        self.finished = True
        for helper in (self.lease_keeper, self.monitor):
            if helper and helper is not asyncio.current_task():
                await cancel_and_wait(helper)
        if self.task_id:
            try:
                await leases.arevoke(self.redis, self.task_id)
            except Exception as exc:
                log.error("stream %s: could not drop lease: %s", self.stream_id, exc)
            if revoke:
                try:
                    await sync_to_async(self.control.revoke, thread_sensitive=False)(
                        self.task_id)
                except Exception as exc:
                    log.error("stream %s: revoke failed (the lease ends the task): %s",
                              self.stream_id, exc)
        if self.stream_id:
            await database_sync_to_async(records.end)(self.stream_id, reason, self.lines_sent)
            log.info("stream %s ended: %s", self.stream_id, reason)
        if self.redis is not None:
            await self.redis.aclose()
        self.forget_channel_later()

    def forget_channel_later(self):
        """Drop what the task sent after the viewer left, once it can send no more.

        channels-redis keeps messages for a process-local channel nobody reads any more
        (channels_redis #384); the task stops within the lease time, so after that the
        channel's buffer is dropped.
        """
        buffer = getattr(self.channel_layer, "receive_buffer", None)
        if buffer is not None and self.channel_name:
            asyncio.get_running_loop().call_later(leases.ttl() + 5, buffer.pop,
                                                  self.channel_name, None)

    async def send_message(self, message):
        """Send one protocol message as a JSON text frame."""
        await self.send(text_data=protocol.encode(message))
