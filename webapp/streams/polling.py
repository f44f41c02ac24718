"""Streams over plain HTTP (long polling): the WebSocket's stream, through another transport.

A long-poll stream is started like a WebSocket one (`session.authorize`, `session.open_stream`:
same refusals, slot, lease, record and task) and its task sends to a normal channel name
(`tailboard.poll.<random>`), not a process-local one, so whichever Daphne process gets the next
poll can read it. What the consumer keeps in memory is kept in Redis instead (a hash per
stream), with the messages sent but not yet confirmed by the viewer (a list): the viewer's
`after=N` confirms messages 1..N, which makes a repeated poll harmless and gives the task its
credit (flow control: a viewer who polls slowly makes the task wait, buffer and drop, as on the
WebSocket). Each poll renews the lease; no poll for STREAM_LEASE_SECONDS is a disconnect: a
reaper in every Daphne process that serves polls ends such streams (revoke, record). The
lease itself lasts LEASE_GRACE_SECONDS longer, so the reaper ends the stream first, as a
disconnect; the task's own lease check is the fallback when no web process is left.

One poll reads the channel at a time (a lock in Redis; a newer poll of the same stream makes
the older one answer within a second). Reading happens in a task of its own that a cancelled
request (the viewer went away) lets finish its current read, so nothing popped is lost.
"""

import asyncio
import contextvars
import hashlib
import logging
import secrets
import time

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings

from webapp import metrics
from webapp.models import Ending
from webapp.streams import access, faults, kinds, leases, protocol, records, session
from webapp.streams.sessionrefresh import refresher
from webapp.streams.text import from_fields, say

log = logging.getLogger("tailboard.streams")

PREFIX = "tailboard:poll:"
DEADLINES = PREFIX + "deadlines"  # token -> when its lease lapses (Redis clock)
CHANNEL_PREFIX = "tailboard.poll."
POLL_SECONDS = 25.0  # a poll with nothing to say answers after this (idle proxies keep it)
SLICE_SECONDS = 1.0  # a waiting poll looks at stop, newer polls and its lease this often
READ_BATCH = 200
RESPONSE_BYTES = 2 * 1024 * 1024  # a busy stream's answer stops here; the next poll goes on
KEEP_SECONDS = 120  # an ended stream's state stays this long, for a repeated last poll
LOCK_SECONDS = 3  # the reading poll extends it every slice; a dead process's lapses soon
# A polled stream's lease outlives its lapse deadline by this much, so the reaper (which knows
# the viewer stopped polling) ends it first, as a disconnect; the task's own lease check ends
# it only when no web process is left to reap it.
LEASE_GRACE_SECONDS = 2  # two reaper rounds (SLICE_SECONDS); whole seconds, for EX

APPEND_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'closed') == 1 then
  return {-1, 0}
end
local bytes = 0
local top = tonumber(redis.call('HGET', KEYS[1], 'taken_seq') or '-1')
for i = 2, #ARGV do
  redis.call('RPUSH', KEYS[2], ARGV[i])
  bytes = bytes + string.len(ARGV[i])
  local seq = tonumber(string.match(ARGV[i], '^(-?%d+)\\n'))
  if seq > top then top = seq end
