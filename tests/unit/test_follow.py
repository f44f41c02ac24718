"""The `tail -n N -F` engine on real temp files (the scenarios of coreutils' follow tests)."""

import os
import shutil

import pytest

from tailf import follow as follow_module
from tailf.follow import CUT_MARKER, MAX_READ_PER_POLL, Follower


def write(path, data, mode="ab"):
    """Append (or write) bytes or text to a file."""
    with open(path, mode) as handle:
        handle.write(data if isinstance(data, bytes) else data.encode())


def lines_of(events):
    """All lines in a list of events, in order."""
    return [line for kind, value in events if kind == "lines" for line in value]


def notices_of(events):
    """All notice texts in a list of events."""
    return [value for kind, value in events if kind == "notice"]


def test_backlog_returns_the_last_n_lines(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "".join(f"line {i}\n" for i in range(100)))
    assert lines_of(follower(log, backlog=3).start()) == ["line 97", "line 98", "line 99"]


def test_backlog_counts_an_unfinished_last_line_as_a_line(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "a\nb\nc\npartial")
    tail = follower(log, backlog=2)
    assert lines_of(tail.start(now=0)) == ["c"]
    assert lines_of(tail.poll(now=0.1)) == []
    assert lines_of(tail.poll(now=0.6)) == ["partial"]


def test_backlog_larger_than_the_file_returns_the_whole_file(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "one\ntwo\n")
    assert lines_of(follower(log, backlog=50).start()) == ["one", "two"]


def test_backlog_zero_starts_at_the_end(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "old\nhalf")
    tail = follower(log, backlog=0)
    assert tail.start(now=0) == []
    assert tail.poll(now=5) == []
    write(log, " done\nnew\n")
    assert lines_of(tail.poll(now=6)) == [" done", "new"]


def test_backlog_is_read_from_the_end_of_a_huge_file_not_whole(follower, tmp_path, monkeypatch):
    log = tmp_path / "huge.log"
    with open(log, "wb") as handle:
        handle.truncate(10 * 1024 ** 3)
        handle.seek(0, os.SEEK_END)
        handle.write(b"\nfirst\nsecond\nthird\n")
    read = []
    real_pread = os.pread

    def pread(fd, size, at):
        read.append(len(data := real_pread(fd, size, at)))
        return data

    monkeypatch.setattr(follow_module.os, "pread", pread)
    assert lines_of(follower(log, backlog=2).start()) == ["second", "third"]
    assert sum(read) < 4 * 1024 * 1024


def test_backlog_scan_is_bounded_and_skips_a_line_too_long_to_reach(follower, tmp_path,
                                                                   monkeypatch):
    log = tmp_path / "nolines.log"
    write(log, b"x" * 5_000_000 + b"\nlast\n")
    read = []
    real_pread = os.pread

    def pread(fd, size, at):
        read.append(len(data := real_pread(fd, size, at)))
        return data

    monkeypatch.setattr(follow_module, "BACKLOG_SCAN_LIMIT", 1_000_000)
    monkeypatch.setattr(follow_module.os, "pread", pread)
    tail = follower(log, backlog=5, max_line=1000)
    events = tail.start()
    assert lines_of(events) == ["last"]
    assert "left out of the backlog" in notices_of(events)[0]
    assert sum(read) < 2 * 1_000_000 + 100_000
    assert max(read) <= follow_module.BACKLOG_MAX_BLOCK


def test_backlog_counts_a_long_line_as_one_line_like_tail_n(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "".join(f"early {i}\n" for i in range(10)) + "L" * 300_000 + "\nt1\nt2\n")
    tail = follower(log, backlog=3)
    assert lines_of(tail.start()) == ["L" * 65536 + CUT_MARKER.format(limit=65536), "t1", "t2"]
    assert lines_of(follower(log, backlog=4).start())[0] == "early 9"


