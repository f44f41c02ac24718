"""History search on the real stack (issue 14): exact matches and context against Python `re`,
rotated siblings oldest first, `follow=1` without gap or repeat, Stop mid-scan, bad input,
and the view around a line."""

import asyncio
import gzip
import random
import re
import threading
import time
from urllib.parse import quote

import pytest

pytestmark = pytest.mark.sqlite_only  # engine tests: see tests/integration/conftest.py

BLOCK = 8 * 1024 * 1024


def append(path, *lines):
    """Append whole lines to a file."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


async def run_search(client, timeout=60):
    """Read a search to its end; return (matches messages, progress messages, the rest)."""
    await client.until(lambda m: m["type"] == "progress" and m.get("done"), timeout)
    return ([m for m in client.messages if m["type"] == "matches"],
            [m for m in client.messages if m["type"] == "progress"],
            [m for m in client.messages if m["type"] not in ("matches", "progress")])


async def ends_normally(client):
    """The stream ends with `status stopped` and close 1000."""
    await client.status("stopped")
    await client.socket.wait_closed()
    assert client.socket.close_code == 1000


def flat(matches_messages):
    """(file, line_no, line, before, after) of every match, in the order received."""
    return [(m["file"], item["line_no"], item["line"], item["before"], item["after"])
            for m in matches_messages for item in m["matches"]]


def python_matches(path, pattern, context):
    """What the search must find, computed with Python's `re` over the decoded lines."""
    lines = path.read_bytes().decode("utf-8", "replace").split("\n")
    if lines[-1] == "":
        lines.pop()
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    rule = re.compile(pattern)
    return [(str(path), index + 1, line, lines[max(0, index - context):index],
             lines[index + 1:index + 1 + context])
            for index, line in enumerate(lines) if rule.search(line)]


def mixed_log(path, count=260_000, seed=14):
    """Write a ~18 MB log of varied lines (UTF-8, CRLF, hits at the 8 MiB block edges)."""
    rng = random.Random(seed)
    words = ["disk", "net", "cpu", "café", "CAFÉ", "日本", "timeout", "ok", "retry", "本日"]
    out, size = [], 0
    edges = [BLOCK, 2 * BLOCK]
    for number in range(count):
        if edges and size > edges[0] - 200:
            line = f"ERROR 500 disk at the block edge {number}"
            if size > edges[0] + 200:
                edges.pop(0)
        else:
            level = rng.choice(["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"])
            text = " ".join(rng.choice(words) for _ in range(rng.randint(2, 9)))
            line = f"{level} {rng.randint(100, 999)} {text} {number}"
            if rng.random() < 0.01:
                line = "WARN " + text + " timeout"
        ending = "\r\n" if number % 997 == 0 else "\n"
        data = (line + ending).encode("utf-8")
        out.append(data)
        size += len(data)
    path.write_bytes(b"".join(out))


async def test_search_finds_what_python_re_finds_with_its_context(system, stream, tmp_path):
    log = tmp_path / "mixed.log"
    mixed_log(log)
    source = system.add_log("search-exact", log)
    patterns = [r"ERROR [0-9]{3} (disk|net) at", r"^WARN.*timeout$", r"(?i)^warn [0-9]+ café 日本",
                r"本日 retry [0-9]+$"]
    for pattern in patterns:
        expected = python_matches(log, pattern, 2)
        assert 10 < len(expected) < 10_000, (pattern, len(expected))
        async with stream(f"/ws/tailf/{source}/?search={quote(pattern)}&context=2") as client:
            matches, progress, _ = await run_search(client)
            await ends_normally(client)
        found = flat(matches)
        assert [item[:3] for item in found] == [item[:3] for item in expected], pattern
        assert found == expected, pattern
        last = progress[-1]
        assert last["done"] and last["scanned"] == last["total"] == log.stat().st_size
        assert last["matches"] == len(expected)
        edge = [item for item in found if "block edge" in item[2]]
        assert len(edge) >= 2 or "disk" not in pattern


