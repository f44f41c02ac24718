"""Rotation grace: the renamed file keeps being read for rotate_wait seconds, then let go."""

import os
import threading
import time

import pytest

from tailf.follow import Follower


def append(path, text):
    """Append text to a file."""
    with open(path, "a") as handle:
        handle.write(text)


def lines_of(events):
    """All lines in a list of events."""
    return [line for kind, value in events if kind == "lines" for line in value]


def notices_of(events):
    """All notice texts."""
    return [value for kind, value in events if kind == "notice"]


def fd_count():
    """Open descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


def test_lines_written_to_the_renamed_file_for_two_seconds_are_all_delivered(follower,
                                                                            tmp_path):
    log, old = tmp_path / "app.log", tmp_path / "app.log.1"
    append(log, "")
    tail = follower(log, backlog=0)
    tail.start()
    late = [f"late {i}" for i in range(125)]
    fresh = [f"new {i}" for i in range(125)]

    def daemon():
        handle = open(log, "a", buffering=1)  # the daemon's descriptor survives the rename
        handle.write("before\n")
        os.rename(log, old)
        with open(log, "a", buffering=1) as new:
            for late_line, new_line in zip(late, fresh, strict=False):
                handle.write(late_line + "\n")
                new.write(new_line + "\n")
                time.sleep(2.0 / 125)
        handle.close()

    writer = threading.Thread(target=daemon)
    writer.start()
    seen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(seen) < 251:
        tail.idle()
        seen += lines_of(tail.poll())
    writer.join()
    assert sorted(seen) == sorted(["before"] + late + fresh)
    assert [line for line in seen if line.startswith("late")] == late
    assert [line for line in seen if line.startswith("new")] == fresh


def test_old_file_is_let_go_when_quiet_with_a_notice_and_no_fd_or_watch_left(follower,
                                                                            tmp_path):
    log = tmp_path / "app.log"
    append(log, "a\n")
    tail = follower(log, rotate_wait=1.0)
    tail.start(now=0)
    fds, watches = fd_count(), tail.waker.watch_count()
    os.rename(log, tmp_path / "app.log.1")
    append(log, "b\n")
    assert lines_of(tail.poll(now=0.1)) == ["b"]
    assert fd_count() == fds + 1 and tail.waker.watch_count() == watches + 1
    append(tmp_path / "app.log.1", "late\n")
    assert tail.waker.drain()  # a write to the old file wakes the follower
    assert lines_of(tail.collect(now=0.5)) == ["late"]
    assert tail.timeout(now=0.6) == pytest.approx(0.9)
    assert notices_of(tail.poll(now=1.4)) == []
    events = tail.poll(now=1.5)
    assert notices_of(events) == [f"{log}: stopped reading the rotated file (quiet for 1 s)"]
    assert fd_count() == fds and tail.waker.watch_count() == watches
    append(tmp_path / "app.log.1", "too late\n")
    assert lines_of(tail.poll(now=2)) == []


def test_a_rotated_file_written_all_the_time_is_let_go_after_ten_times_the_wait(follower,
                                                                               tmp_path):
    log = tmp_path / "app.log"
    append(log, "")
    tail = follower(log, rotate_wait=1.0)
    tail.start(now=0)
    os.rename(log, tmp_path / "app.log.1")
    append(log, "")
    tail.poll(now=0)
    delivered = []
    for step in range(1, 12):
        append(tmp_path / "app.log.1", f"tick {step}\n")
        events = tail.poll(now=step)
        delivered += lines_of(events)
        if notices_of(events):
            break
    assert notices_of(events) == [f"{log}: stopped reading the rotated file (after the "
                                  "10 s limit)"]
    assert delivered == [f"tick {step}" for step in range(1, 11)]


def test_two_hundred_rotations_with_late_writes_lose_nothing_and_leak_nothing(follower,
                                                                             tmp_path):
    log = tmp_path / "app.log"
    append(log, "")
    tail = follower(log, backlog=0, rotate_wait=0.05)
    now = 0.0
    tail.start(now=now)
    fds, watches = fd_count(), tail.waker.watch_count()
    expected, seen = [], []
    for rotation in range(200):
        append(log, f"r{rotation} a\n")
        os.rename(log, tmp_path / f"app.log.{rotation}")
        append(log, f"r{rotation + 1} first\n")
        append(tmp_path / f"app.log.{rotation}", f"r{rotation} late\n")
        expected += [f"r{rotation} a", f"r{rotation} late", f"r{rotation + 1} first"]
        now += 0.01
        seen += lines_of(tail.poll(now=now))
        now += 0.01
        append(tmp_path / f"app.log.{rotation}", f"r{rotation} later\n")
        expected.append(f"r{rotation} later")
        seen += lines_of(tail.poll(now=now))
    assert len(tail.retired) <= 6
    seen += lines_of(tail.poll(now=now + 1))
    assert sorted(seen) == sorted(expected) and len(seen) == len(expected)
    for rotation in range(200):
        mine = [line for line in seen if line.split()[0] == f"r{rotation}"]
        assert mine == [line for line in expected if line.split()[0] == f"r{rotation}"]
    assert not tail.retired
    assert fd_count() == fds and tail.waker.watch_count() == watches


def test_close_during_the_grace_releases_every_file(tmp_path):
    log = tmp_path / "app.log"
    append(log, "")
    fds = fd_count()
    tail = Follower(str(log), roots=[str(tmp_path)])
    tail.start()
    for rotation in range(3):
        os.rename(log, tmp_path / f"app.log.{rotation}")
        append(log, "")
        tail.poll()
    assert len(tail.retired) == 3
    tail.close()
    assert fd_count() == fds


def test_rotated_files_in_their_grace_are_capped_the_oldest_read_to_its_end_first(follower,
                                                                                  tmp_path):
    from tailf.follow import ROTATED_MAX

    log = tmp_path / "app.log"
    append(log, "")
    tail = follower(log, backlog=0, rotate_wait=5)
    tail.start()
    fds, watches = fd_count(), tail.waker.watch_count()
    seen, most_fds, most_watches = [], 0, 0
    for n in range(200):  # 200 renames in well under the 5 s grace
        append(log, f"line {n}\n")
        os.rename(log, tmp_path / f"app.log.{n}")
        append(tmp_path / f"app.log.{n}", f"late {n}\n")  # the daemon has not reopened yet
        if n >= ROTATED_MAX:  # and one written to a file already in its grace
            append(tmp_path / f"app.log.{n - ROTATED_MAX + 1}", f"later {n}\n")
        append(log, "")
        events = tail.poll()
        seen += lines_of(events)
        most_fds = max(most_fds, fd_count() - fds)
        most_watches = max(most_watches, tail.waker.watch_count() - watches)
    assert most_fds <= ROTATED_MAX and most_watches <= ROTATED_MAX
    assert len(tail.retired) == ROTATED_MAX
    expected = [f"line {n}" for n in range(200)] + [f"late {n}" for n in range(200)] + [
        f"later {n}" for n in range(ROTATED_MAX, 200)]
    assert sorted(seen) == sorted(expected) and len(seen) == len(expected)
    assert [f"line {n}" for n in range(200)] == [line for line in seen
                                                if line.startswith("line ")]
