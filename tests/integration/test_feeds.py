"""Feed streams end to end: real Redis, a real prefork worker with room for 12, real Daphne."""

import asyncio
import contextlib
import time

import pytest

from tests.feedserver import LOCAL_FEEDS, Reply, fixture
from tests.harness import started_installation
from tests.integration.conftest import Client, open_stream

pytestmark = pytest.mark.sqlite_only  # engine tests: see tests/integration/conftest.py

VIEWERS = 10
INTERVAL = 5


@pytest.fixture(scope="module")
def feed_system(tmp_path_factory):
    """An installation where one user may open 20 streams, with a 12-process feeds worker
    whose feeds may reach `feed_server` (127.0.0.1 is on FEED_INTERNAL_ALLOW)."""
    with started_installation(tmp_path_factory.mktemp("feeds"), STREAM_MAX_PER_USER=20,
                              FEED_INTERNAL_ALLOW=LOCAL_FEEDS,
                      workers=[{"name": "feeds", "queues": "feeds", "concurrency": 12}]
                      ) as harness:
        yield harness


def is_entries(message):
    return message["type"] == "entries"


async def entries_within(client, seconds):
    """Read for `seconds`; return every `entries` message that arrived."""
    found = []
    deadline = time.monotonic() + seconds
    with contextlib.suppress(TimeoutError, AssertionError):
        while time.monotonic() < deadline:
            found.append(await client.until(is_entries, deadline - time.monotonic()))
    return found


async def test_ten_viewers_share_one_upstream_request_per_interval(feed_system, feed_server):
    feed_server.etag = True
    feed_server.items = [("one", "First item")]
    source = feed_system.add_feed("shared-feed", feed_server.url, "--interval", str(INTERVAL))
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for _ in range(VIEWERS):
            socket = await stack.enter_async_context(
                open_stream(feed_system, f"/ws/feeds/{source}/?entries=5"))
            clients.append(Client(socket))
        for client in clients:
            baseline = await client.until(is_entries, timeout=30)
            assert [e["title"] for e in baseline["entries"]] == ["First item"]
            await client.status("running")
        assert await asyncio.to_thread(feed_system.wait_for, lambda: len(
            feed_system.active_task_ids(feed_system.worker)) == VIEWERS, 10)

        feed_server.items.insert(0, ("two", "Second item"))
        for client in clients:
            fresh = await client.until(is_entries, timeout=INTERVAL * 3)
            assert [e["title"] for e in fresh["entries"]] == ["Second item"]
        later = await asyncio.gather(*(entries_within(c, INTERVAL * 2.5) for c in clients))
        assert later == [[]] * VIEWERS

    hits = feed_server.hits()
    gaps = [after.at - before.at for before, after in zip(hits, hits[1:], strict=False)]
    assert len(hits) >= 3
    assert min(gaps) >= INTERVAL - 1, gaps
    assert all("if-none-match" in hit.headers for hit in hits[1:])


async def test_gone_feed_ends_the_stream_with_status_error_and_close_4410(feed_system, feed_server):
    url = feed_server.script("/gone.xml", Reply(410))
    source = feed_system.add_feed("gone-feed", url, "--interval", str(INTERVAL))
    async with open_stream(feed_system, f"/ws/feeds/{source}/") as socket:
        client = Client(socket)
        task_id = (await client.status("queued"))["task_id"]
        error = await client.status("error", timeout=20)
        assert error["message"].startswith("feed gone")
        await socket.wait_closed()
        assert socket.close_code == 4410
    ended = await asyncio.to_thread(feed_system.wait_for,
                                    lambda: feed_system.task_end(task_id), 5)
    assert ended and "feed gone" in ended


async def test_hostile_feed_reaches_the_browser_as_inert_text(feed_system, feed_server):
    url = feed_server.script("/hostile.xml", Reply(200, fixture("hostile.xml"),
                                                   {"Content-Type": "application/rss+xml"}))
    source = feed_system.add_feed("hostile-feed", url, "--interval", str(INTERVAL))
    async with open_stream(feed_system, f"/ws/feeds/{source}/?entries=10") as socket:
        client = Client(socket)
        baseline = await client.until(is_entries, timeout=20)
    by_title = {entry["title"]: entry for entry in baseline["entries"]}
    assert set(by_title) == {"Patch now", "Data link", "Entities <script> stay text"}
    assert by_title["Patch now"]["link"] == "" and by_title["Data link"]["link"] == ""
    assert by_title["Patch now"]["summary"] == "Click here"
    assert all(entry["source"] == "Hostile" for entry in baseline["entries"])
