"""The channel layer of the web processes: channels-redis with one reader per process.

channels-redis delivers every consumer's messages through one Redis list per process
(`specific.<client>!`). Whichever consumer happens to be waiting takes a lock and blocks on
BZPOPMIN for all of them. When that consumer ends (a viewer stops or leaves, which under
churn happens all the time) its receive is cancelled in the middle of the BZPOPMIN, and a
message Redis has already popped for another consumer is dropped: channels_redis #366,
channels #1683. Here a stream's `running` status vanished that way about once in 200 starts.

`ReaderLayer` reads the process list from one task of its own that no consumer owns, in
batches, and hands each message to its channel's queue. A consumer's `receive` only waits on
its queue, so cancelling it can never lose a message meant for anyone (asyncio.Queue.get
gives up an item only to a getter that resumes). It sends like the task layer: one Lua
round trip per message (`tasklayer.OneTripLayer`).
"""

import asyncio
import logging
import time

from webapp.streams import faults
from webapp.streams.internals import receive_buffers
from webapp.streams.redislink import Link
from webapp.streams.tasklayer import OneTripLayer

log = logging.getLogger("tailboard.streams")

RETRY_SECONDS = 0.5
# A reader's BZPOPMIN returns empty this often when nothing comes (channels-redis: 5 s); each
# return wakes the process, which matters for a task (one reader per stream) that is quiet.
READ_TIMEOUT_SECONDS = 30
READ_BATCH = 500
FORGOTTEN_PRUNE_AT = 1000


def popped_members(popped):
    """The members of a ZPOPMIN reply: [m, s, m, s] under RESP2, [[m, s], ...] under RESP3."""
    if popped and isinstance(popped[0], list):
        return [member for member, _score in popped]
    return popped[0::2]


class ReaderFailed:
    """Put in a waiting channel's queue when the process reader lost Redis."""

    def __init__(self, error):
        self.error = error


class ReaderLayer(OneTripLayer):
    """channels-redis with one reader task per process list, and sends in one round trip."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.readers = {}
        self.failure = None
        self.forgotten = {}  # channel -> until when what comes for it is dropped
        self.prune_at = FORGOTTEN_PRUNE_AT

    async def receive(self, channel):
        """Return the next message on a channel; process-specific ones come from the reader."""
        if "!" not in channel:
            return await super().receive(channel)
        assert self.require_valid_channel_name(channel)
        self.ensure_reader(self.non_local_name(channel))
        buffers = receive_buffers(self)
        queue = buffers[channel]
        if queue.empty() and self.failure is not None:
            raise self.failure
        try:
            message = await queue.get()
        finally:  # also when cancelled: a consumer that ends leaves no empty queue behind
            if queue.empty() and buffers.get(channel) is queue:
                del buffers[channel]
        if isinstance(message, ReaderFailed):
            raise message.error
        return message

    def forget(self, channel, seconds):
        """Drop a closed channel's buffer now, and what still arrives for it for `seconds`.

        Its consumer has gone; its task may send a few more frames before it stops.
        """
        receive_buffers(self).pop(channel, None)
        now = time.monotonic()
        if len(self.forgotten) > self.prune_at:  # amortised: the next prune waits for 2×
            self.forgotten = {name: until for name, until in self.forgotten.items()
                              if until > now}
            self.prune_at = max(FORGOTTEN_PRUNE_AT, 2 * len(self.forgotten))
        self.forgotten[channel] = now + seconds

    def ensure_reader(self, real_channel):
        """Start the reader of a process list on the running loop unless it runs there."""
        assert real_channel.endswith(self.client_prefix + "!"), "Wrong client prefix"
        loop = asyncio.get_running_loop()
        reader = self.readers.get(real_channel)
        if reader is not None and not reader.done() and reader.get_loop() is loop:
            return
        self.readers[real_channel] = loop.create_task(self.read_forever(real_channel),
                                                      name=f"channel-layer reader {real_channel}")

    async def read_forever(self, real_channel):
        """Move messages from the process list into their channels' queues, until cancelled.

        Each round trip sends BZPOPMIN and a ZPOPMIN together: Redis runs the ZPOPMIN once
        the BZPOPMIN is served, so one round trip brings the message that woke the reader
        and whatever piled up with it (up to READ_BATCH). It reads over a `Link` of its own,
        since the BZPOPMIN holds its connection. channels-redis' own receive spends four
        sequential round trips on every message (restore, pop, back up, clean), which capped
        a Daphne at a few hundred messages a second.

        A Redis error is handed to every consumer waiting now, and to any that waits before
        Redis answers a PING again (each tells its viewer, as with the stock layer); reading
        goes on after a pause.
        """
        link = Link(self.create_pool(self.consistent_hash(real_channel)))
        key = self.prefix + real_channel
        try:
            while True:
                try:
                    if self.failure is not None:  # Redis answers again: receives may wait
                        await link.call(("PING",))
                        self.failure = None
                    found, popped = await link.call(
                        ("BZPOPMIN", key, READ_TIMEOUT_SECONDS), ("ZPOPMIN", key, READ_BATCH))
                    if found:
                        self.deliver(real_channel, found[1])
                    while True:  # a full batch: more may be waiting
                        members = popped_members(popped)
                        for content in members:
                            self.deliver(real_channel, content)
                        if len(members) < READ_BATCH:
                            break
                        [popped] = await link.call(("ZPOPMIN", key, READ_BATCH))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not isinstance(exc, faults.OUTSIDE):
                        faults.contained(log, "channel layer: the reader failed")
                    if self.failure is None:
                        log.error("channel layer: reading this process's messages failed: %s",
                                  exc)
                    self.failure = exc
                    for queue in list(receive_buffers(self).values()):
                        if queue.empty():
                            queue.put_nowait(ReaderFailed(exc))
                    await asyncio.sleep(RETRY_SECONDS)
        finally:
            await link.close()

    def deliver(self, real_channel, content):
        """Put one popped message in the queue of the channel (or channels) it names."""
        try:
            message = self.deserialize(content)
        except Exception as exc:  # msgpack's ValueErrors; anything else is a bug
            if not isinstance(exc, ValueError):
                faults.contained(log, "channel layer: deserialize failed")
            log.error("channel layer: dropped a message that does not decode: %s", exc)
            return
        target = message.pop("__asgi_channel__", real_channel)
        for name in target if isinstance(target, list) else [target]:
            if name not in self.forgotten:
                receive_buffers(self)[name].put_nowait(message)

    async def close_pools(self):
        """Stop the readers, then close the connection pools."""
        readers, self.readers = list(self.readers.values()), {}
        for reader in readers:
            if reader.done():
                continue
            if reader.get_loop() is asyncio.get_running_loop():
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
            else:
                reader.get_loop().call_soon_threadsafe(reader.cancel)
        await super().close_pools()
