"""The history-search engine on real temp files: results equal Python's `re` line by line."""

import gzip
import os
import random
import re
import time
import tracemalloc

import pytest
import re2

from tailf.follow import CUT_MARKER
from tailf.roots import OutsideRoots
from tailf.rotations import rotated_siblings
from tailf.search import lines_around, scan
from tests.clocks import TickClock


def run(files, pattern, **options):
    """Run a search to its end; return (matches by file in order, notices, done event)."""
    matches, notices, done = [], [], None
    for event in scan([str(f) for f in files], re2.compile(pattern), **options):
        if event[0] == "matches":
            matches.extend((event[1], m) for m in event[2])
        elif event[0] == "notice":
            notices.append(event[1])
        elif event[0] == "done":
            done = event
    return matches, notices, done


def reference(text, pattern, context):
    """What `re` finds line by line in a decoded text whose lines all end in a newline."""
    lines = text.split("\n")[:-1]
    pattern = pattern.replace(r"\z", r"\Z")
    found = []
    for index, line in enumerate(lines):
        if re.search(pattern, line):
            found.append({"line_no": index + 1, "line": line,
                          "before": lines[max(0, index - context):index],
                          "after": lines[index + 1:index + 1 + context]})
    return found


def random_text(seed, lines=3000):
    """Log-like lines with words, digits, spaces, empty lines and some non-ASCII."""
    rng = random.Random(seed)
    words = ["error", "Error", "warn", "ok", "id=42", "x", "a b", "é", "日本", "tab\tsep",
             "", "  ", "end", "[x]", "ab", "ba", "42", "timeout"]
    return "".join(" ".join(rng.choice(words) for _ in range(rng.randint(0, 6))) + "\n"
                   for _ in range(lines))


