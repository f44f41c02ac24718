"""Which files a history search reads (`tailf.history.files_of`): one listing of the folder,
at most TAILF_MAX_FILES glob members, and no crash when a file is rotated away meanwhile."""

import os
import threading
import time

from tailf import history


def touch(path, data=b"x\n", mtime=None):
    """Create a file with some bytes (and a modification time)."""
    with open(path, "wb") as handle:
        handle.write(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def test_a_glob_member_rotated_away_while_listing_is_skipped_not_a_crash(tmp_path):
    for number in range(200):
        touch(tmp_path / f"f{number}.log")
    stop = threading.Event()

    def rotate():
        while not stop.is_set():
            for number in range(200):
                os.rename(tmp_path / f"f{number}.log", tmp_path / f"f{number}.log.1")
                os.rename(tmp_path / f"f{number}.log.1", tmp_path / f"f{number}.log")

    rotator = threading.Thread(target=rotate)
    rotator.start()
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            files, _ = history.files_of(str(tmp_path / "*.log"), rotated=False, max_files=500)
            assert all(name.endswith(".log") for name in files)
            history.files_of(str(tmp_path / "*.log"), rotated=True, max_files=500)
    finally:
        stop.set()
        rotator.join()


def test_a_glob_search_lists_its_folder_once_and_keeps_the_newest_members(tmp_path,
                                                                           monkeypatch):
    for number in range(300):
        touch(tmp_path / f"f{number:03}.log", mtime=1_000_000 + number)
        touch(tmp_path / f"f{number:03}.log.1", mtime=1_000_000 + number)
    listed = []
    real_scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda folder=".": listed.append(folder)
                        or real_scandir(folder))
    files, notices = history.files_of(str(tmp_path / "*.log"), rotated=True, max_files=64)
    assert len(listed) <= 2  # the glob's listing and the siblings' listing
    assert [os.path.basename(name) for name in files[:4]] == [
        "f236.log.1", "f236.log", "f237.log.1", "f237.log"]
    assert len(files) == 128 and os.path.basename(files[-1]) == "f299.log"
    assert notices == ["300 files match " + str(tmp_path / "*.log") + "; searching the 64 "
                       "most recently written (TAILF_MAX_FILES=64), 236 left out"]
    assert notices[0].code == "search_glob_limit"
