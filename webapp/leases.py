"""Stream leases in Redis: a live consumer keeps its task's lease; no lease, no task."""

import time

import redis
import redis.asyncio as aioredis
from django.conf import settings

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
    """Return a new asyncio Redis client on REDIS_URL (the caller closes it)."""
    return aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=10,
                                   socket_connect_timeout=5, health_check_interval=30)


_sync_clients = {}


def sync_client():
    """Return this process's blocking Redis client on REDIS_URL (shared and thread-safe).

    One pool per process, so requests and task ends do not each leave a socket behind;
    redis-py resets the pool's connections in a forked child.
    """
    url = settings.REDIS_URL
    client = _sync_clients.get(url)
    if client is None:
        client = _sync_clients[url] = redis.Redis.from_url(
            url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30)
    return client


def sent_key(task_id):
    """Return the Redis key where a consumer publishes how many lines it has sent."""
    return SENT_PREFIX + task_id


async def agrant(client, task_id, holder, lines_sent=None):
    """Create or renew the lease of a task (consumer side), publishing lines sent so far."""
    await client.set(lease_key(task_id), holder, ex=ttl())
    if lines_sent is not None:
        await client.set(sent_key(task_id), lines_sent, ex=END_TTL)


async def arevoke(client, task_id):
    """Drop the lease so the task stops at its next check, even if a revoke is lost."""
    await client.delete(lease_key(task_id))


async def aheld(client, task_id):
    """Tell whether the task's lease is still held (task side)."""
    return bool(await client.exists(lease_key(task_id)))


async def arecord_end(client, task_id, reason):
    """Record that a task has ended and why (read by ops tools and tests)."""
    await client.set(end_key(task_id), f"{time.time():.3f} {reason}", ex=END_TTL)


def held(client, task_id):
    """Blocking twin of aheld."""
    return bool(client.exists(lease_key(task_id)))


def record_end(client, task_id, reason):
    """Blocking twin of arecord_end, for `finally` blocks running outside the loop."""
    client.set(end_key(task_id), f"{time.time():.3f} {reason}", ex=END_TTL)


def lines_sent(client, task_ids):
    """Return {task id: lines its consumer has sent, as of its last lease renewal}."""
    task_ids = list(task_ids)
    if not task_ids:
        return {}
    values = client.mget([sent_key(task_id) for task_id in task_ids])
    return {task_id: int(value) for task_id, value in zip(task_ids, values) if value}


def ended(client, task_id):
    """Return the recorded end of a task as text, or None while it has not ended."""
    value = client.get(end_key(task_id))
    return value.decode() if value else None