PATTERNS = [r"error", r"^error", r"error$", r"^$", r"^\s*$", r"[0-9]{2}", r"[^a-z ]+",
            r"\s\d+$", r"a\s+b", r"a[^x]b", r"\bok\b", r"(?i)ERROR", r"é|日", r"^.{0,3}$",
            r"x*", r"\Aend", r"end\z", r"(ok|warn) (x|ab)", r"\[x\]", r"t[\s\S]s"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_matches_and_context_equal_python_re_line_by_line(tmp_path, pattern):
    text = random_text(pattern)
    path = tmp_path / "app.log"
    path.write_text(text, encoding="utf-8")
    expected = reference(text, pattern, 2)
    matches, _, done = run([path], pattern, context=2, block=4096, max_line=1024,
                           max_matches=10 ** 6)
    assert [m for _, m in matches] == expected
    assert done[3] == len(expected)


def test_context_at_file_start_end_and_between_close_matches(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("hit 1\nhit 2\nc\nd\ne\nhit 6\nhit 7\n")
    matches, _, _ = run([path], "hit", context=2)
    assert [m for _, m in matches] == [
        {"line_no": 1, "line": "hit 1", "before": [], "after": ["hit 2", "c"]},
        {"line_no": 2, "line": "hit 2", "before": ["hit 1"], "after": ["c", "d"]},
        {"line_no": 6, "line": "hit 6", "before": ["d", "e"], "after": ["hit 7"]},
        {"line_no": 7, "line": "hit 7", "before": ["e", "hit 6"], "after": []},
    ]


def test_context_across_block_boundaries_is_whole(tmp_path):
    path = tmp_path / "app.log"
    lines = [f"line {n:05d}" + ("." * (n % 37)) for n in range(4000)]
    path.write_text("".join(line + "\n" for line in lines))
    matches, _, _ = run([path], r"line 0\d\d[05]0", context=20, block=1500, max_line=600)
    for _, match in matches:
        index = match["line_no"] - 1
        assert match["line"] == lines[index]
        assert match["before"] == lines[max(0, index - 20):index]
        assert match["after"] == lines[index + 1:index + 21]
    assert len(matches) == 80


def test_rotated_and_gzip_files_are_searched_oldest_first_with_numbers_per_file(tmp_path):
    live = tmp_path / "app.log"
    live.write_text("hit live\n")
    (tmp_path / "app.log.1").write_text("a\nhit one\n")
    with gzip.open(tmp_path / "app.log.2.gz", "wt") as handle:
        handle.write("b\nc\nhit two\n")
    with gzip.open(tmp_path / "app.log.3.gz", "wt") as handle:
        handle.write("hit three\n")
    files = rotated_siblings(str(live))
    matches, notices, done = run(files, "hit")
    assert [(os.path.basename(f), m["line_no"], m["line"]) for f, m in matches] == [
        ("app.log.3.gz", 1, "hit three"), ("app.log.2.gz", 3, "hit two"),
        ("app.log.1", 2, "hit one"), ("app.log", 1, "hit live")]
    assert notices == []
    sizes = sum(os.path.getsize(f) for f in files)
    assert done[1] == done[2] == sizes


def test_multi_member_gzip_is_read_to_its_end(tmp_path):
    path = tmp_path / "app.log.1.gz"
    path.write_bytes(gzip.compress(b"hit a\nx\n") + gzip.compress(b"y\nhit b\n"))
    matches, notices, _ = run([path], "hit", live=False)
    assert [(m["line_no"], m["line"]) for _, m in matches] == [(1, "hit a"), (4, "hit b")]
    assert notices == []


def test_corrupt_gzip_is_named_in_a_notice_and_the_search_goes_on(tmp_path):
    bad = tmp_path / "app.log.2.gz"
    good = gzip.compress(b"hit early\n" + b"filler line\n" * 20000)
    bad.write_bytes(good[:len(good) // 2] + b"\xff" * 64 + good[len(good) // 2 + 64:])
    later = tmp_path / "app.log"
    later.write_text("hit later\n")
    matches, notices, done = run([bad, later], "hit")
    assert [m["line"] for _, m in matches] == ["hit early", "hit later"]
    assert len(notices) == 1 and str(bad) in notices[0] and "corrupt" in notices[0]
    assert done[1] == done[2]


def test_truncated_gzip_gives_what_it_holds_and_a_notice(tmp_path):
    path = tmp_path / "app.log.1.gz"
    data = gzip.compress(b"".join(b"line %d hit\n" % n for n in range(5000)))
    path.write_bytes(data[:len(data) - 100])
    matches, notices, _ = run([path], "hit", live=False, max_matches=10 ** 6)
    assert 0 < len(matches) <= 5000
    assert [m["line_no"] for _, m in matches] == list(range(1, len(matches) + 1))
    assert len(notices) == 1 and str(path) in notices[0] and "truncated" in notices[0]


def test_file_that_is_not_gzip_but_named_so_is_reported(tmp_path):
    path = tmp_path / "app.log.1.gz"
    path.write_text("hit plain\n")
    matches, notices, _ = run([path], "hit", live=False)
    assert matches == [] and "corrupt" in notices[0]


def test_file_truncated_during_the_scan_ends_with_a_notice_and_no_repeats(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("".join(f"hit {n}\n" for n in range(20000)))
    events = scan([str(path)], re2.compile("hit"), block=4096, clock=TickClock(),
                  max_matches=10 ** 6)
    seen = []
    for event in events:
        if event[0] == "matches":
            seen.extend(m["line_no"] for m in event[2])
        if event[0] == "progress" and event[1] > 20000 and os.path.getsize(path) > 10:
            with open(path, "w") as handle:
                handle.write("new 1\n")
        if event[0] == "notice":
            notice = event[1]
        if event[0] == "done":
            done = event
    assert "truncated" in notice
    assert seen == list(range(1, len(seen) + 1)) and 0 < len(seen) < 20000
    assert done[4][2] == 0


def test_live_file_rotated_during_the_scan_is_finished_then_the_new_one_searched(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("".join(f"old {n} hit\n" for n in range(20000)))
    events = scan([str(path)], re2.compile("hit"), block=4096, clock=TickClock(),
                  max_matches=10 ** 6)
    found, notices, rotated = [], [], False
    for event in events:
        if event[0] == "matches":
            found.extend(m["line"] for m in event[2])
        elif event[0] == "notice":
            notices.append(event[1])
        elif event[0] == "progress" and not rotated:
            with open(path, "a") as handle:
                handle.write("old late hit\n")
            os.rename(path, str(path) + ".1")
            path.write_text("new hit\npartial hit")
            rotated = True
        elif event[0] == "done":
            done = event
    assert found == [f"old {n} hit" for n in range(20000)] + ["old late hit", "new hit"]
    assert any("rotated" in text for text in notices)
    info = os.stat(path)
    assert done[4] == (info.st_dev, info.st_ino, len("new hit\n"))


def test_line_over_the_limit_is_cut_like_the_tail_and_numbers_go_on(tmp_path):
    path = tmp_path / "app.log"
    long_line = "hit " + "x" * 100_000 + " tail-only-word"
    path.write_text(f"first\n{long_line}\nafter tail-only-word\nhit end\n")
    matches, _, _ = run([path], "hit|tail-only-word", context=1, max_line=65536)
    cut = long_line[:65536] + CUT_MARKER.format(limit=65536)
    assert [(m["line_no"], m["line"]) for _, m in matches] == [
        (2, cut), (3, "after tail-only-word"), (4, "hit end")]
    assert matches[1][1]["before"] == [cut]


def test_gigantic_line_without_newline_is_not_held_in_memory(tmp_path):
    path = tmp_path / "app.log"
    with open(path, "wb") as handle:
        handle.write(b"hit start ")
        for _ in range(48):
            handle.write(b"y" * (1 << 20))
        handle.write(b"\nhit next\n")
    tracemalloc.start()
    try:
        matches, _, _ = run([path], "hit", block=1 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [m["line_no"] for _, m in matches] == [1, 2]
    assert matches[0][1]["line"].endswith(CUT_MARKER.format(limit=65536))
    assert peak < 8 * (1 << 20)


def test_gzip_bomb_is_decompressed_in_bounded_pieces(tmp_path):
    path = tmp_path / "app.log.1.gz"
    with gzip.open(path, "wb", compresslevel=9) as handle:
        for _ in range(64):
            handle.write(b"\n" * (1 << 20))
        handle.write(b"hit\n")
    tracemalloc.start()
    try:
        matches, _, _ = run([path], "hit", block=1 << 20, live=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [m["line_no"] for _, m in matches] == [64 * (1 << 20) + 1]
    assert peak < 8 * (1 << 20)


def test_max_matches_gives_a_notice_suggesting_a_narrower_pattern_then_stops(tmp_path):
    first = tmp_path / "app.log.1"
    first.write_text("hit\n" * 30)
    live = tmp_path / "app.log"
    live.write_text("hit\n" * 30)
    events = list(scan([str(first), str(live)], re2.compile("hit"), max_matches=25,
                       context=2))
    matches = [m for e in events if e[0] == "matches" for m in e[2]]
    assert [m["line_no"] for m in matches] == list(range(1, 26))
    assert matches[-1]["after"] == ["hit", "hit"]
    assert events[-2][0] == "notice" and "narrower" in events[-2][1]
    assert events[-1][:4] == ("done", events[-1][1], events[-1][2], 25)
    assert events[-1][4] is None


def test_partial_last_line_of_the_live_file_is_left_to_the_follower(tmp_path):
    path = tmp_path / "app.log"
    path.write_bytes(b"hit one\nhit two\nhit unfinished")
    matches, _, done = run([path], "hit")
    assert [m["line"] for _, m in matches] == ["hit one", "hit two"]
    info = os.stat(path)
    assert done[4] == (info.st_dev, info.st_ino, len(b"hit one\nhit two\n"))


def test_last_line_without_newline_of_a_rotated_file_is_searched(tmp_path):
    path = tmp_path / "app.log.1"
    path.write_bytes(b"a\nhit last")
    matches, _, done = run([path], "hit", live=False)
    assert [(m["line_no"], m["line"]) for _, m in matches] == [(2, "hit last")]
    assert done[4] is None


def test_binary_bytes_become_replacement_characters_like_the_tail(tmp_path):
    path = tmp_path / "app.log"
    path.write_bytes(b"a\xffb\n\x00\x01hit\xc3\n\xe6\x97\xa5 ok\n")
    matches, _, _ = run([path], r"^a.b$|hit.$|^. ok")
    assert [m["line"] for _, m in matches] == ["a\ufffdb", "\x00\x01hit\ufffd", "日 ok"]


def test_latin1_file_is_decoded_before_matching(tmp_path):
    path = tmp_path / "app.log"
    path.write_bytes(b"caf\xe9 ok\nplain\n")
    matches, _, _ = run([path], r"^café", encoding="latin-1")
    assert [m["line"] for _, m in matches] == ["café ok"]


def test_crlf_lines_match_at_their_end_like_the_tail(tmp_path):
    path = tmp_path / "app.log"
    path.write_bytes(b"one hit\r\ntwo\r\nhit\r\n")
    matches, _, _ = run([path], r"hit$", context=1)
    assert [(m["line_no"], m["line"], m["after"]) for _, m in matches] == [
        (1, "one hit", ["two"]), (3, "hit", [])]


def test_refused_or_missing_files_are_skipped_with_a_notice(tmp_path):
    good = tmp_path / "app.log"
    good.write_text("hit\n")

    def opener(path):  # the confined opener's refusal (tailf/roots.py)
        if path.endswith(".1"):
            raise OutsideRoots("outside the log roots")
        return os.open(path, os.O_RDONLY)

    (tmp_path / "app.log.1").write_text("hit secret\n")
    matches, notices, _ = run([tmp_path / "app.log.1", tmp_path / "app.log.2", good], "hit",
                              opener=opener)
    assert [m["line"] for _, m in matches] == ["hit"]
    assert "outside the log roots" in notices[0] and "app.log.1" in notices[0]
    assert "does not exist" in notices[1]


def test_fifo_in_place_of_the_log_is_not_read_and_does_not_block(tmp_path):
    path = tmp_path / "app.log"
    os.mkfifo(path)
    matches, notices, done = run([path], "hit")
    assert matches == [] and "not a regular file" in notices[0] and done[4] is None


def test_unreadable_file_is_skipped_when_searching_as_another_user(tmp_path):
    import subprocess
    import sys

    secret = tmp_path / "app.log"
    secret.write_text("hit\n")
    os.chmod(secret, 0o600)
    os.chmod(tmp_path, 0o755)
    code = ("import re2, sys; from tailf.search import scan; "
            "print([e[0] + ':' + str(e[1]) for e in scan([sys.argv[1]], re2.compile('hit'))])")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 sys.executable, "-c", code, str(secret)], cwd=root,
                                capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        pytest.skip("setpriv is not available")
    if result.returncode and "Operation not permitted" in result.stderr:
        pytest.skip("cannot change uid here")
    assert result.returncode == 0, result.stderr
    assert "permission denied" in result.stdout and "matches" not in result.stdout


def test_progress_comes_often_and_closing_the_search_releases_its_files(tmp_path):
    path = tmp_path / "app.log"
    with open(path, "w") as handle:
        handle.write("x\ny\n" * 3_000_000)
    before = len(os.listdir("/proc/self/fd"))
    events = scan([str(path)], re2.compile(r"x\sy"))
    gaps, last = [], time.monotonic()
    for event in events:
        now = time.monotonic()
        gaps.append(now - last)
        last = now
        if event[0] == "progress" and len(gaps) >= 3:
            break
    started = time.monotonic()
    events.close()
    assert time.monotonic() - started < 0.1
    assert max(gaps) < 0.5
    assert len(os.listdir("/proc/self/fd")) == before


def test_lines_around_gives_numbered_lines_near_a_match(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("".join(f"line {n}\n" for n in range(1, 10001)))
    around = lines_around(str(path), 5000, before=2, after=2, block=4096)
    assert around == [{"line_no": n, "line": f"line {n}"} for n in range(4998, 5003)]
    assert lines_around(str(path), 1, before=3, after=1) == [
        {"line_no": 1, "line": "line 1"}, {"line_no": 2, "line": "line 2"}]
    assert lines_around(str(path), 10000, 1, 5, block=4096)[-1] == \
        {"line_no": 10000, "line": "line 10000"}


def test_lines_around_counts_cut_lines_and_reads_gzip(tmp_path):
    path = tmp_path / "app.log.1.gz"
    path.write_bytes(gzip.compress(b"a\n" + b"z" * 70000 + b"\nb\nc"))
    around = lines_around(str(path), 3, before=1, after=5)
    assert [(x["line_no"], x["line"][:3]) for x in around] == [(2, "zzz"), (3, "b"), (4, "c")]
    with pytest.raises(ValueError):
        lines_around(str(path), 0)


def test_line_numbers_are_the_same_without_numpy(tmp_path, monkeypatch):
    from tailf import scanio

    text = random_text("numpy", lines=60000)
    path = tmp_path / "app.log"
    path.write_text(text, encoding="utf-8")
    with_numpy, _, _ = run([path], r"timeout$", block=300_000, max_matches=10 ** 6)
    monkeypatch.setattr(scanio, "numpy", None)
    without, _, _ = run([path], r"timeout$", block=300_000, max_matches=10 ** 6)
    assert with_numpy == without
    assert [m for _, m in without] == reference(text, r"timeout$", 0)


def test_the_same_file_under_two_names_is_searched_once_as_the_live_one(tmp_path):
    live = tmp_path / "app.log"
    live.write_text("hit\n")
    os.link(live, tmp_path / "app.log.1")
    matches, _, done = run([tmp_path / "app.log.1", live], "hit")
    assert [(os.path.basename(f), m["line_no"]) for f, m in matches] == [("app.log", 1)]
    assert done[4][1] == os.stat(live).st_ino


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError):
        next(scan([str(tmp_path / "x")], re2.compile("a"), context=21))
    with pytest.raises(ValueError):
        next(scan([str(tmp_path / "x")], re2.compile("a"), max_matches=0))
    with pytest.raises(ValueError):
        next(scan([str(tmp_path / "x")], re2.compile("a"), encoding="utf-16"))


def test_a_search_ends_with_a_notice_when_its_time_budget_is_spent(tmp_path):
    first, second = tmp_path / "app.log.1", tmp_path / "app.log"
    first.write_text("".join(f"hit {n}\n" for n in range(20000)))
    second.write_text("hit in the live file\n")
    events = list(scan([str(first), str(second)], re2.compile("hit"), block=4096,
                       clock=TickClock(), max_matches=10 ** 6, max_seconds=20))
    lines = [m["line_no"] for event in events if event[0] == "matches" for m in event[2]]
    notices = [event[1] for event in events if event[0] == "notice"]
    done = events[-1]
    assert 0 < len(lines) < 20000 and lines == list(range(1, len(lines) + 1))
    assert notices == ["stopped after 20 s of searching (SEARCH_MAX_SECONDS); use a narrower "
                       "search pattern or fewer files to see the rest"]
    assert notices[0].code == "search_time_limit"
    assert done[0] == "done" and done[3] == len(lines) and done[4] is None
    assert done[1] < done[2]  # not all of it was scanned
