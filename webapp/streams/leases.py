"""Stream leases in Redis: a live consumer keeps its task's lease; no lease, no task."""

import asyncio
import time
import weakref

from django.conf import settings

from webapp import redisconf
from webapp.streams.text import say

PREFIX = "tailboard:lease:"
END_PREFIX = "tailboard:ended:"
SENT_PREFIX = "tailboard:sent:"
END_TTL = 3600


def lease_key(task_id):
    """Return the Redis key of a task's lease."""
    return PREFIX + task_id


def end_key(task_id):
    """Return the Redis key where a task records how it ended."""
    return END_PREFIX + task_id


def ttl():
    """Return the lease lifetime in seconds."""
    return settings.STREAM_LEASE_SECONDS


def refresh_interval():
    """Return how often a consumer renews its lease."""
    return max(1.0, ttl() / 3)


def async_client():
    """Return a new asyncio Redis client on the configured Redis (the caller closes it).

    That is REDIS_URL, or the master the sentinels name (`redisconf`), found again at every
    reconnect.
    """
    return redisconf.configured().async_client(
        socket_timeout=10, socket_connect_timeout=5, health_check_interval=30, driver_info=None,
        max_connections=settings.REDIS_MAX_CONNECTIONS)


_loop_clients = weakref.WeakKeyDictionary()


def loop_client():
    """Return the running loop's shared asyncio Redis client (pooled; nobody closes it).

    Daphne serves every consumer on one loop: a client per consumer cost a new connection,
    its health check and its close for every stream.
    """
    loop = asyncio.get_running_loop()
    client = _loop_clients.get(loop)
    if client is None:
        client = _loop_clients[loop] = async_client()
    return client


_sync_clients = {}


def sync_client():
    """Return this process's blocking client on the configured Redis (shared, thread-safe).

    One pool per process, so requests and task ends do not each leave a socket behind;
    redis-py resets the pool's connections in a forked child.
    """
    place = redisconf.configured()
    client = _sync_clients.get(place)
    if client is None:
        client = _sync_clients[place] = place.sync_client(
            socket_timeout=10, socket_connect_timeout=5, health_check_interval=30,
            driver_info=None)
    return client


def sent_key(task_id):
    """Return the Redis key where a consumer publishes how many lines it has sent."""
    return SENT_PREFIX + task_id


USER_SLOTS = "tailboard:slots:user:"
ALL_SLOTS = "tailboard:slots:all"

# One round trip per connect: drop lapsed slots, check both limits, claim both slots and the
# lease, or claim nothing. Scores are expiry times (Redis server clock).
CLAIM_SCRIPT = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1e6
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', t)
local mine = redis.call('ZCARD', KEYS[1])
if mine >= tonumber(ARGV[3]) then return {1, mine} end
local total = redis.call('ZCARD', KEYS[2])
if total >= tonumber(ARGV[4]) then return {2, total} end
for i = 4, #KEYS do
  local held = 0
  for _, member in ipairs(redis.call('SMEMBERS', KEYS[i])) do
    if redis.call('EXISTS', ARGV[6] .. member) == 1 then
      held = held + 1
    else
      redis.call('SREM', KEYS[i], member)
    end
  end
  if held >= tonumber(ARGV[i + 4]) then return {i, held} end
end
local expires = t + tonumber(ARGV[5])
redis.call('ZADD', KEYS[1], expires, ARGV[1])
redis.call('ZADD', KEYS[2], expires, ARGV[1])
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[5])
for i = 4, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[1])
  redis.call('EXPIRE', KEYS[i], ARGV[7])
end
return {0, mine + 1}
"""

POOL_SLOTS = "tailboard:slots:pool:"

RENEW_SCRIPT = """
local now = redis.call('TIME')
local expires = tonumber(now[1]) + tonumber(now[2]) / 1e6 + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'XX', expires, ARGV[1])
redis.call('ZADD', KEYS[2], 'XX', expires, ARGV[1])
redis.call('SET', KEYS[3], ARGV[3], 'XX', 'EX', ARGV[2])
redis.call('SET', KEYS[4], ARGV[4], 'EX', ARGV[5])
return 1
"""


def user_slots_key(user_id):
    """Return the Redis key of one user's stream slots."""
    return f"{USER_SLOTS}{user_id}"


