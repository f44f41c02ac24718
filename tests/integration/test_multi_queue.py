"""Logs where they live: each log host's worker consumes its own queue."""

import asyncio

import httpx
import pytest

from tests.harness import STAFF_HEALTHZ, started_installation
from tests.integration.conftest import Client, open_stream

pytestmark = pytest.mark.sqlite_only  # worker faults and signals: see tests/integration/conftest.py


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory):
    """One installation with two workers standing for two log hosts."""
    with started_installation(tmp_path_factory.mktemp("hosts"), workers=[
            {"name": "host-a", "queues": "tailf.host-a", "concurrency": 2},
            {"name": "host-b", "queues": "tailf.host-b", "concurrency": 2}]) as harness:
        harness.worker_a, harness.worker_b = harness.workers
        yield harness


async def stream_once(system, source, line, log):
    """Open a stream, check where it runs and that a line arrives; return the worker."""
    async with open_stream(system, f"/ws/tailf/{source}/?lines=0") as socket:
        client = Client(socket)
        running = await client.status("running", timeout=20)
        with open(log, "a") as handle:
            handle.write(line + "\n")
        await client.lines([line])
        return running["worker"]


async def test_each_source_streams_on_the_worker_of_its_queue(two_hosts, tmp_path):
    system = two_hosts
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    log_a, log_b = tmp_path / "a" / "app.log", tmp_path / "b" / "app.log"
    log_a.write_text("")
    log_b.write_text("")
    source_a = system.add_log("app-on-a", log_a, "--queue", "tailf.host-a")
    source_b = system.add_log("app-on-b", log_b, "--queue", "tailf.host-b")
    assert await stream_once(system, source_a, "from a", log_a) == system.worker_a.hostname
    assert await stream_once(system, source_b, "from b", log_b) == system.worker_b.hostname

    system.stop(system.worker_b)
    health = httpx.get(system.web.base_url + "/healthz", headers=STAFF_HEALTHZ, timeout=10).json()
    missing = {s["name"] for s in health["sources_without_worker"]}
    assert "app-on-b" in missing and "app-on-a" not in missing
    page = httpx.get(system.web.base_url + "/", headers={"Cookie": system.admin_cookie},
                     timeout=10).text
    assert "app-on-b — no worker online on tailf.host-b" in page
    assert "app-on-a — no worker" not in page

    async with open_stream(system, f"/ws/tailf/{source_b}/") as socket:
        queued = await Client(socket).status("queued")
        assert queued["message"] == "waiting for a worker on queue tailf.host-b (0 online)"
    assert await stream_once(system, source_a, "still a", log_a) == system.worker_a.hostname
    await asyncio.sleep(0)
