"""Redis behind Sentinel, failing over under a running system (docs/reliability.md, "Redis
failover through Sentinel").

A master, a replica and three real sentinels (`tests/sentinel.py`); a prefork worker and Daphne
that find Redis only through REDIS_SENTINELS. The master is SIGKILLed mid-stream: the viewer
gets `status error` + `retry: true`, a new stream delivers within 10 s of the promotion, the old
stream's task does not run on without its viewer, and /healthz says 503 in the gap and 200 after.
"""

import asyncio
import threading
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests import sentinel
from tests.harness import STAFF_HEALTHZ, started_installation
from tests.integration.conftest import Client, in_ci, open_stream

pytestmark = pytest.mark.sqlite_only  # engine tests: see tests/integration/conftest.py

RESUME_SECONDS = 10  # docs/reliability.md: pages resume within 10 s of the new master
TASK_GONE_SECONDS = 30  # docs/reliability.md: a task ends within 30 s of its viewer going


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    """An installation whose Redis is a Sentinel group: master, replica, three sentinels."""
    reason = sentinel.available()
    if reason:
        if in_ci():
            pytest.fail(reason + ": .ci/run must install redis-sentinel", pytrace=False)
        pytest.skip(reason)
    with started_installation(tmp_path_factory.mktemp("sentinel"), sentinel=True,
                              workers=[{"concurrency": 3}]) as harness:
        yield harness


class HealthWatch:
    """Polls /healthz in a thread; keeps (seconds since start, status code, checks)."""

    def __init__(self, url):
        self.url = url
        self.seen = []
        self.started = time.monotonic()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        with httpx.Client(headers=STAFF_HEALTHZ, timeout=15) as client:
            while not self.stopping.is_set():
                try:
                    response = client.get(self.url)
                    checks = response.json().get("checks")
                    self.seen.append((time.monotonic(), response.status_code, checks))
                except httpx.HTTPError as exc:
                    self.seen.append((time.monotonic(), None, repr(exc)))
                self.stopping.wait(0.25)

    def stop(self):
        self.stopping.set()
        self.thread.join(20)


async def read_until_closed(client, timeout):
    """Read messages until the server closes; return (messages, close code or None)."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            await client.next(timeout=deadline - time.monotonic())
    except ConnectionClosed:
        return client.messages, client.socket.close_code
    except (asyncio.TimeoutError, TimeoutError):
        pass
    return client.messages, None


async def first_stream_that_delivers(harness, source, log, deadline):
    """Open new streams until one runs and delivers a fresh line; return when it did."""
    attempts = []
    while time.monotonic() < deadline:
        try:
            async with open_stream(harness, f"/ws/tailf/{source}/?lines=0") as socket:
                client = Client(socket)
                left = deadline - time.monotonic()
                await client.status("running", timeout=max(0.5, left))
                marker = f"after the failover {time.monotonic()}"
                with open(log, "a") as handle:
                    handle.write(marker + "\n")
                await client.lines([marker], timeout=max(0.5, deadline - time.monotonic()))
                delivered = time.monotonic()
                await client.send({"action": "stop"})
                await client.status("stopped", timeout=10)
                return delivered, attempts
        except (AssertionError, ConnectionClosed, OSError, asyncio.TimeoutError) as exc:
            attempts.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            await asyncio.sleep(0.3)
    raise AssertionError(f"no stream delivered by the deadline; attempts: {attempts[-5:]}")


def still_running(harness, task_id):
    """Tell whether the worker runs the task: True unless the worker answers without it."""
    hostname = harness.worker.hostname
    try:
        replies = harness.celery.control.inspect(destination=[hostname], timeout=1.0).active()
    except Exception:  # a pooled control connection may still point at the killed master
        return True
    if not replies or hostname not in replies:  # no answer (yet): unknown
        return True
    return any(task["id"] == task_id for task in replies[hostname])


def stream_open(harness, stream_id):
    """Tell whether the stream's record is still open."""
    out = harness.shell("from webapp.models import Stream\n"
                        f"print(Stream.objects.get(pk={stream_id}).ended is None)\n")
    return out.strip().splitlines()[-1] == "True"


async def test_a_master_killed_mid_stream_fails_over_and_streams_resume_within_10_s(
        installation, tmp_path):
    harness = installation
    group = harness.sentinel
    log = tmp_path / "failover.log"
    log.write_text("")
    source = harness.add_log("failover", log)
    health = None
    async with open_stream(harness, f"/ws/tailf/{source}/?lines=0") as socket:
        client = Client(socket)
        queued = await client.status("queued")
        old_task, old_stream = queued["task_id"], queued["stream"]
        await client.status("running", timeout=20)
        with open(log, "a") as handle:
            handle.write("before the failover\n")
        await client.lines(["before the failover"])
        assert old_task in harness.active_task_ids(harness.worker)

        health = HealthWatch(harness.web.base_url + "/healthz")
        deadline = time.monotonic() + 20
        while not any(status == 200 for _, status, _ in health.seen):  # healthy first
            assert time.monotonic() < deadline, health.seen[-3:]
            await asyncio.sleep(0.1)
        old_port = group.kill_master()
        killed = time.monotonic()
        promotion = asyncio.ensure_future(asyncio.to_thread(group.wait_promotion, old_port))
        messages, code = await read_until_closed(client, timeout=30)
        closed = time.monotonic()
    try:
        new_port = await promotion
        promoted = time.monotonic()
        errors = [m for m in messages if m["type"] == "status" and m["state"] == "error"]
        assert errors, messages[-10:]
        assert errors[-1].get("retry") is True, errors[-1]
        assert code in (4500, 4503), (code, errors[-1])

        delivered, attempts = await first_stream_that_delivers(
            harness, source, log, promoted + RESUME_SECONDS)
        # The old stream's task does not run on without its viewer.
        gone = harness.wait_for(lambda: not still_running(harness, old_task),
                                TASK_GONE_SECONDS - (time.monotonic() - killed), 0.5)
        assert gone, f"task {old_task} still runs {time.monotonic() - killed:.0f} s after the kill"
        assert not stream_open(harness, old_stream)
        task_end = harness.task_end(old_task)

        # /healthz: 503 in the gap, 200 after it.
        ok_after = harness.wait_for(
            lambda: any(status == 200 and at > promoted for at, status, _ in health.seen), 20,
            0.25)
    finally:
        health.stop()
    gap = [(at, status, checks) for at, status, checks in health.seen if at > killed]
    assert any(status == 503 for _, status, _ in gap), gap[:5]
    first_503 = next(at for at, status, _ in gap if status == 503)
    assert ok_after and any(status == 200 and at > first_503 for at, status, _ in gap), gap[-5:]
    before = [status for at, status, _ in health.seen if at < killed]
    assert before and all(status == 200 for status in before), before
    recovered = next(at for at, status, _ in gap if status == 200 and at > first_503)
    print(f"failover: master on port {old_port} SIGKILLed; viewer saw "
          f"{errors[-1]['message']!r} (retry: true, close {code}) and the close "
          f"{closed - killed:.1f} s after the kill; port {new_port} promoted "
          f"{promoted - killed:.1f} s after the kill; "
          f"a new stream delivered {delivered - promoted:.1f} s after the promotion "
          f"(attempts before: {attempts}); /healthz 503 from "
          f"{first_503 - killed:.1f} s to {recovered - killed:.1f} s after the kill; "
          f"old task gone (its end: {task_end!r})")
    assert delivered - promoted <= RESUME_SECONDS
