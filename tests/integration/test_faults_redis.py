"""Redis going away under a running system: the viewer sees it, /healthz says 503, and
everything works again once Redis is back (same port, empty: a real restart)."""

import asyncio
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.harness import STAFF_HEALTHZ, started_installation
from tests.integration.conftest import Client, open_stream
from webapp import embedded

pytestmark = pytest.mark.sqlite_only  # engine tests: see tests/integration/conftest.py


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    """A module-local installation whose Redis the tests stop and restart."""
    with started_installation(tmp_path_factory.mktemp("redis-faults"),
                      workers=[{"concurrency": 3}]) as harness:
        yield harness


def stop_redis(harness):
    """Kill the installation's redis-server (SIGKILL: no goodbye to its clients)."""
    harness.redis_process.kill()
    harness.redis_process.wait(10)


def start_redis(harness):
    """Start a fresh, empty redis-server on the same port."""
    harness.redis_process = embedded.start_redis(harness.redis_port, harness.workdir / "redis")


async def read_until_closed(client, timeout):
    """Read messages until the server closes; return (messages, close code)."""
    deadline = time.monotonic() + timeout
    messages = []
    try:
        while time.monotonic() < deadline:
            messages.append(await client.next(timeout=deadline - time.monotonic()))
    except ConnectionClosed:
        pass
    except asyncio.TimeoutError:
        return messages, None
    return messages, client.socket.close_code


async def reconnect_and_stream(harness, source, log, timeout=30):
    """Open new streams until one runs and delivers a fresh line; return the seconds taken."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            async with open_stream(harness, f"/ws/tailf/{source}/?lines=0") as socket:
                client = Client(socket)
                await client.status("running", timeout=15)
                marker = f"after restart {time.monotonic()}"
                with open(log, "a") as handle:
                    handle.write(marker + "\n")
                await client.lines([marker], timeout=10)
                await client.send({"action": "stop"})
                return time.monotonic() - started
        except (AssertionError, ConnectionClosed, OSError, asyncio.TimeoutError):
            await asyncio.sleep(1)
    raise AssertionError("no stream worked again after Redis came back")


async def test_redis_restart_mid_stream_shows_status_error_and_a_reconnect_works(installation,
                                                                                 tmp_path):
    harness = installation
    log = tmp_path / "redis.log"
    log.write_text("")
    source = harness.add_log("redis-restart", log)
    async with open_stream(harness, f"/ws/tailf/{source}/?lines=0") as socket:
        client = Client(socket)
        await client.status("running")
        stop_redis(harness)
        try:
            messages, code = await read_until_closed(client, timeout=15)
        finally:
            start_redis(harness)
    errors = [m for m in messages if m["type"] == "status" and m["state"] == "error"]
    assert errors and "redis" in errors[-1]["message"].lower(), messages
    assert errors[-1]["retry"] is True and code == 4500
    took = await reconnect_and_stream(harness, source, log)
    print(f"Redis restart: viewer saw {errors[-1]['message']!r}, close {code}; "
          f"a new stream delivered lines {took:.1f} s after Redis was back")


def test_healthz_answers_503_while_redis_is_down_and_200_when_it_is_back(installation):
    harness = installation
    url = harness.web.base_url + "/healthz"
    healthy = httpx.get(url, headers=STAFF_HEALTHZ, timeout=15)
    assert healthy.status_code == 200, healthy.text
    stop_redis(harness)
    try:
        started = time.monotonic()
        down = httpx.get(url, headers=STAFF_HEALTHZ, timeout=15)
        took = time.monotonic() - started
    finally:
        start_redis(harness)
    assert down.status_code == 503
    body = down.json()
    assert body["status"] == "error"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error")
    assert body["checks"]["channel_layer"].startswith("error")
    print(f"healthz with Redis down: {down.status_code} in {took:.1f} s: {body['checks']}")
    assert took < 8
    back = harness.wait_for(lambda: httpx.get(url, headers=STAFF_HEALTHZ, timeout=15).status_code == 200, 20, 0.5)
    assert back, httpx.get(url, headers=STAFF_HEALTHZ, timeout=15).text


def test_a_worker_reads_its_queues_again_within_3_s_of_redis_coming_back(installation):
    """Celery alone retries 2, 4, 6 s apart: back 4.5 s after a 7.5 s outage ended
    (webapp/brokerlink.py)."""
    harness = installation
    worker = harness.worker
    offset = worker.log_path.stat().st_size
    stop_redis(harness)
    try:
        time.sleep(7.5)
    finally:
        start_redis(harness)
    back = time.monotonic()
    connected = harness.wait_for(lambda: "Connected to redis://" in harness._log_since(
        worker.log_path, offset), 20, 0.05)
    took = time.monotonic() - back
    assert connected, harness._log_since(worker.log_path, offset)[-2000:]
    print(f"worker: connected again {took:.1f} s after Redis was back (7.5 s outage)")
    assert took < 3.5
