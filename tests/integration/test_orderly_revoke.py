"""Stop and close end a stream task in order on a real prefork worker: the pool process that
ran it lives on (no fork per stream) and is left exactly as clean as before: the same files,
sockets, pipes, inotify and epoll instances, and threads."""

import asyncio
import collections
import os
import threading
import time

import pytest

from tests.harness import started_installation
from tests.integration.conftest import Client, open_stream
from tests.processes import pool_children

pytestmark = pytest.mark.sqlite_only  # worker faults and signals: see tests/integration/conftest.py


FALLBACK = "did not end within"  # the worker's log line as it SIGTERMs a revoked task's process


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    """One worker with a single pool process, so every stream runs in the same process."""
    with started_installation(tmp_path_factory.mktemp("orderly"),
                              workers=[{"concurrency": 1}]) as harness:
        yield harness


def open_files(pid):
    """Return a Counter of what a process holds open: file paths, socket, pipe, anon inodes."""
    held = collections.Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(("socket:", "pipe:")):
            target = target.split(":")[0]
        held[target] += 1
    return held


def threads(pid):
    """Return how many threads a process runs."""
    return len(os.listdir(f"/proc/{pid}/task"))


def held_state(pid):
    """What a process holds: its open files (see open_files) and its thread count."""
    return open_files(pid), threads(pid)


def settled_state(harness, pid, log, timeout=5):
    """Wait until the process holds no descriptor of `log` and what it holds reads the same
    twice in a row (a stream's tidy-up after its recorded end is over); return that state."""
    last = [None]

    def settled():
        state = held_state(pid)
        steady = state == last[0] and str(log) not in state[0]
        last[0] = state
        return state if steady else None

    state = harness.wait_for(settled, timeout)
    assert state, f"process {pid} did not settle within {timeout} s: {last[0]}"
    return state


def appender(path, stop):
    """Append lines to `path` until `stop` is set (a busy log while the stream is stopped)."""
    def run():
        with open(path, "a", buffering=1) as handle:
            n = 0
            while not stop.is_set():
                handle.write(f"busy line {n} {'z' * 60}\n")
                n += 1
                time.sleep(0.0005)  # the scenario's pace: about 2000 lines a second
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


async def one_stream(harness, source, how, log):
    """Open a stream, see it run and relay a line, end it `how`; return its task id."""
    async with open_stream(harness, f"/ws/tailf/{source}/?lines=0") as socket:
        client = Client(socket)
        task_id = (await client.status("queued"))["task_id"]
        await client.status("running")
        with open(log, "a") as handle:
            handle.write(f"hello {task_id}\n")
        await client.lines([f"hello {task_id}"])
        stop = threading.Event()
        busy = appender(log, stop)
        try:
            if how == "stop":
                await client.send({"action": "stop"})
                await client.status("stopped")
            else:
                await socket.close()
        finally:
            stop.set()
            busy.join()
    return task_id


async def test_stop_and_close_end_the_task_in_order_and_the_pool_process_stays_clean(
        installation, tmp_path):
    harness = installation
    log = tmp_path / "orderly.log"
    log.write_text("")
    source = harness.add_log("orderly", log)
    first = await one_stream(harness, source, "stop", log)  # warm-up: imports, pools
    assert await asyncio.to_thread(harness.wait_for, lambda: harness.task_end(first), 2)
    [child] = pool_children(harness)
    files_before, threads_before = await asyncio.to_thread(settled_state, harness, child, log)

    for how in ("stop", "close") * 4:
        started = time.monotonic()
        task_id = await one_stream(harness, source, how, log)
        ended = await asyncio.to_thread(harness.wait_for,
                                        lambda task_id=task_id: harness.task_end(task_id), 2)
        assert ended, f"task {task_id} ({how}) recorded no end within 2 s"
        assert "ended in order" in ended, ended
        assert time.monotonic() - started < 10

    assert pool_children(harness) == [child], "the pool process was replaced"
    # The last stream's tidy-up may still be closing its sockets: wait (bounded) for the
    # state of before; a leak never gets there.
    clean = await asyncio.to_thread(
        harness.wait_for, lambda: held_state(child) == (files_before, threads_before), 5)
    files_after, threads_after = held_state(child)
    assert str(log) not in files_after
    assert clean, (files_after - files_before, files_before - files_after,
                   threads_after, threads_before)
    worker_log = harness.worker.log_path.read_text()
    assert "SIGTERM" not in worker_log.split("ready.", 1)[-1]
    assert "Traceback" not in worker_log


async def test_a_task_blocked_outside_its_loop_is_terminated_by_the_sigterm_fallback(
        installation, tmp_path):
    """A task whose loop cannot run (stuck in a blocking call) still ends within 2 s of Stop:
    the revoke signal is queued on the loop, and the SIGTERM fallback ends the process."""
    harness = installation
    log = tmp_path / "stuck.log"
    log.write_text("")
    source = harness.add_log("stuck", log)
    async with open_stream(harness, f"/ws/tailf/{source}/?lines=0") as socket:
        client = Client(socket)
        task_id = (await client.status("queued"))["task_id"]
        await client.status("running")
        [child] = pool_children(harness)
        logged = len(harness.worker.log_path.read_text())
        os.kill(child, 19)  # SIGSTOP: the process cannot act on the revoke signal
        started = time.monotonic()
        await client.send({"action": "stop"})
        await client.status("stopped")
        # Past STREAM_REVOKE_GRACE_MS the worker finds the task still running and sends
        # SIGTERM: wait until it says so, then let the process run again.
        fallback = await asyncio.to_thread(harness.wait_for, lambda: FALLBACK in (
            harness.worker.log_path.read_text()[logged:]), 10)
        os.kill(child, 18)  # SIGCONT: the pending SIGUSR1 and SIGTERM are delivered
        assert fallback, "the worker sent no SIGTERM fallback to the stopped process"
    ended = await asyncio.to_thread(harness.wait_for, lambda: harness.task_end(task_id), 5)
    assert ended
    gone = await asyncio.to_thread(
        harness.wait_for, lambda: child not in pool_children(harness), 5)
    assert gone, "the SIGTERM fallback did not end the stuck process"
    assert time.monotonic() - started < 8
