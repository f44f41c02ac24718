"""The journal engine on real journal files written by systemd-journal-remote: filters,
backlog, cursors, the short-iso line format and levels, following appends and rotations."""

import os
import select
import shutil
import subprocess
import time

import pytest

from journal.entries import ShortIso, level
from journal.reader import BadCursor, Journal
from tailf.roots import OutsideRoots
from tests import journalfiles as jf

pytestmark = jf.needed

BASE = 1765033445_000000  # 2025-12-06T15:04:05Z


@pytest.fixture
def folder(tmp_path):
    """A journal folder holding x.journal with 20 entries of two units and identifiers."""
    entries = [jf.entry(f"m{n}", usec=BASE + n * 1000, priority=n % 8,
                        unit="a.service" if n % 2 else "b.service",
                        ident="ia" if n % 3 else "ib") for n in range(20)]
    jf.write(str(tmp_path / "x.journal"), entries)
    return tmp_path


def messages(lines):
    """The MESSAGE part of short-iso lines."""
    return [line.split(": ", 1)[1] for line in lines]


def read_all(journal):
    lines, levels, cursors = journal.read(10_000)
    return lines, levels, cursors


def test_the_backlog_is_the_last_n_matching_entries(folder):
    journal = Journal(str(folder))
    journal.start(3)
    assert messages(read_all(journal)[0]) == ["m17", "m18", "m19"]
    journal = Journal(str(folder), units=["a.service"])
    journal.start(2)
    assert messages(read_all(journal)[0]) == ["m17", "m19"]


def test_a_backlog_larger_than_the_journal_gives_all_of_it_and_zero_gives_none(folder):
    journal = Journal(str(folder))
    journal.start(100)
    assert messages(read_all(journal)[0]) == [f"m{n}" for n in range(20)]
    journal = Journal(str(folder))
    journal.start(20)
    assert len(read_all(journal)[0]) == 20
    journal = Journal(str(folder))
    journal.start(0)
    assert read_all(journal)[0] == []


def test_units_identifiers_and_priority_combine(folder):
    journal = Journal(str(folder), units=["a.service", "b.service"], identifiers=["ib"])
    journal.start(100)
    assert messages(read_all(journal)[0]) == ["m0", "m3", "m6", "m9", "m12", "m15", "m18"]
    journal = Journal(str(folder), units=["a.service"], priority=4)
    journal.start(100)
    lines, levels, _ = read_all(journal)
    assert messages(lines) == ["m1", "m3", "m9", "m11", "m17", "m19"]  # odd n, n % 8 <= 4
    assert levels == ["error", "error", "error", "error", "error", "error"]
    journal = Journal(str(folder), identifiers=["nobody"])
    journal.start(100)
    assert read_all(journal)[0] == []


def test_levels_follow_the_priority(folder):
    journal = Journal(str(folder))
    journal.start(8)
    _, levels, _ = read_all(journal)
    # m12..m19: priorities 4, 5, 6, 7, 0, 1, 2, 3
    assert levels == ["warn", "info", "info", "debug", "error", "error", "error", "error"]
    assert level({}) is None and level({"PRIORITY": b"9"}) is None


def test_resuming_after_a_cursor_loses_and_repeats_nothing(folder):
    journal = Journal(str(folder), units=["b.service"])
    journal.start(100)
    lines, _, cursors = read_all(journal)
    for at in (0, 4, len(cursors) - 1):
        again = Journal(str(folder), units=["b.service"])
        assert again.resume(cursors[at]) is None
        assert read_all(again)[0] == lines[at + 1:]


def test_a_cursor_whose_entry_was_vacuumed_resumes_with_the_next_entry(tmp_path):
    old = tmp_path / "x.journal"
    jf.write(str(old), [jf.entry(f"old{n}", usec=BASE + n) for n in range(3)])
    journal = Journal(str(tmp_path))
    journal.start(100)
    _, _, cursors = read_all(journal)
    archived = jf.archive(str(old))
    jf.write(str(old), [jf.entry(f"new{n}", usec=BASE + 100 + n) for n in range(2)])
    os.unlink(archived)  # vacuumed: the entry of the cursor is gone
    again = Journal(str(tmp_path))
    first = again.resume(cursors[1])
    assert first is not None and first[0].endswith(": new0")
    assert messages(read_all(again)[0]) == ["new1"]


def test_a_cursor_the_journal_cannot_read_is_refused(folder):
    journal = Journal(str(folder))
    with pytest.raises(BadCursor):
        journal.resume("nonsense")


