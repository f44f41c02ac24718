"""What a container stream may read and what its history search may cost, on the real stack
(issue 22 for the container kind): searches count against SEARCH_MAX_PER_USER with the log
kind's, end after SEARCH_MAX_SECONDS, and links planted in the pods folder lead nowhere."""

import asyncio
import os
import time

import pytest

from tests.integration.test_log_trust import (
    SLOW,
    Streams,
    everything_sent,
    planted_link,
    read_to_close,
    search_slot_freed,
    texts,
)

pytestmark = pytest.mark.sqlite_only  # engine tests: see tests/integration/conftest.py

T = "2026-12-06T15:12:34.917598233+00:00"


@pytest.fixture
def stream(search_limited):
    return Streams(search_limited)


def add_container(search_limited, name, pods, pod="*"):
    """Add a CRI container source over namespace `ns` with the `sources` CLI; return its id."""
    return search_limited.add_container(name, "--pods-dir", str(pods), "--namespace", "ns",
                                        "--pod", pod)


def cri_log(path, *messages):
    """Append whole stdout CRI records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(f"{T} stdout F {message}\n" for message in messages))


def slow_cri_log(path, megabytes):
    """A CRI log the slow pattern scans at about 1 MiB/s (letters and spaces, no digit after
    the record's head)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = f"{T} stdout F " + ("word " * 40).strip() + "\n"
    with open(path, "w") as handle:
        handle.write(record * (megabytes * 1024 * 1024 // len(record)))


async def test_container_searches_share_the_per_user_search_limit_with_log_searches(
        search_limited, stream, tmp_path):
    pods = tmp_path / "pods"
    slow_cri_log(pods / "ns_slow_u1/app/0.log", 40)
    container = add_container(search_limited, "slow-containers", pods)
    log = tmp_path / "slow.log"
    os.link(pods / "ns_slow_u1/app/0.log", log)
    logs = search_limited.add_log("slow-log", log)
    async with stream(f"/ws/container/{container}/?search={SLOW}") as one, \
            stream(f"/ws/tailf/{logs}/?search={SLOW}") as two:
        for client in (one, two):
            await client.status("running", 15)
        async with stream(f"/ws/container/{container}/?search={SLOW}") as third:
            refused = await third.status("error")
            assert await read_to_close(third) == 4429
        assert refused["message"] == ("too many searches: you have 2 running, the limit is 2 "
                                      "per user")
        assert refused["message_code"] == "too_many_pool"
        async with stream(f"/ws/container/{container}/?lines=1") as tail:  # not a search
            await tail.status("running", 15)
        await one.send({"action": "stop"})
        assert await read_to_close(one) == 1000
        await search_slot_freed(search_limited)
        async with stream(f"/ws/container/{container}/?search={SLOW}") as again:
            await again.status("running", 15)


async def test_a_slow_container_search_ends_after_search_max_seconds_with_a_notice(
        search_limited, stream, tmp_path):
    pods = tmp_path / "pods"
    slow_cri_log(pods / "ns_slower_u1/app/0.log", 40)
    source = add_container(search_limited, "slower-containers", pods)
    started = time.monotonic()
    async with stream(f"/ws/container/{source}/?search={SLOW}") as client:
        assert await read_to_close(client, timeout=40) == 1000
    took = time.monotonic() - started
    assert 6 <= took < 15, took
    [notice] = [m for m in client.messages if m["type"] == "notice"]
    assert notice["message_code"] == "search_time_limit"
    assert notice["message_params"] == {"limit": 6}
    assert client.messages[-1]["type"] == "status" and \
        client.messages[-1]["state"] == "stopped"


async def test_links_planted_in_the_pods_folder_are_neither_streamed_nor_searched(
        search_limited, stream, tmp_path):
    pods = tmp_path / "pods"
    cri_log(pods / "other_db_u9/pg/0.log", "SECRET hit")
    cri_log(pods / "ns_web_u1/app/0.log", "hit live")
    cri_log(pods / "ns_web_u1/app/0.log.20261206-090000", "hit rotated")
    planted_link(pods / "ns_web_u1/app/0.log.20261206-100000", "../../other_db_u9/pg/0.log")
    planted_link(pods / "ns_web_u1/side", "../other_db_u9/pg")
    planted_link(pods / "ns_evil_u2", "other_db_u9")
    source = add_container(search_limited, "planted", pods)
    async with stream(f"/ws/container/{source}/?search=hit&rotated=1") as client:
        assert await read_to_close(client) == 1000
    assert "SECRET" not in everything_sent(client)
    assert [line.split(" ", 1)[1] for line in everything_sent(client).split("\n")] == [
        "hit rotated", "hit live"]
    assert texts(client).count("is not searched: resolves to a file outside its source's "
                               "folder") == 3
    async with stream(f"/ws/container/{source}/?around=1&file=0.log.20261206-100000") as client:
        assert await read_to_close(client) == 4400
    assert "outside its source's folder" in texts(client)
    async with stream(f"/ws/container/{source}/?lines=5") as client:
        warned = await client.until(lambda m: m["type"] == "status" and m.get("warning"), 15)
        assert "outside its source's folder" in warned["warning"]
        cri_log(pods / "other_db_u9/pg/0.log", "SECRET more")
        cri_log(pods / "ns_web_u1/app/0.log", "more live")
        await client.until(lambda m: m["type"] == "lines" and any(
            "more live" in line for line in m["lines"]), 15)
        await asyncio.sleep(1)  # the scenario: a second more in which SECRET must not come
    assert "SECRET" not in everything_sent(client)
