"""`rotated_siblings`: which rotated files of a log are searched, and in which order."""

import gzip
import os

from tailf.rotations import rotated_siblings


def touch(path, data=b"x\n"):
    """Create a file with some bytes."""
    with open(path, "wb") as handle:
        handle.write(data)


def names(paths):
    """Base names of paths, for short assertions."""
    return [os.path.basename(p) for p in paths]


def test_numbered_siblings_come_oldest_first_then_the_live_file(tmp_path):
    live = tmp_path / "app.log"
    touch(live)
    for name in ["app.log.1", "app.log.2.gz", "app.log.10.gz", "app.log.3"]:
        touch(tmp_path / name, gzip.compress(b"x\n"))
    assert names(rotated_siblings(str(live))) == [
        "app.log.10.gz", "app.log.3", "app.log.2.gz", "app.log.1", "app.log"]


def test_dated_siblings_come_by_date_before_numbered_ones(tmp_path):
    for name in ["app.log-20240103.gz", "app.log-20231231", "app.log-20240102", "app.log.1"]:
        touch(tmp_path / name)
    assert names(rotated_siblings(str(tmp_path / "app.log"))) == [
        "app.log-20231231", "app.log-20240102", "app.log-20240103.gz", "app.log.1", "app.log"]


def test_only_regular_files_with_exact_rotated_names_are_listed(tmp_path):
    live = tmp_path / "app.log"
    touch(live)
    os.mkdir(tmp_path / "app.log.1")
    os.mkfifo(tmp_path / "app.log.2")
    os.symlink(tmp_path / "missing", tmp_path / "app.log.3")
    touch(tmp_path / "target")
    os.symlink(tmp_path / "target", tmp_path / "app.log.4")
    for name in ["app.log.bak", "app.log.5.tmp", "xapp.log.6", "app.log.-1", "app.log-2024",
                 "app.log.1.gz.1", "app_log.7"]:
        touch(tmp_path / name)
    assert names(rotated_siblings(str(live))) == ["app.log.4", "app.log"]


def test_while_a_sibling_is_being_compressed_only_the_plain_copy_is_listed(tmp_path):
    touch(tmp_path / "app.log.2")
    touch(tmp_path / "app.log.2.gz", b"\x1f\x8b")
    touch(tmp_path / "app.log.1.gz", gzip.compress(b"x\n"))
    assert names(rotated_siblings(str(tmp_path / "app.log"))) == [
        "app.log.2", "app.log.1.gz", "app.log"]


def test_names_with_regex_characters_are_taken_literally(tmp_path):
    touch(tmp_path / "a+b(1).log.1")
    touch(tmp_path / "aab(1).log.2")
    assert names(rotated_siblings(str(tmp_path / "a+b(1).log"))) == [
        "a+b(1).log.1", "a+b(1).log"]


def test_a_missing_folder_gives_just_the_live_path(tmp_path):
    path = str(tmp_path / "nowhere" / "app.log")
    assert rotated_siblings(path) == [path]