end
redis.call('HSET', KEYS[1], 'taken_seq', top)
local total = redis.call('HINCRBY', KEYS[1], 'bytes', bytes)
local last = redis.call('HINCRBY', KEYS[1], 'last', #ARGV - 1)
redis.call('EXPIRE', KEYS[2], ARGV[1])
return {last, total}
"""

CLOSE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'closed') == 1 then
  return 0
end
for i = 4, #ARGV do
  redis.call('RPUSH', KEYS[2], ARGV[i])
end
local last = redis.call('HINCRBY', KEYS[1], 'last', #ARGV - 3)
redis.call('HSET', KEYS[1], 'closed', ARGV[2], 'closed_at', last)
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[3])
return 1
"""

# Confirm messages 1..N (drop them, note the highest data seq among them) and read what
# follows, up to ARGV[2] items: {base, last, seen seq, closed, closed_at, items...}.
CONFIRM_SCRIPT = """
local base = tonumber(redis.call('HGET', KEYS[1], 'base') or '0')
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local n = math.min(tonumber(ARGV[1]), last)
if n > base then
  local top = tonumber(redis.call('HGET', KEYS[1], 'seen_seq') or '-1')
  local bytes = 0
  for _, item in ipairs(redis.call('LRANGE', KEYS[2], 0, n - base - 1)) do
    local seq = tonumber(string.match(item, '^(-?%d+)\\n'))
    if seq > top then top = seq end
    bytes = bytes + string.len(item)
  end
  redis.call('LTRIM', KEYS[2], n - base, -1)
  redis.call('HSET', KEYS[1], 'base', n, 'seen_seq', top)
  redis.call('HINCRBY', KEYS[1], 'bytes', -bytes)
  base = n
end
local out = {base, last, redis.call('HGET', KEYS[1], 'seen_seq') or '-1',
             redis.call('HGET', KEYS[1], 'closed') or '', redis.call('HGET', KEYS[1], 'closed_at') or '0'}
for _, item in ipairs(redis.call('LRANGE', KEYS[2], 0, tonumber(ARGV[2]) - 1)) do
  table.insert(out, item)
end
return out
"""

# Update a live stream's fields (never bring back an expired one, which would have no TTL):
# ARGV[1] lines to add, ARGV[2] a field to set once (its first setting returns 1), then pairs.
UPDATE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if tonumber(ARGV[1]) ~= 0 then redis.call('HINCRBY', KEYS[1], 'lines', ARGV[1]) end
local first = 0
if ARGV[2] ~= '' then first = redis.call('HSETNX', KEYS[1], ARGV[2], 1) end
if #ARGV > 2 then redis.call('HSET', KEYS[1], unpack(ARGV, 3)) end
return first
"""

DEADLINE_SCRIPT = """
local now = redis.call('TIME')
redis.call('ZADD', KEYS[1], tonumber(now[1]) + tonumber(now[2]) / 1e6 + tonumber(ARGV[2]), ARGV[1])
return 1
"""

# Take a token off the deadlines if its deadline has passed (a poll may have pushed it back
# since DUE_SCRIPT listed it); 1 for the one caller that took it.
TAKE_DUE_SCRIPT = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
local now = redis.call('TIME')
if tonumber(score) > tonumber(now[1]) + tonumber(now[2]) / 1e6 then return 0 end
return redis.call('ZREM', KEYS[1], ARGV[1])
"""

DUE_SCRIPT = """
local now = redis.call('TIME')
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', tonumber(now[1]) + tonumber(now[2]) / 1e6,
                  'LIMIT', 0, 100)
"""

EXTEND_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

UNLOCK_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def detached(coro, name):
    """Run a coroutine as a task outside the request's context: it may outlive the request,
    and asgiref's executor of a finished request refuses database calls."""
    return asyncio.get_running_loop().create_task(coro, name=name, context=contextvars.Context())


class NotFound(LookupError):
    """No such stream for this session (unknown token, another session's, or long ended)."""


def state_key(token):
    """The Redis hash of a long-poll stream."""
    return f"{PREFIX}{token}"


def buffer_key(token):
    """The Redis list of a stream's messages not yet confirmed by its viewer."""
    return f"{PREFIX}{token}:m"


def lock_key(token):
    """Held by the one poll that reads the stream's channel."""
    return f"{PREFIX}{token}:r"


def session_tag(session_key):
    """What binds a stream to its browser session (a hash: the key itself is not stored)."""
    return hashlib.sha256(f"tailboard-poll:{session_key}".encode()).hexdigest()


def item(text, seq=-1):
    """A buffered message: its data seq (-1 for control messages) and its JSON text."""
    return f"{seq}\n{text}"


def ttl():
    """How long a live stream's state lives without a poll (more than its lease)."""
    return leases.ttl() + KEEP_SECONDS


class PollStream:
    """One long-poll stream, as one request sees it; its state lives in Redis."""

    def __init__(self, token, state, redis, control):
        self.token = token
        self.redis = redis
        self.control = control
        self.kind = kinds.get(state["kind"])
        self.task_id = state["task_id"]
        self.stream_id = int(state["stream_id"])
        self.user_id = int(state["user_id"])
        self.source_id = int(state["source_id"])
        self.queue = state.get("queue", "")
        self.channel_name = state["channel"]
        self.state = state
        self.tally = metrics.Tally()
        self.abandoned = False
        self.closed_seen = False

    @classmethod
    async def load(cls, redis, token, control, tag=None):
        """Return the stream of this token (of this session, when `tag` is given)."""
        if not isinstance(token, str) or not 20 <= len(token) <= 64:
            raise NotFound(token)
        raw = await redis.hgetall(state_key(token))
        state = {key.decode(): value.decode() for key, value in raw.items()}
        if "task_id" not in state or (tag is not None and not secrets.compare_digest(
                state.get("session", ""), tag)):
            raise NotFound(token)
        return cls(token, state, redis, control)

    def labels(self):
        """The metric labels of this stream: its kind and its source's queue."""
        return {"kind": self.kind.slug, "queue": self.queue}

    async def field(self, name, default=None):
        """Read one field of the stream's state now."""
        value = await self.redis.hget(state_key(self.token), name)
        return value.decode() if value is not None else default

    async def update(self, lines=0, once="", **fields):
        """Set fields of the stream's state (and add lines sent) if it still exists; return
        True when `once` was set by this call."""
        pairs = [part for name, value in fields.items() for part in (name, value)]
        return await self.redis.eval(UPDATE_SCRIPT, 1, state_key(self.token), lines, once,
                                     *pairs) == 1

    async def append(self, items):
        """Buffer messages for the viewer (not after the end); return the bytes buffered."""
        if not items:
            return 0
        _last, total = await self.redis.eval(APPEND_SCRIPT, 2, state_key(self.token),
                                             buffer_key(self.token), ttl(), *items)
        return int(total)

    async def close(self, code, texts):
        """Mark the stream closed after these final messages; True for the one that did."""
        return bool(await self.redis.eval(
            CLOSE_SCRIPT, 3, state_key(self.token), buffer_key(self.token), DEADLINES,
            KEEP_SECONDS, code, self.token, *[item(text) for text in texts]))

    async def finish(self, ending, detail, code, message=None, text=None, revoke=True):
        """End the stream once (whichever process gets here first): the viewer's last message,
        then slot, lease, revoke and record, as the consumer's `finish` does."""
        final = [text] if text is not None else ([protocol.encode(message)] if message else [])
        if not await self.close(code, final):
            return False
        lines = int(await self.field("lines", "0"))
        await session.release(self.redis, self.control, self.task_id, self.user_id,
                              self.stream_id, revoke)
        await session.record_end(self.redis, self.kind, self.stream_id, ending, detail, lines,
                                 self.tally)
        return True

    async def renew(self, gen=False):
        """Renew the lease (a poll is a sign of life) and push the lapse deadline back, in one
        round trip; return whether the lease is held (and this poll's number, with `gen`).
        The lease is renewed for LEASE_GRACE_SECONDS past the deadline."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.eval(leases.RENEW_SCRIPT, 4, leases.user_slots_key(self.user_id),
                      leases.ALL_SLOTS, leases.lease_key(self.task_id),
                      leases.sent_key(self.task_id), self.task_id,
                      leases.ttl() + LEASE_GRACE_SECONDS,
                      self.channel_name, int(self.state.get("lines", 0)), leases.END_TTL)
            pipe.eval(DEADLINE_SCRIPT, 1, DEADLINES, self.token, leases.ttl())
            pipe.expire(state_key(self.token), ttl())
            pipe.exists(leases.lease_key(self.task_id))
            if gen:
                pipe.hincrby(state_key(self.token), "gen", 1)
            replies = await pipe.execute()
        return bool(replies[3]), (replies[4] if gen else None)

    async def lapse(self):
        """End a stream whose lease lapsed: no poll came for STREAM_LEASE_SECONDS."""
        seconds = leases.ttl()
        log.info("stream %s: no poll for %s s: the viewer is gone", self.stream_id, seconds)
        await self.finish(Ending.DISCONNECT, f"no poll for {seconds} s",
                          protocol.CLOSE_TOO_SLOW, protocol.status(
                              "error", say("poll_lapsed", seconds=seconds), retry=True,
                              code=protocol.CLOSE_TOO_SLOW))

    async def check_access(self, browser_session):
        """Re-check the viewer's access once per lease refresh interval; end the stream if lost."""
        now = time.time()
        if now - float(self.state.get("checked_at", 0)) < leases.refresh_interval():
            return
        self.state["checked_at"] = now
        await self.update(checked_at=now)
        refresher().poke([browser_session])
        source = await database_sync_to_async(
            self.kind.source_model.objects.filter(pk=self.source_id).first)()
        source = source or self.kind.source_model(pk=self.source_id)
        lost = (await database_sync_to_async(access.lost_many)(
            [(self.user_id, browser_session, source)]))[0]
        if lost is not None:
            log.warning("stream %s: %s", self.stream_id, lost.message)
            await self.finish(Ending.SOURCE_GONE if lost.gone else Ending.ACCESS_LOST,
                              lost.message, lost.code,
                              protocol.status("error", lost.message, code=lost.code))

    async def check_worker(self):
        """End the stream when its task's worker has been silent too long (4503, retry)."""
        beat = float(await self.field("last_beat", "0"))
        limit = settings.STREAM_WORKER_LOST_SECONDS
        silent = time.time() - beat
        if beat and silent > limit:
            worker = await self.field("worker", "") or "the worker"
            log.error("stream %s: worker %s lost (silent for %.0f s)", self.stream_id, worker,
                      silent)
            await self.finish(Ending.WORKER_LOST, f"worker {worker} silent {silent:.0f} s",
                              protocol.CLOSE_WORKER_LOST, protocol.status(
                                  "error", say("worker_lost", worker=worker,
                                               seconds=round(silent)), retry=True))

    async def give_credit(self):
        """Pass the viewer's credit to the task, as the consumer does for a socket.

        Frames taken for the viewer count as credit while at most STREAM_SEND_BUFFER_BYTES
        wait unconfirmed (Daphne's buffer for a socket); beyond that only what the viewer
        confirmed (`after`) does, so the task waits and the lag stays on disk. A client that
        acks gets no more than it acked.
        """
        state = await self.redis.hmget(state_key(self.token), "seen_seq", "taken_seq", "bytes",
                                       "client_ack", "forwarded", "ack_channel")
        seen, taken, held, client_ack, forwarded, ack_channel = [
            v.decode() if v else None for v in state]
        credit = int(seen or -1)
        if int(held or 0) <= settings.STREAM_SEND_BUFFER_BYTES:
            credit = max(credit, int(taken or -1))
        if client_ack is not None:
            credit = min(credit, int(client_ack))
        if not ack_channel or credit <= int(forwarded or -1):
            return
        await self.update(forwarded=credit)
        try:
            await get_channel_layer().send(ack_channel, protocol.ack_event(credit))
        except (*faults.OUTSIDE, ChannelFull) as exc:
            log.warning("stream %s: could not forward an ack: %s", self.stream_id, exc)

    async def handle(self, event, out):
        """Apply one channel-layer event as the consumer's handlers do; data goes to `out`."""
        kind = event.get("type")
        if kind == protocol.EVENT_HELLO:
            await self.update(ack_channel=event["ack_channel"], last_beat=time.time())
        elif kind == protocol.EVENT_HEARTBEAT:
            await self.update(last_beat=time.time())
        elif kind == protocol.EVENT_FRAME:
            await self.relay(event, out)
        elif kind == protocol.EVENT_STOP:
            await self.flush(out)
            await self.finish(event.get("ending", Ending.ADMIN_STOP), event.get("reason", ""),
                              protocol.CLOSE_NORMAL, protocol.status(
                                  "stopped", from_fields(event.get("message", "stopped"),
                                                         event)))

    async def relay(self, event, out):
        """Buffer one frame from the task; a final frame ends the stream."""
        worker = event.get("worker")
        extra = {"worker": worker} if worker else {}
        self.state["lines"] = int(self.state.get("lines", 0)) + protocol.items_sent(event)
        first_running = await self.update(protocol.items_sent(event),
                                          "running_seen" if worker else "",
                                          last_beat=time.time(), **extra)
        if worker:
            if first_running:
                await metrics.aobserve(self.redis, "connect_to_running_seconds", self.labels(),
                                       time.time() - float(self.state.get("connected_at", 0)))
            await database_sync_to_async(records.set_worker)(self.stream_id, worker)
        session.count(self.tally, self.labels(), event)
        if "close" in event:
            await self.flush(out)
            await self.finish(event.get("ending", Ending.SOURCE_ENDED), event.get("reason", ""),
                              event["close"], text=event["text"], revoke=False)
            return
        out.append(item(event["text"], event.get("seq", -1)))

    async def flush(self, out):
        """Buffer what this read took; end the stream if the viewer lets too much wait (4408)."""
        items, out[:] = list(out), []
        total = await self.append(items)
        if items:
            await self.give_credit()
        if total > settings.STREAM_MAX_BUFFER_BYTES:
            message = say("too_slow", mib=total // (1024 * 1024))
            log.warning("stream %s: %s", self.stream_id, message)
            await self.finish(Ending.TOO_SLOW, message, protocol.CLOSE_TOO_SLOW,
                              protocol.status("error", message, code=protocol.CLOSE_TOO_SLOW))
        return bool(items)

    async def read_slice(self, timeout):
        """Take what the task sent (waiting up to `timeout`), apply it; True when any data
        for the viewer arrived."""
        layer = get_channel_layer()
        connection = layer.connection(0)
        key = layer.prefix + self.channel_name
        found = await connection.bzpopmin(key, timeout)
        members = [found[1]] if found else []
        if found:
            members += [member for member, _score in await connection.zpopmin(key, READ_BATCH)]
        out = []
        for content in members:
            try:
                event = layer.deserialize(content)
            except Exception as exc:  # msgpack's ValueErrors; anything else is a bug
                if not isinstance(exc, ValueError):
                    faults.contained(log, "stream %s: deserialize failed", self.stream_id)
                log.error("stream %s: dropped a message that does not decode: %s",
                          self.stream_id, exc)
                continue
            await self.handle(event, out)
        return await self.flush(out)

    async def wait(self, gen, browser_session, until):
        """Read the channel until data arrives, the stream ends, a newer poll comes or time
        is up. Runs as a task of its own: see the module's docstring."""
        token = self.token
        owner = secrets.token_hex(8)
        locked = False
        while time.monotonic() < until and not self.abandoned:
            locked = await self.redis.set(lock_key(token), owner, nx=True, ex=LOCK_SECONDS)
            if locked or await self.field("gen") != str(gen):
                break
            await asyncio.sleep(0.05)
        if not locked:
            return
        renewed = time.monotonic()
        try:
            while not self.abandoned:
                remaining = until - time.monotonic()
                if remaining <= 0:
                    return
                got = await self.read_slice(min(SLICE_SECONDS, max(0.01, remaining)))
                await self.redis.eval(EXTEND_SCRIPT, 1, lock_key(token), owner, LOCK_SECONDS)
                closed, current = await self.redis.hmget(state_key(token), "closed", "gen")
                if got or closed or (current or b"").decode() != str(gen):
                    return
                await self.check_worker()
                if time.monotonic() - renewed >= leases.refresh_interval():
                    renewed = time.monotonic()
                    await self.renew()
                    await self.check_access(browser_session)
        finally:
            await self.redis.eval(UNLOCK_SCRIPT, 1, lock_key(token), owner)
            await self.tally.aflush(self.redis)

    async def answer(self, after):
        """Confirm messages 1..after and return the response body (JSON text)."""
        reply = await self.redis.eval(CONFIRM_SCRIPT, 2, state_key(self.token),
                                      buffer_key(self.token), max(0, after), 4096)
        base, _last, seen_seq, closed, closed_at = (int(reply[0]), int(reply[1]),
                                                    int(reply[2]), reply[3], int(reply[4]))
        self.closed_seen = bool(closed)
        texts, size = [], 0
        for raw in reply[5:]:
            text = raw.decode().split("\n", 1)[1]
            if texts and size + len(text) > RESPONSE_BYTES:
                break
            texts.append(text)
            size += len(text)
        upto = base + len(texts)
        ended = f'{{"code":{int(closed)}}}' if closed and upto >= closed_at else "null"
        return seen_seq, ('{"messages":[' + ",".join(texts) + f'],"next":{upto},'
                          f'"closed":{ended}}}'), bool(texts) or ended != "null"


async def start(kind, user, session_key, raw_id, query_string, control):
    """Open a long-poll stream; return its token or raise session.Refusal."""
    redis = leases.loop_client()
    try:
        source, options = await session.authorize(kind, user, raw_id, query_string)
        channel_name = CHANNEL_PREFIX + secrets.token_hex(16)
        opened = await session.open_stream(redis, kind, user, source, options, channel_name)
    except session.Refusal as refusal:
        await session.refused(redis, kind, raw_id, user, refusal)
        raise
    token = secrets.token_urlsafe(32)
    state = {"kind": kind.slug, "task_id": opened.task_id, "stream_id": opened.stream_id,
             "user_id": user.pk, "source_id": source.pk, "queue": source.queue,
             "channel": channel_name, "session": session_tag(session_key), "base": 0,
             "last": 0, "bytes": 0, "lines": 0, "gen": 0, "checked_at": time.time(),
             "connected_at": time.time()}
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(state_key(token), mapping=state)
        pipe.expire(state_key(token), ttl())
        pipe.eval(DEADLINE_SCRIPT, 1, DEADLINES, token, leases.ttl())
        await pipe.execute()
    stream = PollStream(token, {k: str(v) for k, v in state.items()}, redis, control)
    await stream.renew()  # the lease, with its grace past the deadline
    await stream.append([item(protocol.encode(opened.queued))])
    reaper().ensure()
    try:
        await sync_to_async(control.start, thread_sensitive=False)(
            kind.task, opened.task_id, session.task_kwargs(source, channel_name, options),
            source.queue)
    except Exception as exc:
        if not isinstance(exc, faults.OUTSIDE):
            faults.contained(log, "stream %s: could not queue its task", opened.stream_id)
        log.error("stream %s: could not queue its task: %s", opened.stream_id, exc)
        await stream.finish(Ending.ERROR, repr(exc), protocol.CLOSE_SERVER_ERROR,
                            protocol.status("error", say("redis_lost", error=exc), retry=True))
    return token


async def poll(token, session_key, browser_session, after, control):
    """Answer one poll: confirm 1..after, then what follows, waiting up to POLL_SECONDS."""
    redis = leases.loop_client()
    stream = await PollStream.load(redis, token, control, session_tag(session_key))
    reaper().ensure()
    if stream.state.get("closed"):
        gen = await redis.hincrby(state_key(token), "gen", 1)
    else:
        held, gen = await stream.renew(gen=True)
        if not held:
            # The lease is gone: an ops stop (its event waits in the channel) or the viewer
            # came back too late (the task has ended).
            await stream.read_slice(0.01)
            await stream.lapse()
        else:
            await stream.check_access(browser_session)
    seen_seq, body, ready = await stream.answer(after)
    await stream.give_credit()
    if ready or stream.closed_seen:
        return body
    await stream.check_worker()
    work = detached(stream.wait(gen, browser_session, time.monotonic() + POLL_SECONDS),
                    "long poll")
    try:
        await asyncio.shield(work)
    except asyncio.CancelledError:
        stream.abandoned = True  # the read under way still lands in the buffer
        raise
    return (await stream.answer(after))[1]


async def act(token, session_key, text, control):
    """Apply a client message (`stop` or `ack`) as the WebSocket's `receive` does."""
    redis = leases.loop_client()
    stream = await PollStream.load(redis, token, control, session_tag(session_key))
    try:
        action, data = protocol.parse_client(text)
    except protocol.ClientMessageError as exc:
        message = exc.args[0]
        log.warning("stream %s: %s", stream.stream_id, message)
        await stream.finish(Ending.ERROR, message, protocol.CLOSE_BAD_OPTION,
                            protocol.status("error", message, code=protocol.CLOSE_BAD_OPTION))
        return {"closed": {"code": protocol.CLOSE_BAD_OPTION}}
    if action == "stop":
        await stream.finish(Ending.VIEWER_STOP, "", protocol.CLOSE_NORMAL,
                            protocol.status("stopped", say("stopped_by_viewer")))
        return {"closed": {"code": int(await stream.field("closed", protocol.CLOSE_NORMAL))}}
    if action == "ack" and isinstance(data.get("seq"), int) and data["seq"] >= -1:
        current = await stream.field("client_ack")
        if current is None or data["seq"] > int(current):
            await stream.update(client_ack=data["seq"])
        await stream.give_credit()
        return {"closed": None}
    await stream.append([item(protocol.encode(protocol.notice(say("unknown_message"))))])
    return {"closed": None}


class Reaper:
    """Ends long-poll streams whose viewer stopped polling (their lease lapsed): one per
    process loop, running while any stream is registered."""

    def __init__(self):
        self.task = None

    def ensure(self):
        """Run the reaper on this loop unless it runs."""
        if self.task is None or self.task.done():
            self.task = detached(self.run(), "poll reaper")

    async def run(self):
        """Look for lapsed streams every second while there are any."""
        redis = leases.loop_client()
        while True:
            await asyncio.sleep(SLICE_SECONDS)
            try:
                if not await redis.zcard(DEADLINES):
                    return
                for token in await redis.eval(DUE_SCRIPT, 1, DEADLINES):
                    await self.reap(redis, token.decode())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not isinstance(exc, faults.OUTSIDE):
                    faults.contained(log, "long-poll reaper round failed")
                log.warning("long-poll reaper round failed (retried in a second): %s", exc)

    async def reap(self, redis, token):
        """End one stream whose deadline passed, unless a poll pushed it back meanwhile."""
        from webapp.streams.consumer import TaskControl

        if not await redis.eval(TAKE_DUE_SCRIPT, 1, DEADLINES, token):
            return  # renewed as the deadline passed, or another process's reaper took it
        try:
            stream = await PollStream.load(redis, token, TaskControl())
        except (NotFound, KeyError, ValueError):
            return
        await stream.lapse()


_reapers = {}


def reaper():
    """Return the running loop's reaper."""
    loop = asyncio.get_running_loop()
    found = _reapers.get(loop)
    if found is None:
        found = _reapers[loop] = Reaper()
    return found