def test_backlog_over_a_long_line_reads_a_bounded_amount(follower, tmp_path, monkeypatch):
    log = tmp_path / "app.log"
    write(log, b"head\n" + b"x" * 5_000_000 + b"\nlast\n")
    read = []
    real_pread = os.pread

    def pread(fd, size, at):
        read.append(len(data := real_pread(fd, size, at)))
        return data

    monkeypatch.setattr(follow_module.os, "pread", pread)
    tail = follower(log, backlog=2, max_line=1000)
    assert lines_of(tail.start()) == ["x" * 1000 + CUT_MARKER.format(limit=1000), "last"]
    assert sum(read) < 2 * 5_000_000 + 200_000
    assert max(read) <= follow_module.CHUNK


def test_appended_lines_arrive_on_the_next_poll_in_order(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "")
    tail = follower(log)
    assert tail.start() == []
    write(log, "one\ntwo\n")
    write(log, "three\n")
    assert tail.poll() == [("lines", ["one", "two", "three"])]
    assert tail.poll() == []


@pytest.mark.parametrize("backlog", [5, 0])
def test_data_appended_between_the_initial_read_and_watching_is_not_lost(follower, tmp_path,
                                                                       monkeypatch, backlog):
    log = tmp_path / "app.log"
    write(log, "backlog\n")
    tail = follower(log, backlog=backlog)
    real_pread, real_fstat = os.pread, os.fstat
    calls = {"raced": False}

    def race():
        if not calls["raced"]:
            calls["raced"] = True
            write(log, "raced in\n")

    def pread(fd, size, at):
        data = real_pread(fd, size, at)
        if len(data) < size and at > 0:
            race()
        return data

    def fstat(fd):
        info = real_fstat(fd)
        if tail.waker.file_wds:
            race()
        return info

    monkeypatch.setattr(follow_module.os, "pread", pread)
    monkeypatch.setattr(follow_module.os, "fstat", fstat)
    seen = lines_of(tail.start())
    monkeypatch.undo()
    assert calls["raced"]
    assert woken(tail)
    seen += lines_of(tail.poll())
    assert seen == (["backlog"] if backlog else []) + ["raced in"]


def test_append_right_after_start_wakes_the_follower(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "backlog\n")
    tail = follower(log)
    assert tail.waker.kind == "inotify"
    tail.start()
    write(log, "right after\n")
    assert woken(tail)
    assert lines_of(tail.poll()) == ["right after"]


def woken(tail):
    """Whether the follower's inotify descriptor has an event queued (kernel queues at once)."""
    import select

    return bool(select.select([tail.waker.inotify.fileno()], [], [], 0)[0])


def test_rename_rotation_reads_old_file_to_end_then_follows_new(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "before\n")
    tail = follower(log)
    tail.start()
    write(log, "old 1\n")
    os.rename(log, tmp_path / "app.log.1")
    write(tmp_path / "app.log.1", "old 2, written after the rename\n")
    write(log, "new 1\n")
    events = tail.poll()
    assert lines_of(events) == ["old 1", "old 2, written after the rename", "new 1"]
    kinds = [kind for kind, _ in events]
    assert kinds == ["lines", "notice", "lines"]
    assert "rotated" in notices_of(events)[0]
    write(log, "new 2\n")
    assert lines_of(tail.poll()) == ["new 2"]


def test_rotation_without_grace_delivers_the_old_files_unfinished_last_line(follower,
                                                                            tmp_path):
    log = tmp_path / "app.log"
    write(log, "")
    tail = follower(log, rotate_wait=0)
    tail.start(now=0)
    write(log, "complete\nunfinished")
    os.rename(log, tmp_path / "app.log.1")
    write(log, "new\n")
    assert lines_of(tail.poll(now=0.1)) == ["complete", "unfinished", "new"]


