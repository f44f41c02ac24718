"""One connection = one task, end to end on real Redis, a prefork worker and Daphne.

The module runs once more with CHANNEL_LAYER_STOCK=1 (stock channels-redis in Daphne and the
worker, on SQLite only): streams work without webapp/streams/internals.py's layers too.
"""

import asyncio
import signal

import pytest

from tests.feedserver import LOCAL_FEEDS
from tests.harness import started_installation
from tests.integration.conftest import Client, open_stream
from webapp.streams.tasklayer import SEND_SHA


@pytest.fixture(scope="module", params=[
    "tailboard-layer", pytest.param("stock-layer", marks=pytest.mark.sqlite_only)])
def system(request, tmp_path_factory):
    """tests/conftest.py's installation, with Tailboard's channel layer or stock channels-redis."""
    stock = "1" if request.param == "stock-layer" else "0"
    with started_installation(tmp_path_factory.mktemp("tailboard"), CHANNEL_LAYER_STOCK=stock,
                              FEED_INTERNAL_ALLOW=LOCAL_FEEDS) as harness:
        yield harness


def append(path, *lines):
    """Append whole lines to a file."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


async def test_appended_line_arrives_as_lines_message(system, stream, tmp_path):
    log = tmp_path / "app.log"
    append(log, "old 1", "old 2", "old 3")
    source = system.add_log("append-test", log)
    async with stream(f"/ws/tailf/{source}/?lines=2") as client:
        queued = await client.status("queued")
        assert queued["task_id"]
        assert queued["message"] == "waiting for a worker on queue tailf (1 online)"
        backlog = await client.until(lambda m: m["type"] == "lines")
        assert backlog["lines"] == ["old 2", "old 3"]
        running = await client.status("running")
        assert running["worker"] == system.worker.hostname
        append(log, "fresh line")
        assert "fresh line" in await client.lines(["fresh line"])


async def test_closing_the_socket_ends_the_task(system, stream, tmp_path):
    log = tmp_path / "close.log"
    log.write_text("")
    source = system.add_log("close-test", log)
    async with stream(f"/ws/tailf/{source}/") as client:
        task_id = (await client.status("queued"))["task_id"]
        await client.status("running")
        assert task_id in system.active_task_ids(system.worker)
    ended = await asyncio.to_thread(system.wait_for, lambda: system.task_end(task_id), 2)
    assert ended and "terminated" in ended
    gone = await asyncio.to_thread(
        system.wait_for, lambda: task_id not in system.active_task_ids(system.worker), 2)
    assert gone


async def test_stop_action_ends_the_task_and_closes_normally(system, stream, tmp_path):
    log = tmp_path / "stop.log"
    log.write_text("")
    source = system.add_log("stop-test", log)
    async with stream(f"/ws/tailf/{source}/") as client:
        task_id = (await client.status("queued"))["task_id"]
        await client.status("running")
        await client.send({"action": "stop"})
        stopped = await client.status("stopped")
        assert stopped["message"]
        await client.socket.wait_closed()
        assert client.socket.close_code == 1000
    assert await asyncio.to_thread(system.wait_for, lambda: system.task_end(task_id), 2)
    assert await asyncio.to_thread(
        system.wait_for, lambda: task_id not in system.active_task_ids(system.worker), 2)


async def test_two_connections_get_two_tasks_and_stop_independently(system, stream, tmp_path):
    log = tmp_path / "two.log"
    log.write_text("")
    source = system.add_log("two-test", log)
    async with stream(f"/ws/tailf/{source}/?lines=0") as first, \
            stream(f"/ws/tailf/{source}/?lines=0") as second:
        first_id = (await first.status("queued"))["task_id"]
        second_id = (await second.status("queued"))["task_id"]
        assert first_id != second_id
        await first.status("running")
        await second.status("running")
        append(log, "to both")
        await first.lines(["to both"])
        await second.lines(["to both"])
        await first.send({"action": "stop"})
        await first.status("stopped")
        assert await asyncio.to_thread(system.wait_for, lambda: system.task_end(first_id), 2)
        append(log, "only second")
        await second.lines(["only second"])
        assert system.task_end(second_id) is None


async def test_new_feed_item_arrives_as_entries_message(system, stream, feed_server):
    feed_server.items = [("one", "First item")]
    source = system.add_feed("feed-test", feed_server.url, "--interval", "5")
    async with stream(f"/ws/feeds/{source}/?entries=5") as client:
        await client.status("queued")
        baseline = await client.until(lambda m: m["type"] == "entries")
        assert [e["title"] for e in baseline["entries"]] == ["First item"]
        await client.status("running")
        feed_server.items.insert(0, ("two", "Second <b>item</b>"))
        fresh = await client.until(lambda m: m["type"] == "entries", timeout=15)
        assert [e["title"] for e in fresh["entries"]] == ["Second item"]
        assert fresh["entries"][0]["source"] == "Test feed"


async def test_daphne_killed_leaves_no_task_after_lease_expires(system, tmp_path):
    log = tmp_path / "kill.log"
    log.write_text("")
    source = system.add_log("kill-test", log)
    web = system.start_daphne("web-doomed")
    cookie = system.login(web.base_url, "admin", system.admin_password)
    socket = await open_stream(system, f"/ws/tailf/{source}/", cookie=cookie, web=web)
    client = Client(socket)
    task_id = (await client.status("queued"))["task_id"]
    await client.status("running")
    system.stop(web, signal.SIGKILL)
    ended = await asyncio.to_thread(system.wait_for, lambda: system.task_end(task_id), 15)
    assert ended and "lease" in ended
    assert task_id not in system.active_task_ids(system.worker)


async def test_daphne_and_the_worker_run_the_channel_layer_the_setting_names(system, stream,
                                                                             tmp_path):
    log = tmp_path / "layer.log"
    log.write_text("")
    source = system.add_log("layer-test", log)
    system.redis.script_flush()
    async with stream(f"/ws/tailf/{source}/?lines=0") as client:
        await client.status("running")
        append(log, "through the layer")
        await client.lines(["through the layer"])
    # Tailboard's layer sends every frame with its one-round-trip script; stock never loads it.
    [loaded] = system.redis.script_exists(SEND_SHA)
    assert loaded == (system.env["CHANNEL_LAYER_STOCK"] == "0")
