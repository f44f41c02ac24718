"""The channel layer's send: channels-redis, one round trip per message.

channels-redis' `send` makes four sequential Redis calls per message (drop expired, count
against the capacity, add, set the expiry): four round trips for every frame, heartbeat and
status a task sends. `OneTripLayer.send` runs the same four steps as one Lua script, with
the same keys, scores, capacity and expiry, so any channels-redis receiver sees exactly what
it would have seen. The script goes over a `redislink.Link` (one per loop and host), not
through redis-py's pooled client.
"""

import asyncio
import hashlib
import time
import weakref

from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer
from redis.exceptions import ResponseError

from webapp.streams.internals import next_send_host
from webapp.streams.redislink import Link

SEND_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
if redis.call('ZCOUNT', KEYS[1], '-inf', '+inf') >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""
SEND_SHA = hashlib.sha1(SEND_SCRIPT.encode()).hexdigest()


class OneTripLayer(RedisChannelLayer):
    """A RedisChannelLayer whose `send` is one Redis round trip (a Lua script)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.links = weakref.WeakKeyDictionary()  # event loop -> {host index: Link}

    def link(self, index):
        """Return this loop's Link to host `index`, made on first use."""
        loop = asyncio.get_running_loop()
        links = self.links.setdefault(loop, {})
        link = links.get(index)
        if link is None:
            link = links[index] = Link(self.create_pool(index))
        return link

    async def send(self, channel, message):
        """Send a message onto a channel, as channels-redis does, in one round trip."""
        assert isinstance(message, dict), "message is not a dict"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        assert "__asgi_channel__" not in message
        non_local = channel
        if "!" in channel:
            message = dict(message.items())
            message["__asgi_channel__"] = channel
            non_local = self.non_local_name(channel)
            index = self.consistent_hash(channel)
        else:
            index = next_send_host(self)
        now = time.time()
        arguments = (1, self.prefix + non_local, int(now) - int(self.expiry),
                     self.get_capacity(channel), now, self.serialize(message), int(self.expiry))
        link = self.link(index)
        try:  # the script by its digest: its text only when Redis does not know it yet
            [sent] = await link.call(("EVALSHA", SEND_SHA, *arguments))
        except ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            [sent] = await link.call(("EVAL", SEND_SCRIPT, *arguments))
        if not sent:
            raise ChannelFull()

    async def close_pools(self):
        """Close this loop's links, then channels-redis' pools."""
        links = self.links.pop(asyncio.get_running_loop(), {})
        for link in links.values():
            await link.close()
        await super().close_pools()


def task_layer():
    """Return a new layer of the configured backend, for one task's event loop.

    That is `weblayer.ReaderLayer` (sends in one round trip, acks read by one reader), or
    stock channels-redis under CHANNEL_LAYER_STOCK, or the in-memory layer of unit tests:
    the task always speaks the layer Daphne speaks.
    """
    from channels import DEFAULT_CHANNEL_LAYER
    from channels.layers import channel_layers

    return channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
