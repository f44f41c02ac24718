"""Faults around workers, on real processes: a whole worker killed with SIGKILL, no worker
on a source's queue, and the stream duration limit (STREAM_MAX_SECONDS=10, the minimum)."""

import asyncio
import os
import signal
import time

import pytest
from websockets.exceptions import ConnectionClosed

from tests.harness import started_installation
from tests.integration.conftest import Client, open_stream

pytestmark = pytest.mark.sqlite_only  # worker faults and signals: see tests/integration/conftest.py

LIMIT_SECONDS = 10


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    """A module-local installation with a 10 s stream duration limit."""
    with started_installation(tmp_path_factory.mktemp("worker-faults"), workers=[{"concurrency": 3}],
                      STREAM_MAX_SECONDS=LIMIT_SECONDS) as harness:
        yield harness


def stream_record(harness, task_id):
    """Return 'worker|ending' of the stream record of a task."""
    out = harness.shell(
        "from webapp.models import Stream\n"
        f"s = Stream.objects.get(task_id={task_id!r})\n"
        "print(f'record={s.worker}|{s.ending}')")
    return next(line for line in out.splitlines() if line.startswith("record="))[7:]


async def test_stream_duration_limit_tells_the_viewer_then_closes(installation, tmp_path):
    harness = installation
    log = tmp_path / "limit.log"
    log.write_text("")
    source = harness.add_log("limit", log)
    async with open_stream(harness, f"/ws/tailf/{source}/?lines=0") as socket:
        client = Client(socket)
        task_id = (await client.status("queued"))["task_id"]
        await client.status("running")
        opened = time.monotonic()
        stopped = await client.status("stopped", timeout=LIMIT_SECONDS + 10)
        took = time.monotonic() - opened
        assert "duration limit reached (10 s)" in stopped["message"]
        await socket.wait_closed()
        assert socket.close_code == 1000
    print(f"duration limit: stopped {took:.1f} s after running: {stopped['message']!r}")
    assert LIMIT_SECONDS - 1 <= took <= LIMIT_SECONDS + 5
    ended = await asyncio.to_thread(harness.wait_for, lambda: harness.task_end(task_id), 5)
    assert ended and "duration limit" in ended
    assert stream_record(harness, task_id).endswith("|max_duration")


async def test_without_a_worker_on_its_queue_a_stream_stays_queued(installation, tmp_path):
    harness = installation
    log = tmp_path / "nowhere.log"
    log.write_text("")
    source = harness.add_log("nowhere", log, "--queue", "tailf.nowhere")
    async with open_stream(harness, f"/ws/tailf/{source}/") as socket:
        client = Client(socket)
        queued = await client.status("queued")
        assert "tailf.nowhere" in queued["message"]
        task_id = queued["task_id"]
        with pytest.raises(asyncio.TimeoutError):
            await client.next(timeout=3)
    # The viewer left while no worker consumed the queue: the revoke went nowhere. A worker
    # that appears later takes the task, finds no lease and ends it without running it.
    late = harness.start_worker("late", queues="tailf.nowhere", concurrency=1)
    try:
        ended = await asyncio.to_thread(harness.wait_for, lambda: harness.task_end(task_id), 20)
        assert ended and "not started" in ended
        print(f"no worker on queue: {queued['message']!r}; late worker recorded {ended!r}")
        worker, reason = stream_record(harness, task_id).split("|")
        assert worker == "" and reason == "disconnect"
    finally:
        harness.stop(late)


async def test_whole_worker_killed_mid_stream_reports_worker_lost_within_10_s(installation,
                                                                             tmp_path):
    harness = installation
    log = tmp_path / "killed.log"
    log.write_text("")
    source = harness.add_log("killed", log)
    victim = harness.worker
    try:
        async with open_stream(harness, f"/ws/tailf/{source}/?lines=0") as socket:
            client = Client(socket)
            task_id = (await client.status("queued"))["task_id"]
            await client.status("running")
            os.killpg(victim.pid, signal.SIGKILL)
            killed = time.monotonic()
            lost = await client.status("error", timeout=10)
            took = time.monotonic() - killed
            assert "worker lost" in lost["message"] and lost["retry"] is True
            with pytest.raises(ConnectionClosed):
                await client.next(timeout=5)
            assert socket.close_code == 4503
        print(f"whole worker SIGKILL: viewer told after {took:.1f} s: {lost['message']!r}")
        assert took < 10
        assert stream_record(harness, task_id).split("|")[1] == "worker_lost"
    finally:
        victim.wait(10)
        harness.worker = harness.start_worker("w2", concurrency=3)
    async with open_stream(harness, f"/ws/tailf/{source}/?lines=0") as socket:
        await Client(socket).status("running", timeout=15)
