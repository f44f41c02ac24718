"""The channel layer a stream task sends with: channels-redis, one round trip per message.

channels-redis' `send` makes four sequential Redis calls per message (drop expired, count
against the capacity, add, set the expiry): four round trips for every frame, heartbeat and
status a task sends. `OneTripLayer.send` runs the same four steps as one Lua script, with
the same keys, scores, capacity and expiry, so receivers (Daphne's ordinary
RedisChannelLayer) see exactly what they would have seen.
"""

import time

from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer
from django.conf import settings

SEND_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
if redis.call('ZCOUNT', KEYS[1], '-inf', '+inf') >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class OneTripLayer(RedisChannelLayer):
    """A RedisChannelLayer whose `send` is one Redis round trip (a Lua script)."""

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
            index = next(self._send_index_generator)
        now = time.time()
        sent = await self.connection(index).eval(
            SEND_SCRIPT, 1, self.prefix + non_local, int(now) - int(self.expiry),
            self.get_capacity(channel), now, self.serialize(message), int(self.expiry))
        if not sent:
            raise ChannelFull()


def task_layer():
    """Return a new OneTripLayer configured like the project's default channel layer.

    Falls back to the configured backend when that is not channels-redis (unit tests use
    the in-memory layer).
    """
    from channels import DEFAULT_CHANNEL_LAYER
    from channels.layers import channel_layers
    from django.utils.module_loading import import_string

    config = settings.CHANNEL_LAYERS[DEFAULT_CHANNEL_LAYER]
    if not issubclass(import_string(config["BACKEND"]), RedisChannelLayer):
        return channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    return OneTripLayer(**config.get("CONFIG", {}))
