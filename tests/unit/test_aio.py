"""Shared asyncio helpers: stubborn cancellation and durations for people."""

import asyncio

import pytest

from webapp.streams.aio import cancel_and_wait, duration_text


async def test_cancel_and_wait_cancels_again_a_task_that_swallowed_the_first_cancel():
    swallowed = []

    async def stubborn():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            swallowed.append(True)
        await asyncio.sleep(10)

    task = asyncio.ensure_future(stubborn())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert swallowed and task.cancelled()


@pytest.mark.parametrize("seconds, text", [(10, "10 s"), (600, "10 min"), (43200, "12 h"),
                                           (5400, "1 h 30 min")])
def test_durations_read_the_way_people_say_them(seconds, text):
    assert duration_text(seconds) == text
