"""A pool process is warmed before its first stream: its database connection is open."""

import os
from pathlib import Path

import pytest

from tests.harness import started_installation
from tests.processes import pool_children

pytestmark = pytest.mark.sqlite_only  # the open database file is what the test looks for


def holds(pid, path):
    """Whether process `pid` has `path` open."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
        except OSError:
            continue
    return False


def test_every_pool_process_opens_the_database_before_its_first_task(tmp_path):
    with started_installation(tmp_path, workers=[{"concurrency": 3}]) as harness:
        assert harness.wait_for(lambda: len(pool_children(harness)) == 3, 10)
        database = harness.sqlite_path.resolve()
        assert harness.wait_for(
            lambda: all(holds(pid, database) for pid in pool_children(harness)), 10), \
            "a pool process has not opened the database"
        assert "not warmed" not in Path(harness.worker.log_path).read_text()
