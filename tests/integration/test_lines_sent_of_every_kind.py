"""A stream record's lines_sent counts what its viewer was sent, whatever the stream is: a
history search (matches and their context), the view around a line, a feed's entries."""

import asyncio
from urllib.parse import quote

import pytest

from tests.feedserver import LOCAL_FEEDS
from tests.harness import started_installation
from tests.integration.conftest import Client, open_stream

pytestmark = pytest.mark.sqlite_only  # engine tests: see tests/integration/conftest.py


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    with started_installation(tmp_path_factory.mktemp("sent"), FEED_INTERNAL_ALLOW=LOCAL_FEEDS,
                              workers=[{"concurrency": 3}]) as harness:
        yield harness


def recorded(harness, task_id, expected):
    """Wait until the record of `task_id` says `expected` lines sent; return what it says."""
    seen = []

    def check():
        out = harness.shell("from webapp.models import Stream\n"
                            f"print(Stream.objects.get(task_id={task_id!r}).lines_sent)")
        seen.append(int(out.strip().splitlines()[-1]))
        return seen[-1] == expected

    harness.wait_for(check, 10)
    return seen[-1]


async def run_to_end(harness, path):
    """Open a stream that ends by itself; return its queued status and every message."""
    async with open_stream(harness, path) as socket:
        client = Client(socket)
        queued = await client.status("queued")
        await client.status("stopped", timeout=20)
    return queued, client.messages


def lines_of(messages):
    return sum(1 + len(item["before"]) + len(item["after"])
               for message in messages if message["type"] == "matches"
               for item in message["matches"])


async def test_a_search_counts_its_matches_and_their_context(installation, tmp_path):
    log = tmp_path / "searched.log"
    log.write_text("".join(f"{'hit' if n % 10 == 0 else 'miss'} {n}\n" for n in range(100)))
    source = installation.add_log("searched", log)
    queued, messages = await run_to_end(
        installation, f"/ws/tailf/{source}/?search={quote('^hit')}&context=1")
    sent = lines_of(messages)
    assert sent == 10 + 19  # ten matches, one line either side (none before the first)
    assert await asyncio.to_thread(recorded, installation, queued["task_id"], sent) == sent


async def test_the_view_around_a_line_counts_its_lines(installation, tmp_path):
    log = tmp_path / "around.log"
    log.write_text("".join(f"line {n}\n" for n in range(1, 101)))
    source = installation.add_log("around", log)
    queued, messages = await run_to_end(installation, f"/ws/tailf/{source}/?around=50&lines=4")
    assert lines_of(messages) == 5
    assert await asyncio.to_thread(recorded, installation, queued["task_id"], 5) == 5


async def test_a_feed_counts_its_entries(installation, feed_server):
    feed_server.items = [(f"guid-{n}", f"item {n}") for n in range(4)]
    source = installation.add_feed("counted-feed", feed_server.url, "--interval", "60")
    async with open_stream(installation, f"/ws/feeds/{source}/?entries=10") as socket:
        client = Client(socket)
        queued = await client.status("queued")
        entries = await client.until(lambda m: m["type"] == "entries", 15)
        assert len(entries["entries"]) == 4
        await client.send({"action": "stop"})
        await client.status("stopped")
    assert await asyncio.to_thread(recorded, installation, queued["task_id"], 4) == 4