def pool_key(name, user_id):
    """Return the Redis key of one user's slots in a kind's pool (e.g. "search")."""
    return f"{POOL_SLOTS}{name}:{user_id}"


async def aclaim(client, task_id, holder, user_id, pools=()):
    """Claim a stream slot and the task's lease atomically; return a refusal text or None.

    Holds under any number of simultaneous connects: the check and the claim are one Lua
    script, so exactly STREAM_MAX_PER_USER of a user's racing connects get a slot. `pools`
    are the kind's extra per-user limits for this stream (`Kind.pools`: `Pool(name, limit,
    what)`, e.g. at most 2 history searches): a pool's slot is held as long as the stream's
    lease is (members whose lease is gone are dropped at the next claim), so it needs no
    renewal or release of its own.
    """
    pools = list(pools)
    refused, count = await client.eval(
        CLAIM_SCRIPT, 3 + len(pools), user_slots_key(user_id), ALL_SLOTS, lease_key(task_id),
        *[pool_key(pool.name, user_id) for pool in pools], task_id, holder,
        settings.STREAM_MAX_PER_USER, settings.STREAM_MAX_TOTAL, ttl(), PREFIX,
        settings.STREAM_MAX_SECONDS + ttl(), *[pool.limit for pool in pools])
    if refused == 1:
        return say("too_many_user", count=count, limit=settings.STREAM_MAX_PER_USER)
    if refused == 2:
        return say("too_many_total", count=count, limit=settings.STREAM_MAX_TOTAL)
    if refused >= 4:
        pool = pools[refused - 4]
        return say("too_many_pool", what=pool.what, count=count, limit=pool.limit)
    return None


async def arenew_many(client, renewals):
    """Renew many leases in one round trip: (task id, holder, user id, lines sent) each.

    A lease already dropped (the stream ended meanwhile) is not brought back.
    """
    async with client.pipeline(transaction=False) as pipe:
        for task_id, holder, user_id, lines_sent in renewals:
            pipe.eval(RENEW_SCRIPT, 4, user_slots_key(user_id), ALL_SLOTS, lease_key(task_id),
                      sent_key(task_id), task_id, ttl(), holder, lines_sent, END_TTL)
        await pipe.execute()


async def arelease(client, task_id, user_id):
    """Drop the lease and the slots, so the task stops at its next check and the slot frees."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(lease_key(task_id))
        pipe.zrem(user_slots_key(user_id), task_id)
        pipe.zrem(ALL_SLOTS, task_id)
        await pipe.execute()


def release(client, task_id, user_id=None):
    """Blocking twin of arelease for ops tools (the user's slot lapses by itself if unknown)."""
    with client.pipeline(transaction=True) as pipe:
        pipe.delete(lease_key(task_id))
        if user_id is not None:
            pipe.zrem(user_slots_key(user_id), task_id)
        pipe.zrem(ALL_SLOTS, task_id)
        pipe.execute()


async def apublish_sent_many(client, counts):
    """Publish how many lines streams' consumers have sent, (task id, lines) each, in one trip.

    Read by `streams` and the admin.
    """
    async with client.pipeline(transaction=False) as pipe:
        for task_id, lines_sent in counts:
            pipe.set(sent_key(task_id), lines_sent, ex=END_TTL)
        await pipe.execute()


async def aheld(client, task_id):
    """Tell whether the task's lease is still held (task side)."""
    return bool(await client.exists(lease_key(task_id)))


def held(client, task_id):
    """Blocking twin of aheld."""
    return bool(client.exists(lease_key(task_id)))


def record_end(client, task_id, reason):
    """Record that a task has ended and why (read by ops tools and tests)."""
    client.set(end_key(task_id), f"{time.time():.3f} {reason}", ex=END_TTL)


def lines_sent(client, task_ids):
    """Return {task id: lines its consumer has sent, as of its last lease renewal}."""
    task_ids = list(task_ids)
    if not task_ids:
        return {}
    values = client.mget([sent_key(task_id) for task_id in task_ids])
    return {task_id: int(value) for task_id, value in zip(task_ids, values, strict=False) if value}
