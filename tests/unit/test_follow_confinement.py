"""The Follower never reads a file outside the log roots, whatever the log folder's writer does."""

import os
import threading
import time

import pytest

from tailf import roots
from tailf.follow import Follower


@pytest.fixture
def tree(tmp_path):
    """A log root and, outside it, a secret file."""
    root = tmp_path / "logs"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("SECRET shadow line\n" * 50)
    return root, outside / "secret"


@pytest.fixture
def follower():
    """Factory for Followers that are closed afterwards."""
    made = []

    def make(path, root, **options):
        made.append(Follower(str(path), roots=[str(root)], **options))
        return made[-1]

    yield make
    for each in made:
        each.close()


def lines_of(events):
    """All lines in a list of events."""
    return [line for kind, value in events if kind == "lines" for line in value]


def of_kind(events, kind):
    """The values of the events of one kind."""
    return [value for each, value in events if each == kind]


def test_symlink_swap_during_a_running_follow_reads_nothing_of_the_target(tree, follower):
    root, secret = tree
    log = root / "app.log"
    log.write_text("one\n")
    tail = follower(log, root, rotate_wait=0)
    assert lines_of(tail.start()) == ["one"]
    with open(log, "a") as handle:
        handle.write("two\n")
    os.rename(log, root / "app.log.1")
    os.symlink(secret, log)
    events = tail.poll()
    assert lines_of(events) == ["two"]
    assert "SECRET" not in repr(events)
    assert any("outside the log roots" in text for text in of_kind(events, "notice"))
    [warning] = of_kind(events, "warning")
    assert "outside the log roots" in warning
    assert tail.poll() == []
    os.unlink(log)
    log.write_text("good again\n")
    events = tail.poll()
    assert lines_of(events) == ["good again"]
    assert of_kind(events, "warning") == [None]


def test_a_link_to_proc_self_environ_streams_nothing(tree, follower):
    root, _ = tree
    os.symlink("/proc/self/environ", root / "env.log")
    events = follower(root / "env.log", "/").start()
    assert lines_of(events) == []
    assert "under /proc, /sys or /dev" in of_kind(events, "notice")[0]
    assert of_kind(events, "warning")[0].startswith(f"{root}/env.log")


def test_dot_dot_in_the_followed_path_cannot_leave_the_root(tree, follower):
    root, _ = tree
    events = follower(f"{root}/../outside/secret", root).start()
    assert lines_of(events) == []
    assert "outside the log roots" in of_kind(events, "warning")[0]


def test_a_symlink_flipping_in_a_tight_loop_never_leaks_a_byte(tree, follower):
    root, secret = tree
    safe = root / "safe.log"
    safe.write_text("")
    log = root / "app.log"
    os.symlink(safe, log)
    stop = threading.Event()
    flips = [0]

    def flip():
        targets = [str(secret), str(safe)]
        while not stop.is_set():
            temporary = root / "flip.tmp"
            os.symlink(targets[flips[0] % 2], temporary)
            os.rename(temporary, log)
            flips[0] += 1

    tail = follower(log, root, rotate_wait=0, backlog=5)
    seen = lines_of(tail.start())
    flipper = threading.Thread(target=flip)
    flipper.start()
    written = 0
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            with open(safe, "a") as handle:
                handle.write(f"safe {written}\n")
            written += 1
            events = tail.poll()
            seen += lines_of(events)
            assert "SECRET" not in repr(events)
            try:
                fd = roots.open_confined(str(log), [str(root)])
            except roots.OutsideRoots:
                continue
            data = os.pread(fd, 1 << 16, 0)
            os.close(fd)
            assert b"SECRET" not in data
    finally:
        stop.set()
        flipper.join()
    assert flips[0] > 100
    assert all(line.startswith("safe ") for line in seen)
    assert seen  # the safe file was followed in between
