"""A Link pipelines concurrent callers over one connection and stays in step when a caller is
cancelled, an error comes back, or Redis drops the connection (real Redis)."""

import asyncio

import pytest
import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from webapp.streams.redislink import Link


@pytest.fixture
def pool(redis_client, settings):
    return redis.asyncio.ConnectionPool.from_url(settings.REDIS_URL)


async def in_blpop(redis_client, timeout=5):
    """Wait until Redis shows a client blocked in BLPOP: the call has reached the server."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not any(c["cmd"] == "blpop" for c in redis_client.client_list()):
        assert asyncio.get_running_loop().time() < deadline, "no BLPOP reached Redis"
        await asyncio.sleep(0.01)


async def test_concurrent_callers_share_one_connection_and_get_their_own_replies(pool,
                                                                                 redis_client):
    link = Link(pool)
    replies = await asyncio.gather(*(link.call(("INCR", "n"), ("GET", "n")) for _ in range(50)))
    assert sorted(count for count, _ in replies) == list(range(1, 51))
    assert all(int(got) == count for count, got in replies)
    clients = [c for c in redis_client.client_list() if c["cmd"] in ("incr", "get")]
    assert len(clients) == 1
    await link.close()


async def test_a_cancelled_caller_leaves_the_connection_in_step(pool, redis_client):
    link = Link(pool)
    await link.call(("SET", "k", "v"))
    blocked = asyncio.ensure_future(link.call(("BLPOP", "nothing", 0.3)))
    await in_blpop(redis_client)
    blocked.cancel()
    assert await link.call(("GET", "k")) == [b"v"]  # not the BLPOP's late nil
    await link.close()


async def test_an_error_reply_is_raised_after_the_calls_other_replies_are_read(pool):
    link = Link(pool)
    with pytest.raises(ResponseError):
        await link.call(("SET", "k", "v"), ("INCR", "k"), ("GET", "k"))
    assert await link.call(("GET", "k")) == [b"v"]
    await link.close()


async def test_a_dropped_connection_fails_waiting_callers_and_the_next_call_reconnects(
        pool, redis_client):
    link = Link(pool)
    await link.call(("CLIENT", "SETNAME", "victim"))
    waiting = asyncio.ensure_future(link.call(("BLPOP", "nothing", 5)))
    await in_blpop(redis_client)
    redis_client.client_kill_filter(_type="normal", skipme=True)
    with pytest.raises(RedisConnectionError):
        await asyncio.wait_for(waiting, 2)
    assert await link.call(("PING",)) == [b"PONG"]
    await link.close()
    with pytest.raises(RedisConnectionError):  # closed: what waited fails, nothing hangs
        later = asyncio.ensure_future(link.call(("BLPOP", "nothing", 5)))
        await in_blpop(redis_client)
        await link.close()
        await asyncio.wait_for(later, 2)