def test_rotated_files_unfinished_line_completed_during_the_grace_comes_whole(follower,
                                                                             tmp_path):
    log = tmp_path / "app.log"
    write(log, "")
    tail = follower(log, rotate_wait=5)
    tail.start(now=0)
    write(log, "complete\nunfin")
    os.rename(log, tmp_path / "app.log.1")
    write(log, "new\n")
    assert lines_of(tail.poll(now=0.1)) == ["complete", "new"]
    write(tmp_path / "app.log.1", "ished\n")
    assert lines_of(tail.poll(now=0.2)) == ["unfinished"]


def test_fifty_rotations_lose_no_line_and_leak_no_fd_or_watch(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "")
    tail = follower(log, backlog=0, rotate_wait=0)
    tail.start()
    fds_before = len(os.listdir("/proc/self/fd"))
    watches_before = tail.waker.watch_count()
    expected, seen = [], []
    for rotation in range(50):
        batch = [f"r{rotation} line {i}" for i in range(20)]
        expected += batch
        write(log, "".join(line + "\n" for line in batch[:10]))
        seen += lines_of(tail.poll())
        write(log, "".join(line + "\n" for line in batch[10:]))
        os.rename(log, tmp_path / f"app.log.{rotation}")
        write(log, "")
        events = tail.poll()
        seen += lines_of(events)
        assert any("rotated" in text for text in notices_of(events))
    write(log, "last\n")
    seen += lines_of(tail.poll())
    assert seen == expected + ["last"]
    assert len(os.listdir("/proc/self/fd")) == fds_before
    assert tail.waker.watch_count() == watches_before == 2


def test_rotation_rearms_the_watch_on_the_new_file(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "")
    tail = follower(log, rotate_wait=0)
    tail.start()
    os.rename(log, tmp_path / "app.log.1")
    write(log, "")
    tail.poll()
    tail.poll()
    assert not woken(tail)
    write(tmp_path / "app.log.1", "to the old file\n")
    assert not woken(tail)
    write(log, "to the new file\n")
    assert woken(tail)
    assert lines_of(tail.poll()) == ["to the new file"]


def test_truncation_notices_and_continues_from_the_new_start(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "one\ntwo\nthree\n")
    tail = follower(log)
    tail.start()
    write(log, "after\n", mode="wb")
    events = tail.poll()
    assert notices_of(events) == [f"{log} was truncated; reading from its new start"]
    assert lines_of(events) == ["after"]


def test_copytruncate_keeps_following_the_same_file(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "one\ntwo\n")
    tail = follower(log)
    tail.start()
    write(log, "three\n")
    assert lines_of(tail.poll()) == ["three"]
    shutil.copyfile(log, tmp_path / "app.log.1")
    os.truncate(log, 0)
    write(log, "four\n")
    events = tail.poll()
    assert any("truncated" in text for text in notices_of(events))
    assert lines_of(events) == ["four"]


def test_truncation_delivers_a_held_unfinished_line_first(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "")
    tail = follower(log)
    tail.start(now=0)
    write(log, "held")
    assert tail.poll(now=0.1) == []
    os.truncate(log, 0)
    write(log, "x\n")
    assert lines_of(tail.poll(now=0.2)) == ["held", "x"]


def test_missing_file_is_waited_for_then_read_from_its_start(follower, tmp_path):
    log = tmp_path / "later.log"
    tail = follower(log, backlog=1)
    events = tail.start()
    assert lines_of(events) == []
    assert notices_of(events) == [f"{log} does not exist; waiting for it"]
    assert tail.poll() == []
    write(log, "first\nsecond\n")
    assert woken(tail)
    events = tail.poll()
    assert notices_of(events) == [f"{log} appeared; following it"]
    assert lines_of(events) == ["first", "second"]


