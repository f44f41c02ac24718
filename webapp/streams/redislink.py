"""A lean, pipelined Redis connection for the hot paths of the channel layers.

redis-py's asyncio client spends more Python on a command than the round trip itself: a pool
lock, health and "has data" checks, observability hooks and a release per call (about 140 µs
of CPU against about 60 µs for the bare write, wait and parse). Every relayed frame costs a
send in the task and a read in Daphne, so that overhead was a large share of their CPU.

A `Link` is one connection, set up by redis-py (URL, auth, database, TLS, sentinel) and then
used directly: callers write their commands at once, several in one write when they go
together, and the connection's protocol parses each reply as it arrives (no reader task in
between) and hands it to its caller, in order. Concurrent callers share the connection
(their commands simply queue in Redis' input), and a caller that is cancelled leaves the
connection in step: its replies are read and dropped.
"""

import asyncio
import collections

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from webapp.streams.internals import stream_transport


class Link:
    """One Redis connection of a pool's kind, shared by concurrent callers, pipelined."""

    def __init__(self, pool):
        self.pool = pool
        self.connection = None
        self.transport = None
        self.waiting = collections.deque()  # [future, replies still to come, replies so far]
        self.connecting = None

    async def call(self, *commands):
        """Send commands (tuples of arguments) in one write; return their replies in order.

        An error reply is raised (after every reply of this call has been read).
        """
        transport = self.transport or await self._connect()
        future = asyncio.get_running_loop().create_future()
        self.waiting.append([future, len(commands), []])
        transport.writelines(self.connection.pack_commands(commands))
        replies = await future
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise reply
        return replies

    async def _connect(self):
        if self.connecting is None:
            self.connecting = asyncio.ensure_future(self._open())
        try:
            return await asyncio.shield(self.connecting)
        finally:
            if self.connecting is not None and self.connecting.done():
                self.connecting = None

    async def _open(self):
        connection = self.pool.make_connection()
        await connection.connect()  # redis-py: address, TLS, AUTH, HELLO, SELECT
        transport = stream_transport(connection)
        transport.set_protocol(Replies(self, transport))
        self.connection, self.transport = connection, transport
        return transport

    def deliver(self, reply):
        """Hand one reply to the call it answers (called by the protocol)."""
        entry = self.waiting[0]
        entry[2].append(reply)
        entry[1] -= 1
        if not entry[1]:
            self.waiting.popleft()
            if not entry[0].done():
                entry[0].set_result(entry[2])

    def lost(self, transport, error):
        """The connection ended: every call still waiting fails; the next call reconnects."""
        if transport is not self.transport:
            return
        self.transport = self.connection = None
        waiting, self.waiting = self.waiting, collections.deque()
        for future, _left, _replies in waiting:
            if not future.done():
                future.set_exception(error)

    async def close(self):
        """Close the connection; calls still waiting fail with a ConnectionError."""
        if self.connecting is not None:
            self.connecting.cancel()
            await asyncio.gather(self.connecting, return_exceptions=True)
            self.connecting = None
        transport = self.transport
        if transport is not None:
            self.lost(transport, RedisConnectionError("the connection was closed"))
            transport.close()


class Replies(asyncio.Protocol):
    """The protocol of a Link's connection: parses replies as they arrive."""

    def __init__(self, link, transport):
        self.link = link
        self.transport = transport
        self.parser = hiredis.Reader(replyError=ResponseError)

    def data_received(self, data):
        """Parse what arrived and deliver every complete reply."""
        try:
            self.parser.feed(data)
            reply = self.parser.gets()
            while reply is not False:
                if not isinstance(reply, hiredis.PushNotification):  # RESP3 pushes
                    self.link.deliver(reply)
                reply = self.parser.gets()
        except Exception as exc:  # a protocol error or a reply nobody asked for
            self.link.lost(self.transport,
                           RedisConnectionError(f"reading from Redis failed: {exc!r}"))
            self.transport.abort()

    def eof_received(self):
        """Redis closed its side: the connection is over."""
        return False

    def connection_lost(self, exc):
        """Fail what still waits on this connection."""
        self.link.lost(self.transport, RedisConnectionError(
            f"lost the connection to Redis{f': {exc}' if exc else ''}"))