async def test_rotated_siblings_are_searched_oldest_first_naming_each_file(system, stream,
                                                                         tmp_path):
    log = tmp_path / "app.log"
    with gzip.open(tmp_path / "app.log.2.gz", "wt", encoding="utf-8") as handle:
        handle.write("".join(f"{'hit' if n % 3 == 0 else 'miss'} oldest {n}\n"
                             for n in range(1, 10)))
    append(tmp_path / "app.log.1", *[f"{'hit' if n % 2 else 'miss'} older {n}"
                                      for n in range(1, 6)])
    append(log, "miss live 1", "hit live 2")
    append(tmp_path / "other.log.1", "hit in another log")
    source = system.add_log("search-rotated", log)
    async with stream(f"/ws/tailf/{source}/?search=%5Ehit&rotated=1") as client:
        matches, progress, _ = await run_search(client)
        await ends_normally(client)
    found = [(item[0], item[1], item[2]) for item in flat(matches)]
    gz, one, live = str(tmp_path / "app.log.2.gz"), str(tmp_path / "app.log.1"), str(log)
    assert found == [(gz, 3, "hit oldest 3"), (gz, 6, "hit oldest 6"), (gz, 9, "hit oldest 9"),
                     (one, 1, "hit older 1"), (one, 3, "hit older 3"),
                     (one, 5, "hit older 5"), (live, 2, "hit live 2")]
    assert progress[-1]["total"] == sum(
        path.stat().st_size for path in (tmp_path / "app.log.2.gz", tmp_path / "app.log.1", log))
    async with stream(f"/ws/tailf/{source}/?search=%5Ehit") as client:
        matches, _, _ = await run_search(client)
        await ends_normally(client)
    assert [(item[0], item[2]) for item in flat(matches)] == [(live, "hit live 2")]


def keep_writing(path, seconds, started):
    """Append MATCH and noise lines for `seconds`; return the MATCH lines in file order."""
    written = []
    with open(path, "a", encoding="utf-8", buffering=1) as handle:
        started.set()
        deadline = time.monotonic() + seconds
        number = 0
        while time.monotonic() < deadline:
            written.append(f"MATCH live {number}")
            handle.write(f"noise {number}\n{written[-1]}\n")
            number += 1
            time.sleep(0.005)
        written.append("MATCH live last")
        handle.write("MATCH live last\n")
    return written


async def test_follow_goes_on_after_the_scan_without_gap_or_repeat(system, stream, tmp_path):
    log = tmp_path / "follow.log"
    block = "".join(f"noise {n} " + "x" * 60 + "\n" for n in range(10_000))
    with open(log, "w", encoding="utf-8") as handle:
        for number in range(60):
            handle.write(block + f"MATCH old {number}\n")
    source = system.add_log("search-follow", log)
    started = threading.Event()
    writer = asyncio.ensure_future(asyncio.to_thread(keep_writing, log, 3.0, started))
    await asyncio.to_thread(started.wait, 10)
    async with stream(f"/ws/tailf/{source}/?search=%5EMATCH&follow=1&lines=0") as client:
        matches, progress, _ = await run_search(client)
        written = await writer
        await client.until(lambda m: m["type"] == "lines" and "MATCH live last" in m["lines"])
        append(log, "noise after", "MATCH after")
        await client.until(lambda m: m["type"] == "lines" and "MATCH after" in m["lines"])
        scanned = [item[2] for item in flat(matches)]
        followed = [line for m in client.messages if m["type"] == "lines" for line in m["lines"]]
        expected = [f"MATCH old {n}" for n in range(60)] + written + ["MATCH after"]
        assert scanned + followed == expected
        assert any(line.startswith("MATCH live") for line in scanned)
        assert any(line.startswith("MATCH live") for line in followed)
        running = [m for m in client.messages if m["type"] == "status" and m["state"] == "running"]
        assert running[-1]["message"].startswith("following")


