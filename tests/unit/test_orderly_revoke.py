"""The revoke signal ends a stream task in order: it reaches the task through its event loop
(never raising where the process happens to be), a stray one (meant for an earlier task of
the process) is ignored while the lease is held, a late one after the task is harmless, and
the worker terminates only a process still busy with the revoked task."""

import asyncio
import os
import signal
import threading

import pytest

from webapp.streams import leases, stop
from webapp.streams import task as tasking
from webapp.streams.stop import REVOKE_SIGNAL, ignore_late_revoke, revoke_signal_handled


@pytest.fixture
def revoke_raises():
    """What billiard installs for SIGUSR1 in a pool process: an exception wherever it lands."""
    def soft_timeout(signum, frame):
        raise RuntimeError("SoftTimeLimitExceeded")

    previous = signal.signal(REVOKE_SIGNAL, soft_timeout)
    yield
    signal.signal(REVOKE_SIGNAL, previous)


def test_the_revoke_signal_reaches_the_loop_as_a_callback_and_is_harmless_afterwards(
        revoke_raises):
    loop = asyncio.new_event_loop()
    seen = []

    async def busy():
        for _ in range(200):
            await asyncio.sleep(0.005)
            if seen:
                return "woken"
        return "not woken"

    with revoke_signal_handled(loop, lambda: seen.append("revoke")) as installed:
        assert installed
        loop.call_later(0.05, os.kill, os.getpid(), REVOKE_SIGNAL)
        assert loop.run_until_complete(busy()) == "woken"
    assert signal.getsignal(REVOKE_SIGNAL) is ignore_late_revoke
    os.kill(os.getpid(), REVOKE_SIGNAL)  # after the task: neither raises nor ends the process
    loop.close()
    assert signal.getsignal(REVOKE_SIGNAL) is ignore_late_revoke


def test_outside_the_main_thread_no_handler_is_installed():
    loop = asyncio.new_event_loop()
    result = []

    def run():
        with revoke_signal_handled(loop, lambda: None) as installed:
            result.append(installed)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    loop.close()
    assert result == [False]


async def test_a_revoke_signal_while_the_lease_is_held_is_ignored_until_the_lease_goes(
        redis_client, settings):
    client = leases.async_client()
    redis_client.set(leases.lease_key("t-stray"), "holder")
    signalled = asyncio.Event()
    watcher = asyncio.ensure_future(stop.revoked(client, "t-stray", signalled))
    try:
        signalled.set()  # a revoke meant for the task before this one
        await asyncio.sleep(0.2)
        assert not watcher.done()
        redis_client.delete(leases.lease_key("t-stray"))
        signalled.set()  # the real one: Stop dropped the lease, then revoked
        await asyncio.wait_for(watcher, 2)
    finally:
        watcher.cancel()
        await client.aclose()


def run_until_revoked(monkeypatch, redis_client, task_id, body):
    """Run the real run_stream with `body`; revoke it (lease dropped, SIGUSR1) once running."""
    from channels.layers import channel_layers

    ended = []
    monkeypatch.setattr(leases, "record_end",
                        lambda client, tid, reason: ended.append((tid, reason)))
    redis_client.set(leases.lease_key(task_id), "holder")

    def revoke_soon():
        redis_client.delete(leases.lease_key(task_id))
        os.kill(os.getpid(), REVOKE_SIGNAL)

    timer = threading.Timer(0.5, revoke_soon)
    timer.start()
    try:
        result = tasking.run_stream(task_id, "w1", "specific.test!consumer", body)
    finally:
        timer.cancel()
        channel_layers.backends.clear()
    return result, ended


def test_a_revoked_task_ends_in_order_closing_what_its_body_opened(
        monkeypatch, redis_client, revoke_raises, tmp_path):
    log = tmp_path / "held.log"
    log.write_text("x\n")
    closed = []

    async def body(out, worker):
        handle = open(log)
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0.01)  # tidying up may await; it is not cut short
            handle.close()
            closed.append(handle.closed)

    fds_before = set(os.listdir("/proc/self/fd"))
    threads_before = threading.active_count()
    result, ended = run_until_revoked(monkeypatch, redis_client, "t-orderly", body)
    assert result == tasking.REVOKED
    assert ended == [("t-orderly", tasking.REVOKED)]
    assert closed == [True]
    assert threading.active_count() == threads_before
    leaked = {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in
              set(os.listdir("/proc/self/fd")) - fds_before
              if os.path.exists(f"/proc/self/fd/{fd}")}
    assert not leaked


def test_a_revoke_before_the_task_checks_its_lease_ends_it_unstarted(
        monkeypatch, redis_client):
    ended = []
    monkeypatch.setattr(leases, "record_end",
                        lambda client, tid, reason: ended.append((tid, reason)))
    started = []

    async def body(out, worker):
        started.append(True)

    result = tasking.run_stream("t-early", "w1", "specific.test!consumer", body)
    assert "not started" in result and not started


class FakeJob:
    def __init__(self, ready, pid=4242):
        self._ready, self._worker_pid = ready, pid

    def ready(self):
        return self._ready


class FakeRequest:
    def __init__(self, job, task_id="t-1"):
        self.id, self.worker_pid = task_id, 4242
        self._apply_result = (lambda: job) if job is not None else None


class FakeProcess:
    exitcode = None
    _controlled_termination = True
    _job_terminated = True


class FakePool:
    def __init__(self):
        self.terminated = []
        self.process = FakeProcess()
        self._pool = self

    def terminate_job(self, pid, sig):
        self.terminated.append((pid, sig))

    def _process_by_pid(self, pid):
        return self.process, 0


def test_the_worker_terminates_a_process_still_busy_with_the_revoked_task(monkeypatch):
    monkeypatch.setattr(stop, "end_recorded", lambda task_id: False)
    pool = FakePool()
    assert stop.check_back(pool, FakeRequest(FakeJob(ready=False))) == signal.SIGTERM
    assert pool.terminated == [(4242, signal.SIGTERM)]


def test_the_worker_spares_a_process_whose_task_recorded_its_end(monkeypatch):
    monkeypatch.setattr(stop, "end_recorded", lambda task_id: True)
    pool = FakePool()
    assert stop.check_back(pool, FakeRequest(FakeJob(ready=False))) is None
    assert pool.terminated == []


def test_a_process_that_ended_its_task_in_order_loses_billiards_terminated_marks(
        monkeypatch):
    monkeypatch.setattr(stop, "end_recorded", lambda task_id: True)
    pool = FakePool()
    assert stop.check_back(pool, FakeRequest(FakeJob(ready=True))) is None
    assert pool.terminated == []
    assert not pool.process._controlled_termination and not pool.process._job_terminated


def test_end_recorded_reads_the_task_end_key(redis_client, settings):
    stop._client.clear()
    assert not stop.end_recorded("t-2")
    leases.record_end(redis_client, "t-2", "done")
    assert stop.end_recorded("t-2")
