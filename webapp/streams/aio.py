"""Small asyncio helpers shared by the consumer and the task side."""

import asyncio
import collections
import time

READ_AHEAD = 64


async def cancel_and_wait(task, timeout=5.0):
    """Cancel a task and wait until it is done, cancelling again if it swallowed the cancel.

    Python 3.11's asyncio.wait_for (which redis-py uses to write commands) can lose a cancel
    that arrives as the write completes (CPython gh-86296, fixed in 3.12).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not task.done() and loop.time() < deadline:
        task.cancel()
        await asyncio.wait({task}, timeout=0.2)
    if task.done() and not task.cancelled():
        task.exception()


def duration_text(seconds):
    """Say a duration the way people do: 45 s, 10 min, 12 h, 1 h 30 min."""
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h" + (f" {minutes} min" if minutes else "")


def close_loop(loop, timeout=5.0):
    """Cancel what is left on a finished loop (again when a cancel is swallowed), then close it.

    Returns the tasks that would not end within `timeout`; the loop is then left open, since
    closing it under a running task would strand that task's sockets and files for good.
    """
    deadline = time.monotonic() + timeout
    while True:
        stuck = {task for task in asyncio.all_tasks(loop) if not task.done()}
        remaining = deadline - time.monotonic()
        if not stuck or remaining <= 0:
            break
        loop.run_until_complete(asyncio.gather(
            *(loop.create_task(cancel_and_wait(task, remaining)) for task in stuck)))
    if stuck:
        return stuck
    try:
        loop.run_until_complete(asyncio.wait_for(loop.shutdown_asyncgens(), timeout))
    except asyncio.TimeoutError:
        pass
    loop.close()
    return set()


async def dispatch_many(sources, dispatch):
    """Pass what each source (an async callable) returns to `dispatch`, one at a time, in order.

    channels' `await_many_dispatch` made a new task and an `asyncio.wait` for every message;
    here one task per source keeps reading (at most READ_AHEAD ahead of `dispatch`) and hands
    over through a queue. A source's exception is raised here, after what came before it.
    """
    loop = asyncio.get_running_loop()
    inbox = collections.deque()
    state = {"waiter": None, "room": None}

    def wake():
        waiter = state["waiter"]
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def pump(source):
        while True:
            try:
                inbox.append((True, await source()))
            except Exception as exc:
                inbox.append((False, exc))
                wake()
                return
            wake()
            if len(inbox) >= READ_AHEAD:
                state["room"] = room = state["room"] or loop.create_future()
                await room

    pumps = [loop.create_task(pump(source)) for source in sources]
    try:
        while True:
            while not inbox:
                state["waiter"] = loop.create_future()
                await state["waiter"]
            ok, value = inbox.popleft()
            room = state["room"]
            if room is not None and len(inbox) < READ_AHEAD:
                state["room"] = None
                room.set_result(None)
            if not ok:
                raise value
            await dispatch(value)
    finally:
        for task in pumps:
            await cancel_and_wait(task)
