"""dispatch_many hands messages over one at a time, in order per source, raises a source's
error after what came before it, and reads no further than READ_AHEAD past dispatch."""

import asyncio

import pytest

from webapp.streams import aio


def queue_source(queue):
    async def source():
        item = await queue.get()
        if isinstance(item, Exception):
            raise item
        return item
    return source


async def test_messages_of_each_source_arrive_in_order_one_dispatch_at_a_time():
    first, second = asyncio.Queue(), asyncio.Queue()
    seen, busy = [], []

    async def dispatch(message):
        busy.append(message)
        assert len(busy) == 1, "two dispatches at once"
        await asyncio.sleep(0)
        seen.append(message)
        busy.pop()
        if len(seen) == 200:
            raise asyncio.CancelledError

    for n in range(100):
        first.put_nowait(("a", n))
        second.put_nowait(("b", n))
    with pytest.raises(asyncio.CancelledError):
        await aio.dispatch_many([queue_source(first), queue_source(second)], dispatch)
    assert [n for name, n in seen if name == "a"] == list(range(100))
    assert [n for name, n in seen if name == "b"] == list(range(100))


async def test_a_sources_error_is_raised_after_the_messages_before_it():
    queue = asyncio.Queue()
    for item in (1, 2, ValueError("broken"), 3):
        queue.put_nowait(item)
    seen = []

    async def dispatch(message):
        seen.append(message)

    with pytest.raises(ValueError, match="broken"):
        await aio.dispatch_many([queue_source(queue)], dispatch)
    assert seen == [1, 2]


async def test_reading_stays_at_most_read_ahead_messages_past_a_slow_dispatch():
    queue = asyncio.Queue()
    for n in range(aio.READ_AHEAD * 3):
        queue.put_nowait(n)
    release = asyncio.Event()

    async def dispatch(message):
        await release.wait()

    running = asyncio.ensure_future(aio.dispatch_many([queue_source(queue)], dispatch))
    # Loop turns, not time: enough for the reader to take every message if it did not stop.
    for _ in range(aio.READ_AHEAD * 3 * 10):
        await asyncio.sleep(0)
    taken = aio.READ_AHEAD * 3 - queue.qsize()
    assert aio.READ_AHEAD <= taken <= aio.READ_AHEAD + 2
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