def slow_log(path, megabytes):
    """Write a log on which `[ax][ab]{20}[cd]` is slow for RE2 (its DFA gives up: NFA speed).

    No literal is in every match of that pattern, so the search cannot skip to one."""
    rng = random.Random(7)
    block = "".join("".join(rng.choice("ab") for _ in range(100)) + "\n"
                    for _ in range(10_000)).encode()
    with open(path, "wb") as handle:
        for _ in range(megabytes * 1024 * 1024 // len(block)):
            handle.write(block)


async def test_stop_during_a_slow_scan_ends_the_task_within_two_seconds(system, stream,
                                                                      tmp_path):
    log = tmp_path / "slow.log"
    slow_log(log, 40)
    source = system.add_log("search-stop", log)
    pattern = quote("[ax][ab]{20}[cd]")
    for wait_for_progress in (False, True):
        async with stream(f"/ws/tailf/{source}/?search={pattern}") as client:
            queued = await client.status("queued")
            await client.status("running")
            if wait_for_progress:
                first = await client.until(lambda m: m["type"] == "progress", 20)
                assert 0 < first["scanned"] < first["total"]
            task_id = queued["task_id"]
            stopped_at = time.monotonic()
            await client.send({"action": "stop"})
            await client.status("stopped")
            ended = system.wait_for(lambda task_id=task_id: system.task_end(task_id), 5,
                                    interval=0.02)
            took = time.monotonic() - stopped_at
            assert ended, "the task recorded no end"
            print(f"Stop to task end: {took:.2f} s (after progress: {wait_for_progress})")
            assert took < 2.0, f"the task ended {took:.2f} s after Stop ({ended})"
            assert task_id not in system.active_task_ids(system.worker)
            assert not any(m["type"] == "progress" and m.get("done") for m in client.messages)


async def test_invalid_search_is_refused_with_4400_and_re2s_message(system, stream, tmp_path):
    log = tmp_path / "bad.log"
    append(log, "x")
    source = system.add_log("search-invalid", log)
    async with stream(f"/ws/tailf/{source}/?search=%28unclosed") as client:
        error = await client.status("error")
        assert "search is not a valid regular expression" in error["message"]
        assert "missing )" in error["message"]
        await client.socket.wait_closed()
        assert client.socket.close_code == 4400


async def test_corrupt_gzip_sibling_is_named_and_the_scan_goes_on(system, stream, tmp_path):
    log = tmp_path / "gz.log"
    good = gzip.compress(b"".join(
        b"%s gz %d %s\n" % (b"hit" if n % 5 == 0 else b"miss", n, b"%x" % (n * 7919) * 20)
        for n in range(1, 20_001)))
    bad = bytearray(good)
    bad[len(bad) // 2: len(bad) // 2 + 64] = b"\x00" * 64
    (tmp_path / "gz.log.1.gz").write_bytes(bytes(bad))
    (tmp_path / "gz.log.2.gz").write_bytes(good[: len(good) // 3])  # truncated
    append(log, "hit live")
    source = system.add_log("search-gzip", log)
    async with stream(f"/ws/tailf/{source}/?search=%5Ehit&rotated=1") as client:
        matches, progress, rest = await run_search(client)
        await ends_normally(client)
    notices = [m["message"] for m in rest if m["type"] == "notice"]
    assert any("gz.log.1.gz" in text and "corrupt" in text for text in notices), notices
    assert any("gz.log.2.gz" in text and "truncated" in text for text in notices), notices
    by_file = {}
    for file, line_no, line, _, _ in flat(matches):
        by_file.setdefault(file, []).append((line_no, line))
    assert list(by_file) == [str(tmp_path / "gz.log.2.gz"), str(tmp_path / "gz.log.1.gz"),
                             str(log)]
    for file in list(by_file)[:2]:  # what could be read before the damage, numbered right
        lines = by_file[file]
        assert 0 < len(lines) < 4000
        for index, (line_no, line) in enumerate(lines):
            assert line_no == 5 * (index + 1) and line.startswith(f"hit gz {line_no} ")
    assert by_file[str(log)] == [(1, "hit live")]
    assert progress[-1]["scanned"] == progress[-1]["total"]


async def test_binary_bytes_in_a_match_become_replacement_characters(system, stream, tmp_path):
    log = tmp_path / "binary.log"
    log.write_bytes(b"\x00\x01 start\nhit \xff\xfe bin \xc3\n\x89PNG hit\r\nlast \xe2\x82 hit")
    source = system.add_log("search-binary", log)
    async with stream(f"/ws/tailf/{source}/?search=hit&context=1") as client:
        matches, _, _ = await run_search(client)
        await ends_normally(client)
    assert flat(matches) == [
        (str(log), 2, "hit \ufffd\ufffd bin \ufffd", ["\x00\x01 start"], ["\ufffdPNG hit"]),
        (str(log), 3, "\ufffdPNG hit", ["hit \ufffd\ufffd bin \ufffd"], ["last \ufffd hit"]),
        (str(log), 4, "last \ufffd hit", ["\ufffdPNG hit"], [])]


async def test_around_gives_the_lines_around_a_line_of_the_log_or_a_sibling(system, stream,
                                                                          tmp_path):
    log = tmp_path / "around.log"
    append(log, *[f"live {n}" for n in range(1, 101)])
    with gzip.open(tmp_path / "around.log.1.gz", "wt", encoding="utf-8") as handle:
        handle.write("".join(f"old {n}\n" for n in range(1, 31)))
    source = system.add_log("search-around", log)
    async with stream(f"/ws/tailf/{source}/?around=50&lines=4") as client:
        await ends_normally(client)
    assert [(item[0], item[1], item[2]) for item in flat(
        [m for m in client.messages if m["type"] == "matches"])] == [
        (str(log), n, f"live {n}") for n in range(48, 53)]
    async with stream(f"/ws/tailf/{source}/?around=29&lines=6&file=around.log.1.gz") as client:
        await ends_normally(client)
    assert [(item[0], item[1], item[2]) for item in flat(
        [m for m in client.messages if m["type"] == "matches"])] == [
        (str(tmp_path / "around.log.1.gz"), n, f"old {n}") for n in range(26, 31)]
    for bad in ("..%2Fx", "../around.log", "%2Fetc%2Fpasswd", "nosuch.log"):
        async with stream(f"/ws/tailf/{source}/?around=5&file={bad}") as client:
            error = await client.status("error")
            await client.socket.wait_closed()
            assert client.socket.close_code == 4400, (bad, error)