def test_missing_directory_is_waited_for_too(follower, tmp_path):
    log = tmp_path / "a" / "b" / "later.log"
    tail = follower(log)
    events = tail.start()
    assert "nor does its directory" in notices_of(events)[0]
    assert "waiting" in notices_of(events)[0]
    os.mkdir(tmp_path / "a")
    assert woken(tail)
    assert tail.poll() == []
    os.mkdir(tmp_path / "a" / "b")
    assert woken(tail)
    events = tail.poll()
    assert notices_of(events) == [f"{log} does not exist; waiting for it"]
    write(log, "hello\n")
    assert woken(tail)
    events = tail.poll()
    assert lines_of(events) == ["hello"]
    assert "appeared" in notices_of(events)[0]


def test_deleted_file_is_waited_for_and_followed_when_recreated(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "one\n")
    tail = follower(log)
    tail.start()
    write(log, "last words\n")
    os.unlink(log)
    events = tail.poll()
    assert lines_of(events) == ["last words"]
    assert "removed or renamed" in notices_of(events)[0]
    assert "waiting" in notices_of(events)[0]
    assert tail.poll() == []
    write(log, "reborn\n")
    events = tail.poll()
    assert notices_of(events) == [f"{log} was recreated; following the new file"]
    assert lines_of(events) == ["reborn"]


def test_delete_and_recreate_between_polls_follows_the_new_file(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "one\n")
    tail = follower(log)
    tail.start()
    write(log, "last words\n")
    os.unlink(log)
    write(log, "reborn\n")
    events = tail.poll()
    assert lines_of(events) == ["last words", "reborn"]
    assert notices_of(events) == [f"{log} was recreated; following the new file; the old "
                                  "file is read for 5 s more"]


