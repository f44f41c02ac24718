"""Flow control end to end, and faults of real processes (killed worker child)."""

import asyncio
import os
import signal

import pytest

from tests.harness import started_installation
from tests.integration.conftest import Client, open_stream

pytestmark = pytest.mark.sqlite_only  # engine tests: see tests/integration/conftest.py


@pytest.fixture(scope="module")
def small_window(tmp_path_factory):
    """An installation with a tiny window and buffer, so a slow viewer overflows quickly."""
    with started_installation(tmp_path_factory.mktemp("flow"), workers=[{"concurrency": 3}],
                      STREAM_WINDOW_FRAMES=2, STREAM_BUFFER_LINES=500,
                      STREAM_MAX_LAG_BYTES=65536, STREAM_WORKER_LOST_SECONDS=4) as harness:
        yield harness


async def window_filled(client, window, timeout=15):
    """Read without acking until `window` lines frames are in; return every message read.

    The worker sends no more frames until the viewer acks, so at that point the viewer is
    behind by whatever the log holds beyond those frames."""
    held = []
    deadline = asyncio.get_running_loop().time() + timeout
    while sum(m["type"] == "lines" for m in held) < window:
        remaining = deadline - asyncio.get_running_loop().time()
        assert remaining > 0, f"the window did not fill within {timeout} s: {held}"
        held.append(await client.next(timeout=remaining))
    return held


async def test_viewer_far_behind_gets_dropped_counts_and_no_silent_loss(small_window,
                                                                        tmp_path):
    system = small_window
    log = tmp_path / "flood.log"
    log.write_text("")
    source = system.add_log("flood", log)
    async with open_stream(system, f"/ws/tailf/{source}/?lines=0") as socket:
        client = Client(socket)
        await client.send({"action": "ack", "seq": -1})
        await client.status("running")
        total = 200_000
        with open(log, "a") as handle:
            handle.writelines(f"line {n} {'x' * 90}\n" for n in range(total))
        # The viewer does not ack until the worker has filled its window (2 frames): from
        # then on the worker is held back by the viewer, 20 MB behind, past the lag limit.
        held = await window_filled(client, 2)
        delivered, dropped, last_seq = [], 0, -1
        while len(delivered) + dropped < total:
            message = held.pop(0) if held else await client.next(timeout=10)
            if message["type"] == "lines":
                delivered.extend(message["lines"])
                last_seq = message["seq"]
                await client.send({"action": "ack", "seq": last_seq})
            elif message["type"] == "dropped":
                dropped += message["count"]
        assert dropped > 0
        assert len(delivered) + dropped == total
        numbers = [int(line.split()[1]) for line in delivered]
        assert numbers == sorted(numbers)
        assert numbers[-1] == total - 1


async def test_killed_worker_child_reports_worker_lost(small_window, tmp_path):
    system = small_window
    log = tmp_path / "lost.log"
    log.write_text("")
    source = system.add_log("lost", log)
    async with open_stream(system, f"/ws/tailf/{source}/") as socket:
        client = Client(socket)
        task_id = (await client.status("queued"))["task_id"]
        await client.status("running")
        replies = system.celery.control.inspect(destination=[system.worker.hostname],
                                                timeout=2).active()
        pid = next(task["worker_pid"] for tasks in replies.values() for task in tasks
                   if task["id"] == task_id)
        os.kill(pid, signal.SIGKILL)
        lost = await client.status("error", timeout=10)
        assert "worker lost" in lost["message"] and lost["retry"] is True
        await socket.wait_closed()
        assert socket.close_code == 4503


async def test_viewer_briefly_behind_loses_nothing_the_file_holds_the_lag(small_window,
                                                                          tmp_path):
    system = small_window
    log = tmp_path / "burst.log"
    log.write_text("")
    source = system.add_log("burst", log)
    async with open_stream(system, f"/ws/tailf/{source}/?lines=0") as socket:
        client = Client(socket)
        await client.send({"action": "ack", "seq": -1})
        await client.status("running")
        total = 3000
        with open(log, "a") as handle:
            handle.writelines(f"b {n}\n" for n in range(total))
        # Behind for a moment: no ack until the worker has filled its window (2 frames).
        held = await window_filled(client, 2)
        delivered = []
        while len(delivered) < total:
            message = held.pop(0) if held else await client.next(timeout=10)
            assert message["type"] != "dropped"
            if message["type"] == "lines":
                delivered.extend(message["lines"])
                await client.send({"action": "ack", "seq": message["seq"]})
        assert delivered == [f"b {n}" for n in range(total)]