def test_lines_read_like_journalctl_short_iso(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    path = tmp_path / "x.journal"
    jf.write(str(path), [
        jf.entry("hello world", usec=BASE + 123456, ident="nginx", pid=42, host="web1"),
        jf.entry("from cron", usec=BASE + 1_000_000, ident=None, pid=None, _COMM="cron",
                 SYSLOG_PID=7),
        jf.entry("anonymous", usec=BASE + 2_000_000, ident=None, pid=None),
        jf.entry("one\ntwo\n", usec=BASE + 3_000_000, ident="app", pid=5),
    ])
    journal = Journal(str(tmp_path))
    journal.start(100)
    lines = read_all(journal)[0]
    assert lines == [
        "2025-12-06T15:04:05+0000 web1 nginx[42]: hello world",
        "2025-12-06T15:04:06+0000 web1 cron[7]: from cron",
        "2025-12-06T15:04:07+0000 web1 unknown: anonymous",
        "2025-12-06T15:04:08+0000 web1 app[5]: one\n" + " " * 38 + "two",
    ]
    if shutil.which("journalctl"):  # the same text as journalctl's own, line for line
        shown = subprocess.run(["journalctl", "--file", str(path), "-o", "short-iso"],
                               capture_output=True, text=True, check=True).stdout
        assert "\n".join(lines) + "\n" == shown
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    assert ShortIso().line({"MESSAGE": b"x", "_HOSTNAME": b"h", "SYSLOG_IDENTIFIER": b"i"},
                           BASE) == "2025-12-06T23:04:05+0800 h i: x"
    monkeypatch.delenv("TZ")
    time.tzset()


def test_a_field_given_several_times_shows_its_last_value_like_journalctl(tmp_path,
                                                                         monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    path = tmp_path / "x.journal"
    jf.write(str(path), [jf.entry(["first", "last"], usec=BASE, ident=["ia", "ib"],
                                  pid=None, priority=None, host=["web1", "web2"],
                                  SYSLOG_PID=["7", "8"], PRIORITY=["3", "6"])])
    journal = Journal(str(tmp_path))
    journal.start(10)
    lines, levels, _ = read_all(journal)
    assert lines == ["2025-12-06T15:04:05+0000 web2 ib[8]: last"] and levels == ["info"]
    if shutil.which("journalctl"):
        shown = subprocess.run(["journalctl", "--file", str(path), "-o", "short-iso"],
                               capture_output=True, text=True, check=True).stdout
        assert shown == lines[0] + "\n"
    monkeypatch.delenv("TZ")
    time.tzset()


def test_a_line_longer_than_the_limit_is_cut_with_the_file_kinds_marker():
    line = ShortIso(max_line=100).line({"MESSAGE": "é".encode() * 500,
                                        "SYSLOG_IDENTIFIER": b"i"}, BASE)
    assert line.endswith(" [… line cut: longer than 100 bytes]")
    assert len(line.split(" […")[0].encode()) <= 100


def wait_for_entries(journal, count, seconds=10):
    """Follow as the stream does (wait for the descriptor, process, read) until count."""
    got = []
    deadline = time.monotonic() + seconds
    while len(got) < count and time.monotonic() < deadline:
        select.select([journal.fd], [], [], 0.2)
        journal.process()
        got += read_all(journal)[0]
    return got


def test_entries_appended_while_following_arrive_in_order(folder):
    journal = Journal(str(folder))
    journal.start(0)
    writer = jf.Writer(str(folder / "x.journal"))
    try:
        for batch in range(5):
            writer.write([jf.entry(f"live{batch}-{n}", usec=BASE + 10**7 + batch * 100 + n)
                          for n in range(20)])
            got = wait_for_entries(journal, 20)
            assert messages(got) == [f"live{batch}-{n}" for n in range(20)]
    finally:
        writer.close()


def test_a_rotation_mid_stream_loses_nothing_still_on_disk(folder):
    journal = Journal(str(folder))
    journal.start(100)
    assert len(journal.read(5)[0]) == 5  # behind: 15 entries of x.journal still unread
    jf.archive(str(folder / "x.journal"))
    jf.write(str(folder / "x.journal"), [jf.entry(f"new{n}", usec=BASE + 10**8 + n)
                                          for n in range(3)])
    got = wait_for_entries(journal, 18)
    assert messages(got) == [f"m{n}" for n in range(5, 20)] + ["new0", "new1", "new2"]
    assert len(os.listdir(folder)) == 2


def test_the_old_file_vacuumed_while_following_keeps_the_stream_going(folder):
    journal = Journal(str(folder))
    journal.start(0)
    archived = jf.archive(str(folder / "x.journal"))
    jf.write(str(folder / "x.journal"), [jf.entry("fresh", usec=BASE + 10**8),
                                          jf.entry("fresh too", usec=BASE + 10**8 + 1)])
    assert messages(wait_for_entries(journal, 2)) == ["fresh", "fresh too"]
    os.unlink(archived)
    jf.write(str(folder / "x.journal"), [jf.entry("after-vacuum", usec=BASE + 10**8 + 2)])
    assert messages(wait_for_entries(journal, 1)) == ["after-vacuum"]


@pytest.mark.parametrize("damage", ["garbled", "truncated", "header"])
def test_a_damaged_journal_file_beside_a_good_one_is_skipped_and_following_goes_on(folder,
                                                                                   damage):
    # journald leaves such files after a crash (`*.journal~`); journalctl reads past them.
    written = folder / "damaged.journal"
    jf.write(str(written), [jf.entry(f"d{n}", usec=BASE + 500 + n * 1000) for n in range(200)])
    damaged = written.rename(folder / "system@0000-damaged.journal~")
    size = damaged.stat().st_size
    with open(damaged, "r+b") as handle:
        if damage == "truncated":
            handle.truncate(size // 3)
        else:
            handle.seek(0 if damage == "header" else size // 2)
            handle.write(b"\xff" * (64 if damage == "header" else 4096))
    journal = Journal(str(folder))
    journal.start(10_000)
    got = messages(read_all(journal)[0])
    assert [m for m in got if m.startswith("m")] == [f"m{n}" for n in range(20)]
    jf.write(str(folder / "x.journal"), [jf.entry("after", usec=BASE + 10**8)])
    assert messages(wait_for_entries(journal, 1)) == ["after"]


def test_a_folder_outside_the_roots_or_missing_is_not_opened(tmp_path, folder):
    with pytest.raises(OutsideRoots):
        Journal(str(folder), roots=[str(tmp_path / "elsewhere")])
    (tmp_path / "logs").mkdir()
    os.symlink(str(folder), tmp_path / "logs" / "link")
    with pytest.raises(OutsideRoots):
        Journal(str(tmp_path / "logs" / "link"), roots=[str(tmp_path / "logs")])
    with pytest.raises(FileNotFoundError):
        Journal(str(tmp_path / "logs" / "missing"), roots=[str(tmp_path / "logs")])


@pytest.mark.parametrize("backlog", [0, 50])
def test_an_empty_folder_is_followed_until_a_journal_appears_in_a_machine_id_folder(tmp_path,
                                                                                     backlog):
    journal = Journal(str(tmp_path))
    journal.start(backlog)
    assert read_all(journal)[0] == []
    machine = tmp_path / "0123456789abcdef0123456789abcdef"
    machine.mkdir()
    jf.write(str(machine / "system.journal"), [jf.entry("first", usec=BASE),
                                               jf.entry("second", usec=BASE + 1)])
    assert messages(wait_for_entries(journal, 2)) == ["first", "second"]


def test_a_vacuumed_cursor_with_nothing_after_it_waits_for_the_next_entry(tmp_path):
    path = str(tmp_path / "x.journal")
    jf.write(path, [jf.entry("old", usec=BASE)])
    journal = Journal(str(tmp_path))
    journal.start(1)
    cursor = read_all(journal)[2][0]
    os.unlink(path)
    again = Journal(str(tmp_path))
    assert again.resume(cursor) is None
    jf.write(path, [jf.entry("new0", usec=BASE + 10), jf.entry("new1", usec=BASE + 11)])
    assert messages(wait_for_entries(again, 2)) == ["new0", "new1"]


def test_a_journal_file_or_machine_folder_linking_outside_the_roots_is_refused(tmp_path, folder):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "j").mkdir()
    os.symlink(str(folder / "x.journal"), logs / "j" / "stolen.journal")
    with pytest.raises(OutsideRoots, match="stolen.journal in the folder links outside"):
        Journal(str(logs / "j"), roots=[str(logs)])
    os.unlink(logs / "j" / "stolen.journal")
    os.symlink(str(folder), logs / "j" / ("ab" * 16))
    with pytest.raises(OutsideRoots, match="links outside"):
        Journal(str(logs / "j"), roots=[str(logs)])
    os.unlink(logs / "j" / ("ab" * 16))
    inside = logs / "j" / ("cd" * 16)
    inside.mkdir()
    jf.write(str(inside / "system.journal"), [jf.entry("mine", usec=BASE)])
    os.symlink(str(inside / "system.journal"), logs / "j" / "alias.journal")
    journal = Journal(str(logs / "j"), roots=[str(logs)])  # links inside the roots are fine
    journal.start(10)
    assert messages(read_all(journal)[0]) == ["mine"]


def test_process_says_when_files_were_added_rotated_or_removed(folder):
    journal = Journal(str(folder))
    journal.start(0)
    jf.write(str(folder / "x.journal"), [jf.entry("appended", usec=BASE + 10**8)])
    select.select([journal.fd], [], [], 5)
    assert journal.process() is False  # an append: no files changed
    jf.archive(str(folder / "x.journal"))
    jf.write(str(folder / "x.journal"), [jf.entry("rotated", usec=BASE + 10**8 + 1)])
    changed = False
    deadline = time.monotonic() + 5
    while not changed and time.monotonic() < deadline:
        select.select([journal.fd], [], [], 0.2)
        changed = journal.process()
    assert changed
    assert messages(read_all(journal)[0]) == ["appended", "rotated"]
