"""`tail -n N -F` semantics end to end: real Redis, a prefork worker and Daphne."""

import os
import shutil

import pytest

pytestmark = pytest.mark.sqlite_only  # engine tests: see tests/integration/conftest.py


def append(path, *lines):
    """Append whole lines to a file."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


async def collect_until(client, last_line, timeout=10):
    """Return every message up to the `lines` message holding `last_line`."""
    start = len(client.messages)
    await client.until(lambda m: m["type"] == "lines" and last_line in m["lines"], timeout)
    return client.messages[start:]


def lines_in(messages):
    """The lines of the `lines` messages, in order."""
    return [line for m in messages if m["type"] == "lines" for line in m["lines"]]


def notices_in(messages):
    """The texts of the `notice` messages, in order."""
    return [m["message"] for m in messages if m["type"] == "notice"]


async def test_rotated_file_is_read_to_its_end_then_followed_by_name(system, stream, tmp_path):
    log = tmp_path / "app.log"
    append(log, "before")
    source = system.add_log("rotate-test", log)
    async with stream(f"/ws/tailf/{source}/?lines=1") as client:
        await client.status("running")
        append(log, "old 1")
        await client.lines(["old 1"])
        os.rename(log, tmp_path / "app.log.1")
        append(tmp_path / "app.log.1", "old 2 after the rename")
        append(log, "new 1")
        messages = await collect_until(client, "new 1")
        assert lines_in(messages) == ["old 2 after the rename", "new 1"]
        assert any("rotated" in text for text in notices_in(messages))
        for round_ in range(3):
            os.rename(log, tmp_path / f"app.log.{round_ + 2}")
            append(log, f"after rotation {round_}")
            await client.lines([f"after rotation {round_}"])
        append(log, "still following")
        await client.lines(["still following"])


async def test_truncated_file_restarts_from_its_new_start(system, stream, tmp_path):
    log = tmp_path / "trunc.log"
    append(log, "one", "two", "three")
    source = system.add_log("truncate-test", log)
    async with stream(f"/ws/tailf/{source}/?lines=3") as client:
        await client.status("running")
        shutil.copyfile(log, tmp_path / "trunc.log.1")
        os.truncate(log, 0)
        append(log, "after truncation")
        messages = await collect_until(client, "after truncation")
        assert any("truncated" in text for text in notices_in(messages))
        assert lines_in(messages)[-1] == "after truncation"


async def test_missing_file_and_directory_are_waited_for(system, stream, tmp_path):
    log = tmp_path / "not-yet" / "app.log"
    source = system.add_log("missing-test", log)
    async with stream(f"/ws/tailf/{source}/?lines=5") as client:
        waiting = await client.until(lambda m: m["type"] == "notice")
        assert "does not exist" in waiting["message"] and "waiting" in waiting["message"]
        await client.status("running")
        log.parent.mkdir()
        append(log, "first", "second")
        messages = await collect_until(client, "second")
        assert lines_in(messages) == ["first", "second"]
        assert any("appeared" in text for text in notices_in(messages))


async def test_deleted_file_is_waited_for_and_recreated_file_followed(system, stream,
                                                                      tmp_path):
    log = tmp_path / "gone.log"
    append(log, "one")
    source = system.add_log("recreate-test", log)
    async with stream(f"/ws/tailf/{source}/?lines=1") as client:
        await client.status("running")
        os.unlink(log)
        gone = await client.until(lambda m: m["type"] == "notice")
        assert "removed" in gone["message"] and "waiting" in gone["message"]
        append(log, "reborn")
        messages = await collect_until(client, "reborn")
        assert any("recreated" in text for text in notices_in(messages))


async def test_grep_sends_only_matching_lines(system, stream, tmp_path):
    log = tmp_path / "grep.log"
    append(log, "INFO boot", "ERROR disk full", "INFO ok", "ERROR again")
    source = system.add_log("grep-test", log)
    async with stream(f"/ws/tailf/{source}/?lines=4&grep=%5EERROR") as client:
        backlog = await client.until(lambda m: m["type"] == "lines")
        assert backlog["lines"] == ["ERROR disk full", "ERROR again"]
        await client.status("running")
        append(log, "INFO quiet", "ERROR fresh", "WARN ERROR not at start")
        messages = await collect_until(client, "ERROR fresh")
        append(log, "ERROR last")
        messages += await collect_until(client, "ERROR last")
        assert lines_in(messages) == ["ERROR fresh", "ERROR last"]


async def test_invalid_grep_is_refused_with_4400(system, stream, tmp_path):
    log = tmp_path / "bad-grep.log"
    append(log, "x")
    source = system.add_log("bad-grep-test", log)
    async with stream(f"/ws/tailf/{source}/?grep=%28unclosed") as client:
        error = await client.status("error")
        assert "grep is not a valid regular expression" in error["message"]
        await client.socket.wait_closed()
        assert client.socket.close_code == 4400


async def test_long_lines_bad_bytes_and_partial_lines_arrive_safely(system, stream, tmp_path):
    log = tmp_path / "odd.log"
    log.write_bytes(b"")
    source = system.add_log("odd-test", log)
    async with stream(f"/ws/tailf/{source}/?lines=0") as client:
        await client.status("running")
        with open(log, "ab") as handle:
            handle.write(b"y" * 70_000 + b"\nbad \xff byte\nnul \x00 byte\nprompt> ")
        messages = await collect_until(client, "prompt> ")
        long, bad, nul, prompt = lines_in(messages)
        assert long.startswith("y" * 1000) and "line cut" in long and len(long) < 66_000
        assert bad == "bad \ufffd byte"
        assert nul == "nul \x00 byte"
        assert prompt == "prompt> "
