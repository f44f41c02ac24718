"""What a log stream may read and how much it may cost, on the real stack (issue 22): refusals
that do not name the log roots, links out of a source's folder, large globs, `around` sizes,
search limits."""

import asyncio
import json
import os
import time

import pytest
from websockets.exceptions import ConnectionClosed

from tests.integration.conftest import Client, open_stream
from webapp.streams.leases import lease_key

pytestmark = pytest.mark.sqlite_only  # engine tests: see tests/integration/conftest.py


def append(path, *lines):
    """Append whole lines to a file."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


class Streams:
    """`async with streams(path) as client:` on this module's installation."""

    def __init__(self, harness):
        self.harness = harness

    def __call__(self, path, cookie=None):
        harness = self.harness

        class Opened:
            async def __aenter__(self):
                self.socket = await open_stream(harness, path, cookie=cookie)
                return Client(self.socket)

            async def __aexit__(self, *exc):
                await self.socket.close()

        return Opened()


@pytest.fixture
def stream(search_limited):
    return Streams(search_limited)


async def search_slot_freed(system, running=1, timeout=10):
    """Wait until the user's searches hold `running` slots: a stream's slot goes just after
    its viewer was told it stopped (stop.py: the viewer first, then the lease)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = sum(1 for key in system.redis.scan_iter("tailboard:slots:pool:search:*")
                   for member in system.redis.smembers(key)
                   if system.redis.exists(lease_key(member.decode())))  # as CLAIM_SCRIPT counts
        if held <= running:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"search slots still held after {timeout} s")


async def read_to_close(client, timeout=30):
    """Read every message until the socket closes; return the close code."""
    try:
        while True:
            await client.next(timeout)
    except ConnectionClosed:
        pass
    return client.socket.close_code


def texts(client):
    """Every notice, status message and warning the viewer was sent."""
    found = []
    for message in client.messages:
        if message["type"] in ("notice", "status"):
            found.append(message.get("message", ""))
            found.append(message.get("warning") or "")
    return "\n".join(found)


async def test_refused_files_are_said_to_be_outside_the_log_roots_without_naming_them(
        search_limited, stream, tmp_path):
    roots = search_limited.env["LOG_ROOTS"].split(":")
    link = tmp_path / "passwd.log"
    append(link, "inside")
    sibling = tmp_path / "app.log.1"
    sibling.symlink_to("/etc/passwd")
    append(tmp_path / "app.log", "live")
    tail = search_limited.add_log("roots-tail", link)
    search = search_limited.add_log("roots-search", tmp_path / "app.log")
    link.unlink()
    link.symlink_to("/etc/passwd")  # swapped by whoever writes the folder
    said = []
    async with stream(f"/ws/tailf/{tail}/?lines=5") as client:
        await client.until(lambda m: m["type"] == "status" and m.get("warning"), 15)
        said.append(texts(client))
    async with stream(f"/ws/tailf/{search}/?search=x&rotated=1") as client:
        assert await read_to_close(client) == 1000
        said.append(texts(client))
    async with stream(f"/ws/tailf/{search}/?around=1&file=app.log.1") as client:
        assert await read_to_close(client) == 4400
        said.append(texts(client))
    for each in said:
        assert "outside the log roots" in each, each
    said = "\n".join(said)
    for root in roots:
        assert root not in said.replace(str(tmp_path), "")
    assert "LOG_ROOTS" not in said


async def test_around_shows_up_to_5000_lines_in_frames_under_1_mib(search_limited, stream,
                                                                  tmp_path):
    log = tmp_path / "wide.log"
    filler = "x" * 1000
    append(log, *[f"line {n} {filler}" for n in range(1, 7001)])
    source = search_limited.add_log("around-wide", log)
    for lines in (2002, 5000):
        async with stream(f"/ws/tailf/{source}/?around=3000&lines={lines}") as client:
            assert await read_to_close(client) == 1000, client.messages[-3:]
        frames = [m for m in client.messages if m["type"] == "matches"]
        got = [item["line_no"] for m in frames for item in m["matches"]]
        half = lines // 2
        assert got == list(range(3000 - half, 3000 + half + 1))
        assert all(item["line"] == f"line {item['line_no']} {filler}"
                   for m in frames for item in m["matches"])
        assert len(frames) > 1
        assert max(len(json.dumps(m, ensure_ascii=False, separators=(",", ":")).encode())
                   for m in frames) < 1024 * 1024


async def test_a_search_over_a_glob_of_5000_files_lists_once_and_searches_the_newest(
        search_limited, stream, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for number in range(5000):
        name = folder / f"f{number:04}.log"
        name.write_text(f"hit {number}\n")
        (folder / f"f{number:04}.log.1").write_text(f"hit old {number}\n")
        os.utime(name, (1_000_000 + number, 1_000_000 + number))
    source = search_limited.add_log("many", folder / "*.log")
    started = time.monotonic()
    async with stream(f"/ws/tailf/{source}/?search=hit&rotated=1") as client:
        assert await read_to_close(client) == 1000, client.messages[-3:]
    took = time.monotonic() - started
    limit = [m for m in client.messages if m.get("message_code") == "search_glob_limit"]
    assert len(limit) == 1 and limit[0]["message_params"]["skipped"] == 4936
    found = {item["line"] for m in client.messages if m["type"] == "matches"
             for item in m["matches"]}
    assert found == {f"hit {n}" for n in range(4936, 5000)} | {
        f"hit old {n}" for n in range(4936, 5000)}
    assert took < 10, took
    async with stream(f"/ws/tailf/{source}/?around=1&file=f0007.log.1") as client:
        assert await read_to_close(client) == 1000, client.messages[-3:]
    assert [item["line"] for m in client.messages if m["type"] == "matches"
            for item in m["matches"]] == ["hit old 7"]


def planted_link(link, target, uid=65534):
    """A symlink made by someone who can write the folder but is not root (owned by `uid`)."""
    os.symlink(target, link)
    os.lchown(link, uid, uid)


def everything_sent(client):
    """All the text of lines and matches the viewer was sent."""
    return "\n".join([line for m in client.messages if m["type"] == "lines"
                      for line in m["lines"]] +
                     [item["line"] for m in client.messages if m["type"] == "matches"
                      for item in m["matches"]])


async def test_links_out_of_a_sources_folder_planted_by_its_writers_are_not_read(
        search_limited, stream, tmp_path):
    team, secret = tmp_path / "team-a", tmp_path / "secret"
    team.mkdir()
    secret.mkdir()
    append(secret / "secret.log", "SECRET hit")
    append(team / "h.log", "hit live")
    append(team / "h.log.1", "hit rotated")
    planted_link(team / "h.log.2", "../secret/secret.log")
    planted_link(team / "evil.log", str(secret / "secret.log"))
    append(team / "mine.log", "hit mine")
    planted_link(team / "alias.log", "mine.log")  # a link within the folder is fine
    log = search_limited.add_log("team-a", team / "h.log")
    glob_source = search_limited.add_log("team-a-all", team / "*.log")
    async with stream(f"/ws/tailf/{log}/?search=hit&rotated=1") as client:
        assert await read_to_close(client) == 1000
    assert "SECRET" not in everything_sent(client)
    assert {"hit live", "hit rotated"} <= set(everything_sent(client).split("\n"))
    assert "h.log.2 is not searched: resolves to a file outside its source's folder" \
        in texts(client)
    async with stream(f"/ws/tailf/{log}/?around=1&file=h.log.2") as client:
        assert await read_to_close(client) == 4400
    assert "SECRET" not in everything_sent(client)
    assert "outside its source's folder" in texts(client)
    async with stream(f"/ws/tailf/{glob_source}/?search=hit") as client:
        assert await read_to_close(client) == 1000
    assert "SECRET" not in everything_sent(client)
    assert "hit mine" in everything_sent(client).split("\n")
    async with stream(f"/ws/tailf/{glob_source}/?lines=5") as client:
        await client.until(lambda m: m["type"] == "status" and m.get("warning"), 15)
        append(team / "mine.log", "more mine")
        await client.lines(["more mine"], timeout=15)
    assert "SECRET" not in everything_sent(client)
    assert "outside its source's folder" in texts(client)
    async with stream(f"/ws/tailf/{log}/?lines=5") as client:
        await client.status("running")
        os.rename(team / "h.log", team / "h.log.0")
        planted_link(team / "h.log", "../secret/secret.log")
        warned = await client.until(lambda m: m["type"] == "status" and m.get("warning"), 15)
        assert "outside its source's folder" in warned["warning"]
        append(secret / "secret.log", "SECRET more")
        await asyncio.sleep(1.5)  # the scenario: 1.5 s in which a stream reading the link
        # would send SECRET (nothing else is written that a condition could wait for)
    assert "SECRET" not in everything_sent(client)


def slow_log(path, megabytes):
    """A log the slow pattern below scans at about 1 MiB/s (letters and spaces, no digit)."""
    line = ("word " * 40).strip() + "\n"
    with open(path, "w") as handle:
        handle.write(line * (megabytes * 1024 * 1024 // len(line)))


SLOW = "%5CpL%5B%5CpL%5Cs%5D%7B300%7D%5Cd"  # \pL[\pL\s]{300}\d, valid RE2


async def test_a_user_runs_at_most_two_searches_at_once(search_limited, stream, tmp_path):
    log = tmp_path / "slow.log"
    slow_log(log, 40)
    source = search_limited.add_log("slow-search", log)
    async with stream(f"/ws/tailf/{source}/?search={SLOW}") as one, \
            stream(f"/ws/tailf/{source}/?search={SLOW}") as two:
        for client in (one, two):
            await client.status("running", 15)
        async with stream(f"/ws/tailf/{source}/?search={SLOW}") as third:
            refused = await third.status("error")
            assert await read_to_close(third) == 4429
        assert refused["message"] == ("too many searches: you have 2 running, the limit is 2 "
                                      "per user")
        assert refused["message_code"] == "too_many_pool"
        async with stream(f"/ws/tailf/{source}/?lines=1") as tail:  # a tail is not a search
            await tail.status("running", 15)
        await one.send({"action": "stop"})
        assert await read_to_close(one) == 1000
        await search_slot_freed(search_limited)
        async with stream(f"/ws/tailf/{source}/?search={SLOW}") as again:
            await again.status("running", 15)


async def test_a_slow_search_ends_after_search_max_seconds_with_a_notice(search_limited, stream,
                                                                        tmp_path):
    log = tmp_path / "slower.log"
    slow_log(log, 40)
    source = search_limited.add_log("slower-search", log)
    started = time.monotonic()
    async with stream(f"/ws/tailf/{source}/?search={SLOW}") as client:
        assert await read_to_close(client, timeout=40) == 1000
    took = time.monotonic() - started
    assert 6 <= took < 15, took
    [notice] = [m for m in client.messages if m["type"] == "notice"]
    assert notice["message_code"] == "search_time_limit"
    assert notice["message_params"] == {"limit": 6}
    done = [m for m in client.messages if m["type"] == "progress" and m.get("done")]
    assert len(done) == 1 and done[0]["matches"] == 0
    scanned = [m["scanned"] for m in client.messages if m["type"] == "progress"
               and not m.get("done")]
    assert scanned and scanned[-1] < log.stat().st_size  # 40 MiB at ~1 MiB/s: far from done
    assert client.messages[-1]["type"] == "status" and \
        client.messages[-1]["state"] == "stopped"


async def test_eight_racing_searches_by_one_user_get_exactly_two_slots(search_limited, tmp_path):
    log = tmp_path / "race.log"
    slow_log(log, 40)
    source = search_limited.add_log("race-search", log)

    async def attempt():
        socket = await open_stream(search_limited, f"/ws/tailf/{source}/?search={SLOW}")
        client = Client(socket)
        first = await client.next(15)
        return socket, first

    opened = await asyncio.gather(*[attempt() for _ in range(8)])
    try:
        states = sorted(first["state"] for _, first in opened)
        assert states == ["error"] * 6 + ["queued"] * 2
        assert all(first["message_code"] == "too_many_pool" for _, first in opened
                   if first["state"] == "error")
    finally:
        for socket, _ in opened:
            await socket.close()
