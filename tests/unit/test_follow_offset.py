"""Starting at a byte offset of a given file (history search with follow=1)."""

import os


def lines_of(events):
    """All lines in a list of events."""
    return [line for kind, value in events if kind == "lines" for line in value]


def scanned(path):
    """What a search would record: the file identity and the offset it scanned up to."""
    info = os.stat(path)
    return (info.st_dev, info.st_ino, info.st_size)


def test_the_same_file_continues_exactly_at_the_offset_without_gap_or_repeat(follower,
                                                                            tmp_path):
    log = tmp_path / "app.log"
    log.write_text("searched 1\nsearched 2\n")
    where = scanned(log)
    with open(log, "a") as handle:
        handle.write("after scan 1\n")
    tail = follower(log, backlog=50, start_at=where)
    events = tail.start()
    assert lines_of(events) == ["after scan 1"]
    assert not [kind for kind, _ in events if kind == "notice"]
    with open(log, "a") as handle:
        handle.write("after scan 2\n")
    assert lines_of(tail.poll()) == ["after scan 2"]


def test_another_file_at_the_name_is_read_from_its_start_with_a_notice(follower, tmp_path):
    log = tmp_path / "app.log"
    log.write_text("searched\n")
    where = scanned(log)
    os.rename(log, tmp_path / "app.log.1")
    log.write_text("fresh 1\nfresh 2\n")
    events = follower(log, start_at=where).start()
    assert lines_of(events) == ["fresh 1", "fresh 2"]
    assert "no longer the file that was searched" in events[0][1]


def test_a_file_truncated_below_the_offset_is_read_from_its_start(follower, tmp_path):
    log = tmp_path / "app.log"
    log.write_text("searched a long way\n" * 10)
    where = scanned(log)
    log.write_text("short\n")
    events = follower(log, start_at=where).start()
    assert lines_of(events) == ["short"]
    assert "reading it from its start" in events[0][1]


def test_from_start_reads_the_whole_file_without_a_backlog_limit(follower, tmp_path):
    log = tmp_path / "app.log"
    log.write_text("".join(f"{i}\n" for i in range(100)))
    assert len(lines_of(follower(log, backlog=3, from_start=True).start())) == 100