def test_directory_removed_and_recreated_is_followed(follower, tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    log = folder / "app.log"
    write(log, "one\n")
    tail = follower(log)
    tail.start()
    shutil.rmtree(folder)
    assert "waiting" in notices_of(tail.poll())[0]
    folder.mkdir()
    write(log, "again\n")
    assert woken(tail)
    assert lines_of(tail.poll()) == ["again"]


def test_symlink_whose_target_changes_follows_the_new_target(follower, tmp_path):
    write(tmp_path / "a.log", "a1\n")
    write(tmp_path / "b.log", "b1\n")
    link = tmp_path / "current.log"
    os.symlink("a.log", link)
    tail = follower(link)
    assert lines_of(tail.start()) == ["a1"]
    write(tmp_path / "a.log", "a2\n")
    os.symlink("b.log", tmp_path / "tmp-link")
    os.rename(tmp_path / "tmp-link", link)
    assert woken(tail)
    events = tail.poll()
    assert lines_of(events) == ["a2", "b1"]
    assert notices_of(events) == [f"{link} now points to another file; following it; the "
                                  "old file is read for 5 s more"]
    write(tmp_path / "b.log", "b2\n")
    assert lines_of(tail.poll()) == ["b2"]


def test_symlink_into_another_directory_sees_rotation_there(follower, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "links").mkdir()
    target = tmp_path / "real" / "app.log"
    write(target, "one\n")
    link = tmp_path / "links" / "app.log"
    os.symlink(target, link)
    tail = follower(link)
    tail.start()
    os.rename(target, tmp_path / "real" / "app.log.1")
    tail.poll()
    write(target, "new\n")
    assert woken(tail)
    assert lines_of(tail.poll()) == ["new"]


def test_dangling_symlink_is_waited_for(follower, tmp_path):
    link = tmp_path / "current.log"
    os.symlink("not-yet.log", link)
    tail = follower(link)
    assert "waiting" in notices_of(tail.start())[0]
    write(tmp_path / "not-yet.log", "here\n")
    assert woken(tail)
    assert lines_of(tail.poll()) == ["here"]


def test_a_directory_at_the_path_is_waited_for(follower, tmp_path):
    (tmp_path / "app.log").mkdir()
    tail = follower(tmp_path / "app.log")
    assert "not a regular file" in notices_of(tail.start())[0]


def test_unfinished_line_is_held_until_completed(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "")
    tail = follower(log)
    tail.start(now=0)
    write(log, "abc")
    assert tail.poll(now=0.1) == []
    write(log, "def\nghi")
    assert lines_of(tail.poll(now=0.2)) == ["abcdef"]
    write(log, "\n")
    assert lines_of(tail.poll(now=0.3)) == ["ghi"]


def test_unfinished_line_is_delivered_after_the_idle_timeout(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "")
    tail = follower(log, partial_timeout=0.5)
    tail.start(now=0)
    write(log, "Password: ")
    assert tail.poll(now=10.0) == []
    assert tail.timeout(now=10.2) == pytest.approx(0.3)
    assert tail.poll(now=10.4) == []
    assert lines_of(tail.poll(now=10.5)) == ["Password: "]
    assert tail.timeout(now=10.5) == tail.waker.interval
    write(log, "ok\n")
    assert lines_of(tail.poll(now=11)) == ["ok"]


def test_long_line_is_cut_with_a_visible_marker(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "")
    tail = follower(log, max_line=100)
    tail.start()
    write(log, "short\n" + "x" * 250 + "\nnext\n")
    marker = CUT_MARKER.format(limit=100)
    assert lines_of(tail.poll()) == ["short", "x" * 100 + marker, "next"]


def test_long_unfinished_line_is_cut_once_and_its_rest_skipped(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "")
    tail = follower(log, max_line=100)
    tail.start()
    write(log, "y" * 150)
    assert lines_of(tail.poll()) == ["y" * 100 + CUT_MARKER.format(limit=100)]
    write(log, "y" * 5000)
    assert tail.poll() == []
    write(log, "y\nafter\n")
    assert lines_of(tail.poll()) == ["after"]


def test_long_line_limit_follows_the_setting(follower, tmp_path, settings):
    log = tmp_path / "app.log"
    write(log, "z" * (settings.TAIL_MAX_LINE_BYTES + 10) + "\n")
    tail = follower(log, max_line=settings.TAIL_MAX_LINE_BYTES)
    [line] = lines_of(tail.start())
    assert line == "z" * settings.TAIL_MAX_LINE_BYTES + CUT_MARKER.format(
        limit=settings.TAIL_MAX_LINE_BYTES)


def test_cut_does_not_split_a_multibyte_character(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "é" * 60 + "\n")
    [line] = lines_of(follower(log, max_line=101).start())
    assert line == "é" * 50 + CUT_MARKER.format(limit=101)


def test_invalid_bytes_become_replacement_characters(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, b"ok \xff\xfe bad\ncut \xe2\x82\n")
    assert lines_of(follower(log).start()) == ["ok \ufffd\ufffd bad", "cut \ufffd"]


def test_the_sources_encoding_is_used(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, b"caf\xe9\n\x80uro\n")
    assert lines_of(follower(log, encoding="latin-1").start()) == ["café", "\x80uro"]
    assert lines_of(follower(log, encoding="cp1252").start()) == ["café", "€uro"]


def test_invalid_bytes_in_a_multibyte_encoding_become_replacement_characters(follower,
                                                                            tmp_path):
    log = tmp_path / "app.log"
    write(log, "日本\n".encode("shift_jis") + b"\x82\nok\n")
    assert lines_of(follower(log, encoding="shift_jis").start()) == ["日本", "\ufffd", "ok"]


def test_encoding_without_a_one_byte_newline_is_refused(tmp_path):
    with pytest.raises(ValueError, match="newline"):
        Follower(str(tmp_path / "x.log"), encoding="utf-16", roots=[str(tmp_path)])


def test_nul_bytes_are_harmless(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, b"a\x00b\n\x00\x00\x00\nafter\n")
    assert lines_of(follower(log).start()) == ["a\x00b", "\x00\x00\x00", "after"]


def test_crlf_line_endings_lose_their_carriage_return(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, b"dos\r\nline\r\nbare\rcr\n")
    assert lines_of(follower(log).start()) == ["dos", "line", "bare\rcr"]


def test_big_appends_come_as_few_large_batches_and_resume_at_once(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "")
    tail = follower(log, backlog=0)
    tail.start()
    count = MAX_READ_PER_POLL // 50 + 1000
    write(log, "".join(f"{i:049d}\n" for i in range(count)))
    first = tail.poll()
    assert len(first) == 1 and tail.behind and tail.timeout() == 0
    second = tail.poll()
    assert len(second) == 1 and not tail.behind
    assert lines_of(first + second) == [f"{i:049d}" for i in range(count)]


def test_idle_follower_waits_for_the_check_interval_not_a_short_sleep(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "one\n")
    tail = follower(log)
    tail.start()
    assert tail.waker.kind == "inotify"
    assert tail.timeout() == 1.0
    assert tail.poll() == []
    assert not woken(tail)


async def test_aidle_returns_as_soon_as_a_line_is_appended(follower, tmp_path):
    import asyncio

    log = tmp_path / "app.log"
    write(log, "")
    tail = follower(log)
    tail.start()
    tail.waker.interval = 30
    asyncio.get_running_loop().call_later(0.05, write, log, "wake up\n")
    await asyncio.wait_for(tail.aidle(), 5)
    assert lines_of(tail.poll()) == ["wake up"]


def loop_turns(monkeypatch):
    """Count the running loop's waits on its selector (one per loop turn that found nothing
    ready to run): a loop that spins turns hundreds of times where a waiting one turns once."""
    import asyncio

    selector = asyncio.get_running_loop()._selector  # asyncio's selector event loop
    turns = []
    select = selector.select

    def counted(timeout=None):
        turns.append(timeout)
        return select(timeout)

    monkeypatch.setattr(selector, "select", counted)
    return turns


async def test_aidle_blocks_without_spinning_until_its_timeout(follower, tmp_path,
                                                               monkeypatch):
    import time

    log = tmp_path / "app.log"
    write(log, "")
    tail = follower(log)
    tail.start()
    tail.waker.interval = 0.2
    turns = loop_turns(monkeypatch)
    wall = time.monotonic()
    await tail.aidle()
    assert time.monotonic() - wall >= 0.19
    assert len(turns) <= 3, turns


async def test_an_event_while_nobody_waits_is_read_at_once_and_cannot_spin_the_loop(
        follower, tmp_path, monkeypatch):
    import asyncio
    import select

    log = tmp_path / "app.log"
    write(log, "")
    tail = follower(log)
    tail.start()
    tail.waker.interval = 0.05
    await tail.aidle()  # the descriptor is now registered with the loop, and stays so
    turns = loop_turns(monkeypatch)
    write(log, "while busy\n")
    await asyncio.sleep(0.3)  # the scenario: the stream is busy elsewhere (waiting for credit)
    assert len(turns) <= 4, turns  # the event's read once; an unread descriptor wakes it on
    fd = tail.waker.inotify.fileno()
    assert select.select([fd], [], [], 0)[0] == []  # read by the wake-up, not left pending
    assert lines_of(tail.poll()) == ["while busy"]
    tail.close()
    assert tail.waker.registered is None


async def woken_while_busy(follower, log):
    """A follower whose loop waited, polled "first", and is busy sending it while "second"
    is appended: the wake-up has read that event, and no wait has run since."""
    import asyncio

    write(log, "")
    tail = follower(log)
    tail.start()
    tail.waker.interval = 60
    write(log, "first\n")
    await asyncio.wait_for(tail.aidle(), 5)
    assert lines_of(tail.poll()) == ["first"]
    write(log, "second\n")
    await asyncio.sleep(0.1)  # sending "first" (or waiting for credit)
    return tail


async def test_a_line_appended_while_the_stream_is_busy_ends_the_next_wait_at_once(
        follower, tmp_path):
    """The stream loop waits, polls, then sends (and may wait for credit) before it waits
    again: an event read while it was sending must not be forgotten by that next wait,
    which would hold the line until the safety check (a second) instead of milliseconds."""
    import asyncio

    tail = await woken_while_busy(follower, tmp_path / "app.log")
    await asyncio.wait_for(tail.aidle(), 5)
    assert lines_of(tail.poll()) == ["second"]
    tail.close()


async def test_events_read_just_before_inotify_fails_do_not_make_the_polling_loop_spin(
        follower, tmp_path):
    import asyncio

    tail = await woken_while_busy(follower, tmp_path / "app.log")
    tail.waker._degrade("inotify failed (test)")  # then inotify fails: polling from now on
    lines, rounds = lines_of(tail.poll()), 0
    loop = asyncio.get_running_loop()
    until = loop.time() + 0.3
    while loop.time() < until:
        await tail.aidle()
        lines += lines_of(tail.poll())
        rounds += 1
    assert lines == ["second"]
    assert rounds < 60  # polling backs off to 0.1 s; a wait that returned at once would spin
    tail.close()


def test_watch_limit_reached_falls_back_to_polling(follower, tmp_path, monkeypatch):
    import errno

    from tailf import wake

    def no_space(self, path, mask):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(wake.Inotify, "add_watch", no_space)
    log = tmp_path / "app.log"
    write(log, "one\n")
    tail = follower(log)
    events = tail.start()
    assert tail.waker.kind == "polling"
    assert "inotify failed" in notices_of(events)[0]
    assert lines_of(events) == ["one"]
    os.rename(log, tmp_path / "app.log.1")
    write(log, "two\n")
    assert lines_of(tail.poll()) == ["two"]


def test_inotify_unavailable_falls_back_to_polling_with_backoff(follower, tmp_path,
                                                                monkeypatch):
    from tailf import wake

    def unavailable(self):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(wake.Inotify, "__init__", unavailable)
    log = tmp_path / "app.log"
    write(log, "")
    tail = follower(log)
    assert "inotify is unavailable" in notices_of(tail.start())[0]
    for _ in range(10):
        tail.poll()
    assert tail.timeout() == wake.POLL_MAX_SECONDS
    write(log, "x\n")
    assert lines_of(tail.poll()) == ["x"]
    assert tail.timeout() == wake.POLL_MIN_SECONDS


def test_close_releases_the_file_and_the_inotify_instance(tmp_path):
    log = tmp_path / "app.log"
    write(log, "x\n")
    before = len(os.listdir("/proc/self/fd"))
    tail = Follower(str(log), roots=[str(tmp_path)])
    tail.start()
    assert len(os.listdir("/proc/self/fd")) == before + 2
    tail.close()
    tail.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_truncation_is_seen_even_when_the_file_regrew_past_the_offset(follower, tmp_path):
    log = tmp_path / "app.log"
    write(log, "one\ntwo\n")
    tail = follower(log)
    assert lines_of(tail.start()) == ["one", "two"]
    os.truncate(log, 0)
    write(log, "a much longer line than before\n")
    events = tail.poll()
    assert any("truncated" in text for text in notices_of(events))
    assert lines_of(events) == ["a much longer line than before"]


def test_skip_ahead_counts_every_line_passed_over_and_keeps_the_tail(tmp_path):
    log = tmp_path / "lag.log"
    log.write_text("")
    follower = Follower(str(log), backlog=0, roots=[str(tmp_path)])
    follower.start(0.0)
    with open(log, "a") as handle:
        handle.write("".join(f"line {n:05d}\n" for n in range(10000)))
        handle.write("unfinished")
    skipped = follower.skip_ahead(keep=110)
    events = follower.poll(1.0)
    kept = [line for kind, value in events if kind == "lines" for line in value]
    assert skipped + len(kept) == 10000
    assert kept[-1] == "line 09999" and 5 <= len(kept) <= 11
    assert follower.lag() == 0
    follower.close()
