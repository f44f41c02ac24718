"""A stream task's last moments: its loop is emptied even by stubborn tasks, a revoke that
lands during the tidying-up is neither lost nor allowed to cut it short, and a task that
cannot be stopped takes its process down rather than leaving it holding files."""

import asyncio
import os
import signal

import pytest

from webapp.streams import leases
from webapp.streams import task as tasking
from webapp.streams.aio import close_loop
from webapp.streams.stop import deferred_termination


def billiard_like_handler(signum, frame):
    """What billiard installs in a pool process: SIGTERM becomes SystemExit."""
    signal.signal(signum, signal.SIG_DFL)
    raise SystemExit(-(256 - signum))


@pytest.fixture
def sigterm_raises():
    previous = signal.signal(signal.SIGTERM, billiard_like_handler)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def ends(monkeypatch):
    recorded = []
    monkeypatch.setattr(leases, "sync_client", lambda: None)
    monkeypatch.setattr(leases, "record_end",
                        lambda client, task_id, reason: recorded.append((task_id, reason)))
    return recorded


def test_close_loop_cancels_again_a_task_that_swallowed_its_cancel_and_closes_the_loop():
    loop = asyncio.new_event_loop()
    closed = []

    async def stubborn():
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            pass
        try:
            await asyncio.sleep(100)
        finally:
            closed.append(True)

    loop.create_task(stubborn())
    loop.run_until_complete(asyncio.sleep(0))
    assert close_loop(loop, timeout=5) == set()
    assert closed == [True] and loop.is_closed()


def test_close_loop_reports_a_task_that_never_stops_and_leaves_its_loop_open():
    loop = asyncio.new_event_loop()

    async def immortal():
        while True:
            try:
                await asyncio.sleep(100)
            except asyncio.CancelledError:
                pass

    loop.create_task(immortal())
    loop.run_until_complete(asyncio.sleep(0))
    stuck = close_loop(loop, timeout=0.5)
    assert len(stuck) == 1 and not loop.is_closed()
    for task in stuck:
        task.get_coro().close()
    loop.close()


def test_a_signal_held_back_by_deferred_termination_is_delivered_after_the_block(
        sigterm_raises):
    finished = []
    with pytest.raises(SystemExit):
        with deferred_termination():
            os.kill(os.getpid(), signal.SIGTERM)
            finished.append("block")
    assert finished == ["block"]


def run_with_leftover(monkeypatch, leftover_coro, result="viewer gone (lease lapsed)"):
    """Run run_stream with a supervise that returns `result`, leaving `leftover_coro` running."""
    async def fake_supervise(task_id, worker, channel_name, body, signalled=None):
        asyncio.ensure_future(leftover_coro())
        await asyncio.sleep(0)
        return result

    monkeypatch.setattr(tasking, "supervise", fake_supervise)
    return tasking.run_stream("t-1", "w1", "channel", body=None)


def test_a_revoke_arriving_while_the_task_tidies_up_is_delivered_after_its_end_is_recorded(
        monkeypatch, sigterm_raises, ends):
    closed = []

    async def follower():
        try:
            await asyncio.sleep(100)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # the revoke lands mid-cleanup
            await asyncio.sleep(0.05)
            closed.append("log file")

    with pytest.raises(SystemExit):
        run_with_leftover(monkeypatch, follower)
    assert closed == ["log file"]
    assert ends == [("t-1", "viewer gone (lease lapsed)")]


def test_a_task_that_will_not_stop_records_its_end_and_ends_its_process(monkeypatch, ends):
    monkeypatch.setattr(tasking, "LOOP_CLOSE_SECONDS", 0.5)

    async def immortal():
        while True:
            try:
                await asyncio.sleep(100)
            except asyncio.CancelledError:
                pass

    with pytest.raises(SystemExit) as raised:
        run_with_leftover(monkeypatch, immortal)
    assert raised.value.code == 1
    assert ends[0][0] == "t-1" and "restarted" in ends[0][1]


def test_a_process_whose_termination_was_lost_exits_after_recording_its_end(monkeypatch, ends):
    from billiard import common

    async def quiet():
        await asyncio.sleep(100)

    common._should_have_exited[0] = True  # billiard handled a SIGTERM; its SystemExit was lost
    try:
        with pytest.raises(SystemExit):
            run_with_leftover(monkeypatch, quiet)
    finally:
        common.clear_terminate_handler_fired()
    assert ends == [("t-1", "viewer gone (lease lapsed)")]


def test_an_ordinary_end_leaves_the_process_to_serve_the_next_task(monkeypatch, ends):
    async def quiet():
        await asyncio.sleep(100)

    assert run_with_leftover(monkeypatch, quiet) == "viewer gone (lease lapsed)"
    assert ends == [("t-1", "viewer gone (lease lapsed)")]
