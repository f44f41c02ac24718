"""Search steps stay short whatever the pattern costs, and a plain search reads the last line."""

import asyncio
import gzip
import random
import time
from types import SimpleNamespace

import re2

from tailf import history
from tailf.search import MIN_BLOCK, scan
from tests.clocks import TickClock

COSTLY = "[ax][ab]{20}[cd]"  # RE2's DFA runs out of memory on it: a few MB/s at NFA speed;
# no literal is in every match, so nothing skips the text


def ab_lines(megabytes, period=2000, seed=3):
    """Random lines of 'a' and 'b' (no 'c': the costly pattern never matches)."""
    rng = random.Random(seed)
    block = "".join("".join(rng.choice("ab") for _ in range(100)) + "\n"
                    for _ in range(period)).encode()
    return block * (megabytes * 1024 * 1024 // len(block))


def longest_step(files, pattern):
    """Run a search; return (longest wall time between two events, total, scanned after each)."""
    longest, start, scanned = 0.0, time.monotonic(), []
    last = start
    for event in scan([str(path) for path in files], re2.compile(pattern), clock=TickClock(),
                      live=False):
        now = time.monotonic()
        longest, last = max(longest, now - last), now
        if event[0] in ("progress", "done"):
            scanned.append(event[1])
    return longest, last - start, scanned


def test_a_costly_pattern_is_searched_in_short_steps(tmp_path):
    path = tmp_path / "ab.log"
    path.write_bytes(ab_lines(3))
    longest, total, scanned = longest_step([path], COSTLY)
    assert scanned[0] <= MIN_BLOCK
    assert longest < total / 4, f"one step took {longest:.2f} s of {total:.2f} s"


def test_a_costly_pattern_over_a_gzip_file_is_searched_in_short_steps(tmp_path):
    path = tmp_path / "ab.log.1.gz"
    path.write_bytes(gzip.compress(ab_lines(3, period=300)))  # 3 MiB out of 40 KiB read
    longest, total, _ = longest_step([path], COSTLY)
    assert longest < total / 4, f"one step took {longest:.2f} s of {total:.2f} s"


def test_a_cheap_pattern_is_searched_in_growing_blocks(tmp_path):
    path = tmp_path / "big.log"
    path.write_bytes((b"x" * 99 + b"\n") * (300 * 1024))  # 30 MiB
    _, _, scanned = longest_step([path], "never here")
    steps = [after - before for before, after in zip([0] + scanned, scanned, strict=False)]
    assert steps[0] <= MIN_BLOCK
    assert max(steps) > 4 * MIN_BLOCK
    assert scanned[-1] == path.stat().st_size


class Recorder:
    """Collects what a stream body sends (the narrow stand-in for the task's output)."""

    def __init__(self):
        self.sent = []

    async def send_frame(self, message):
        self.sent.append(message)

    async def send(self, message):
        self.sent.append(message)

    async def notice(self, text):
        self.sent.append({"type": "notice", "message": text})


def run_history(path, follow):
    """Run history.search over one log; return (matches, position)."""
    out = Recorder()
    source = SimpleNamespace(path=str(path), encoding="utf-8")
    settings = SimpleNamespace(SEARCH_MAX_MATCHES=100, TAIL_MAX_LINE_BYTES=65536,
                               TAILF_MAX_FILES=64, SEARCH_MAX_SECONDS=300,
                               LOG_ROOTS=[str(path.parent)])
    options = {"search": "hit", "context": 0, "rotated": False, "follow": follow}
    position = asyncio.run(history.search(out, source, options, re2.compile("hit"), settings))
    lines = [item["line"] for m in out.sent if m["type"] == "matches" for item in m["matches"]]
    return lines, position


def test_search_without_follow_reads_the_unfinished_last_line(tmp_path):
    path = tmp_path / "app.log"
    path.write_bytes(b"hit one\nmiss\nhit last, no newline")
    lines, position = run_history(path, follow=False)
    assert lines == ["hit one", "hit last, no newline"]
    assert position is None


def test_search_with_follow_leaves_the_unfinished_last_line_to_the_follower(tmp_path):
    path = tmp_path / "app.log"
    path.write_bytes(b"hit one\nmiss\nhit last, no newline")
    lines, position = run_history(path, follow=True)
    info = path.stat()
    assert lines == ["hit one"]
    assert position == (info.st_dev, info.st_ino, len(b"hit one\nmiss\n"))
