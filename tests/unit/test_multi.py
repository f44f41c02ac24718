"""Glob sources: MultiFollower on real temp directories."""

import errno
import os

import pytest

from tailf import wake
from tailf.multi import MultiFollower, is_glob


@pytest.fixture
def multi(tmp_path):
    """Factory for MultiFollowers confined to tmp_path, closed afterwards."""
    made = []

    def make(pattern, **options):
        options.setdefault("roots", [str(tmp_path)])
        made.append(MultiFollower(str(pattern), **options))
        return made[-1]

    yield make
    for each in made:
        each.close()


def write(path, text, mtime=None):
    """Append text; optionally set the modification time."""
    with open(path, "a") as handle:
        handle.write(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def lines_by_file(events):
    """[(path, line)] from lines events, in order."""
    return [(path, line) for kind, value, *rest in events if kind == "lines"
            for path in rest for line in value]


def of_kind(events, kind):
    """Values of the events of one kind."""
    return [event[1] for event in events if event[0] == kind]


def test_is_glob_looks_at_the_last_component():
    assert is_glob("/var/log/nginx/*.log")
    assert is_glob("/var/log/app-?.log")
    assert is_glob("/var/log/app[12].log")
    assert not is_glob("/var/log/nginx/access.log")
    with pytest.raises(ValueError):
        MultiFollower("/var/log/*/access.log", roots=["/var/log"])


def test_backlog_is_the_last_lines_of_the_newest_files_oldest_first(multi, tmp_path):
    write(tmp_path / "a.log", "a1\na2\na3\n", mtime=1000)
    write(tmp_path / "b.log", "b1\nb2\n", mtime=2000)
    write(tmp_path / "c.log", "c1\nc2\n", mtime=3000)
    write(tmp_path / "other.txt", "x\n", mtime=4000)
    tail = multi(tmp_path / "*.log", backlog=5)
    events = tail.start()
    a, b, c = (str(tmp_path / name) for name in ("a.log", "b.log", "c.log"))
    assert lines_by_file(events) == [(a, "a3"), (b, "b1"), (b, "b2"), (c, "c1"), (c, "c2")]
    assert of_kind(events, "warning") == []
    write(tmp_path / "a.log", "a4\n")
    write(tmp_path / "c.log", "c3\n")
    assert sorted(lines_by_file(tail.poll())) == [(a, "a4"), (c, "c3")]


def test_a_file_that_appears_later_joins_with_a_notice_from_its_start(multi, tmp_path):
    write(tmp_path / "a.log", "a1\n")
    tail = multi(tmp_path / "*.log", backlog=0)
    assert lines_by_file(tail.start()) == []
    write(tmp_path / "b.log", "b1\nb2\n")
    events = tail.poll(now=tail.scanned_at + 0.01)
    b = str(tmp_path / "b.log")
    assert f"{b} appeared; following it from its start" in of_kind(events, "notice")
    assert lines_by_file(events) == [(b, "b1"), (b, "b2")]


def test_a_glob_matching_nothing_waits_with_a_warning_then_recovers(multi, tmp_path):
    tail = multi(tmp_path / "logs" / "*.log")
    events = tail.start()
    assert of_kind(events, "warning") == [f"no file matches {tmp_path}/logs/*.log"]
    assert "waiting" in of_kind(events, "notice")[0]
    (tmp_path / "logs").mkdir()
    write(tmp_path / "logs" / "x.log", "hello\n")
    events = tail.poll(now=tail.scanned_at + 2)
    assert lines_by_file(events) == [(str(tmp_path / "logs" / "x.log"), "hello")]
    assert of_kind(events, "warning") == [None]


def test_at_most_max_files_are_followed_the_most_recent_with_a_notice(multi, tmp_path):
    for index in range(5):
        write(tmp_path / f"{index}.log", f"line {index}\n", mtime=1000 + index)
    tail = multi(tmp_path / "*.log", backlog=10, max_files=3)
    events = tail.start()
    assert sorted(tail.children) == [str(tmp_path / f"{i}.log") for i in (2, 3, 4)]
    assert any("TAILF_MAX_FILES=3" in text and "5 files match" in text
               for text in of_kind(events, "notice"))
    write(tmp_path / "new.log", "new\n")
    events = tail.poll(now=tail.scanned_at + 2)
    assert any("not following it" in text for text in of_kind(events, "notice"))
    assert lines_by_file(events) == []
    assert tail.poll(now=tail.scanned_at + 2) == []


def test_a_removed_file_leaves_with_a_notice_and_its_fd(multi, tmp_path):
    write(tmp_path / "a.log", "a\n")
    write(tmp_path / "b.log", "b\n")
    tail = multi(tmp_path / "*.log", rotate_wait=0)
    tail.start()
    fds = len(os.listdir("/proc/self/fd"))
    os.unlink(tmp_path / "b.log")
    events = tail.poll(now=tail.scanned_at + 2)
    assert f"{tmp_path}/b.log is gone; no longer following it" in of_kind(events, "notice")
    assert list(tail.children) == [str(tmp_path / "a.log")]
    assert len(os.listdir("/proc/self/fd")) == fds - 1
    assert of_kind(events, "warning") == []


def test_a_file_replaced_by_a_directory_or_fifo_is_skipped_with_a_notice(multi, tmp_path):
    write(tmp_path / "a.log", "a\n")
    write(tmp_path / "b.log", "b\n")
    tail = multi(tmp_path / "*.log", rotate_wait=0)
    tail.start()
    os.unlink(tmp_path / "b.log")
    os.mkdir(tmp_path / "b.log")
    os.mkfifo(tmp_path / "c.log")
    events = tail.poll(now=tail.scanned_at + 2)
    notices = of_kind(events, "notice")
    assert f"{tmp_path}/c.log matches {tmp_path}/*.log but is not a regular file; skipped" \
        in notices
    assert f"{tmp_path}/b.log is gone; no longer following it" in notices
    assert list(tail.children) == [str(tmp_path / "a.log")]
    assert tail.poll(now=tail.scanned_at + 2) == []


def test_each_file_has_its_own_rotation_grace(multi, tmp_path):
    write(tmp_path / "a.log", "")
    tail = multi(tmp_path / "*.log", backlog=0, rotate_wait=1.0)
    tail.start(now=0)
    os.rename(tmp_path / "a.log", tmp_path / "a.log.1")
    write(tmp_path / "a.log", "new\n")
    write(tmp_path / "a.log.1", "late\n")
    events = tail.poll(now=0.1)
    a = str(tmp_path / "a.log")
    assert lines_by_file(events) == [(a, "late"), (a, "new")]
    events = tail.poll(now=2.0)
    assert any("stopped reading the rotated file" in text for text in of_kind(events, "notice"))


def test_a_symlink_out_of_the_roots_is_not_read_and_warns(multi, tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "secret").write_text("SECRET\n")
    write(tmp_path / "logs" / "a.log", "a\n")
    os.symlink(tmp_path / "secret", tmp_path / "logs" / "evil.log")
    tail = multi(tmp_path / "logs" / "*.log", roots=[str(tmp_path / "logs")])
    events = tail.start()
    assert "SECRET" not in repr(events)
    [warning] = of_kind(events, "warning")
    assert "evil.log" in warning and "outside the log roots" in warning


def test_one_inotify_instance_watches_the_directory_and_each_open_file(multi, tmp_path):
    for index in range(10):
        write(tmp_path / f"{index}.log", "x\n")
    before = len(os.listdir("/proc/self/fd"))
    tail = multi(tmp_path / "*.log")
    tail.start()
    assert len(os.listdir("/proc/self/fd")) == before + 11
    assert tail.waker.watch_count() == 11
    tail.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_inotify_exhausted_gives_one_polling_warning_for_the_stream(multi, tmp_path,
                                                                   monkeypatch):
    def no_space(self, path, mask):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(wake.Inotify, "add_watch", no_space)
    for index in range(3):
        write(tmp_path / f"{index}.log", "x\n")
    events = multi(tmp_path / "*.log").start()
    [warning] = of_kind(events, "warning")
    assert warning.count("polling") == 1
    assert sum("by polling" in text for text in of_kind(events, "notice")) == 1


def test_a_glob_matching_rotated_names_reads_each_line_once(multi, tmp_path):
    write(tmp_path / "app.log", "")
    tail = multi(tmp_path / "app.log*", backlog=0, rotate_wait=0.5)
    tail.start(now=0)
    write(tmp_path / "app.log", "one\n")
    os.rename(tmp_path / "app.log", tmp_path / "app.log.1")
    write(tmp_path / "app.log.1", "late\n")
    write(tmp_path / "app.log", "two\n")
    seen = lines_by_file(tail.poll(now=0.1))
    write(tmp_path / "app.log.1", "later\n")
    seen += lines_by_file(tail.poll(now=0.2))
    seen += lines_by_file(tail.poll(now=1.0))
    seen += lines_by_file(tail.poll(now=2.5))
    write(tmp_path / "app.log.1", "after the grace\n")
    seen += lines_by_file(tail.poll(now=4.0))
    assert sorted(line for _, line in seen) == ["after the grace", "late", "later", "one",
                                                "two"]
    assert (str(tmp_path / "app.log.1"), "after the grace") in seen


def test_positions_let_a_later_follower_go_on_where_each_file_was(multi, tmp_path):
    a, b, c = tmp_path / "a.log", tmp_path / "b.log", tmp_path / "c.log"
    write(a, "a1\n")
    write(b, "b1\n")
    write(c, "c1\n")
    first = multi(tmp_path / "*.log", backlog=0)
    first.start()
    write(a, "a2\npartial")
    write(b, "b2\n")
    assert sorted(line for _, line in lines_by_file(first.poll())) == ["a2", "b2"]
    place = first.position()
    assert set(place) == {str(a), str(b), str(c)}
    assert place[str(a)][2] == len("a1\na2\n")  # the unfinished line is not handed over yet
    first.close()
    write(a, " line\na3\n")
    write(b, "b3\n")
    os.rename(c, tmp_path / "c.log.1")  # replaced while nobody followed it
    write(c, "new c1\n")
    later = multi(tmp_path / "*.log", backlog=0, positions=place)
    events = later.start()
    assert sorted(lines_by_file(events)) == [(str(a), "a3"), (str(a), "partial line"),
                                             (str(b), "b3"), (str(c), "new c1")]
    assert any("is no longer the file read before" in text for text in of_kind(events, "notice"))
