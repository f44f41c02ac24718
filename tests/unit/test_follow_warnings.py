"""The engine's ("warning", str) / ("warning", None) events: degraded and recovered, on changes."""

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tailf import wake


def warnings_of(events):
    """The values of the warning events."""
    return [value for kind, value in events if kind == "warning"]


def test_a_missing_file_warns_once_and_recovers_once(follower, tmp_path):
    log = tmp_path / "later.log"
    tail = follower(log)
    assert warnings_of(tail.start()) == [f"{log} does not exist"]
    assert warnings_of(tail.poll()) == []
    assert warnings_of(tail.poll()) == []
    log.write_text("here\n")
    events = tail.poll()
    assert warnings_of(events) == [None]
    assert ("lines", ["here"]) in events
    assert warnings_of(tail.poll()) == []


def test_a_healthy_start_has_no_warning_event(follower, tmp_path):
    log = tmp_path / "app.log"
    log.write_text("x\n")
    assert warnings_of(follower(log).start()) == []


def test_a_file_removed_while_followed_warns_and_its_return_clears_it(follower, tmp_path):
    log = tmp_path / "app.log"
    log.write_text("x\n")
    tail = follower(log, rotate_wait=0)
    tail.start()
    os.unlink(log)
    assert warnings_of(tail.poll()) == [f"{log} does not exist"]
    log.write_text("y\n")
    assert warnings_of(tail.poll()) == [None]


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_directory_or_fifo_warns_not_a_regular_file_without_blocking(follower, tmp_path,
                                                                       kind):
    path = tmp_path / "app.log"
    os.mkdir(path) if kind == "directory" else os.mkfifo(path)
    events = follower(path).start()
    assert warnings_of(events) == [f"{path} is not a regular file"]
    assert not any(kind == "lines" for kind, _ in events)


def test_outside_the_roots_warns(follower, tmp_path):
    os.symlink("/etc/hostname", tmp_path / "host.log")
    [warning] = warnings_of(follower(tmp_path / "host.log").start())
    assert "outside the log roots" in warning


def test_permission_denied_as_another_uid_warns_then_recovers():
    folder = tempfile.mkdtemp(prefix="tailf-warn-")
    try:
        os.chmod(folder, 0o755)
        path = os.path.join(folder, "secret.log")
        with open(path, "w") as handle:
            handle.write("now readable\n")
        os.chmod(path, 0o600)
        project = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        code = ("import json, sys; sys.path.insert(0, sys.argv[1])\n"
                "from tailf.follow import Follower\n"
                "tail = Follower(sys.argv[2], roots=[sys.argv[3]])\n"
                "print(json.dumps(tail.start()), flush=True)\n"
                "sys.stdin.readline()\n"
                "print(json.dumps(tail.poll()), flush=True)\n")
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                   sys.executable, "-c", code, project, path, folder]
        try:
            child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        except (FileNotFoundError, PermissionError):
            pytest.skip("cannot run code as another uid here")
        try:
            first = json.loads(child.stdout.readline() or "null")
            assert first is not None, child.stderr.read()
            assert [value for kind, value in first if kind == "warning"] == [
                f"{path} cannot be read (permission denied)"]
            assert not any(kind == "lines" for kind, _ in first)
            os.chmod(path, 0o644)
            child.stdin.write("\n")
            child.stdin.flush()
            second = json.loads(child.stdout.readline())
            assert ["warning", None] in second
            assert ["lines", ["now readable"]] in second
        finally:
            child.kill()
            child.wait()
    finally:
        subprocess.run(["rm", "-rf", folder], check=True)


def test_inotify_exhausted_warns_polling_and_clears_when_it_works_again(follower, tmp_path,
                                                                       monkeypatch):
    real_add = wake.Inotify.add_watch

    def no_space(self, path, mask):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(wake.Inotify, "add_watch", no_space)
    log = tmp_path / "app.log"
    log.write_text("one\n")
    tail = follower(log)
    [warning] = warnings_of(tail.start())
    assert "inotify failed" in warning and "polling" in warning
    assert tail.waker.kind == "polling"
    assert warnings_of(tail.poll()) == []
    monkeypatch.setattr(wake.Inotify, "add_watch", real_add)
    assert tail.waker.recover()
    events = tail.poll()
    assert warnings_of(events) == [None]
    assert tail.waker.kind == "inotify" and tail.waker.watch_count() == 2
    with open(log, "a") as handle:
        handle.write("two\n")
    assert tail.waker.drain()


def test_a_missing_file_and_polling_are_both_named(follower, tmp_path, monkeypatch):
    def unavailable(self):
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(wake.Inotify, "__init__", unavailable)
    [warning] = warnings_of(follower(tmp_path / "none.log").start())
    assert "does not exist" in warning and "inotify is unavailable" in warning


def test_a_user_out_of_inotify_instances_is_told_what_to_raise():
    """Under a uid of its own (the limit is per user), the process takes every inotify instance
    the user may have, then follows a file: it polls, and says which sysctl to raise."""
    folder = Path(tempfile.mkdtemp(prefix="tailf-inotify-"))
    os.chmod(folder, 0o755)
    path = folder / "app.log"
    path.write_text("")
    os.chmod(path, 0o644)
    project = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = ("import errno, json, sys; sys.path.insert(0, sys.argv[1])\n"
            "from tailf import wake\n"
            "from tailf.follow import Follower\n"
            "held = []\n"
            "while True:\n"
            "    try:\n"
            "        held.append(wake.Inotify())\n"
            "    except OSError as exc:\n"
            "        assert exc.errno == errno.EMFILE, exc\n"
            "        break\n"
            "tail = Follower(sys.argv[2], roots=[sys.argv[3]])\n"
            "print(json.dumps([len(held), tail.start()]), flush=True)\n")
    command = ["setpriv", "--reuid=43219", "--regid=43219", "--clear-groups",
               sys.executable, "-c", code, project, str(path), str(folder)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (FileNotFoundError, PermissionError):
        pytest.skip("cannot run code as another uid here")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert result.returncode == 0, result.stderr[-2000:]
    held, events = json.loads(result.stdout.strip().splitlines()[-1])
    with open("/proc/sys/fs/inotify/max_user_instances") as handle:
        limit = int(handle.read())
    assert held == limit
    assert "permission denied" not in json.dumps(events)  # it reads the file
    notices = [value for kind, value in events if kind == "notice"]
    assert any(f"this user has all {limit} inotify instances in use (one per stream); "
               "raise fs.inotify.max_user_instances on the worker host" in str(text)
               for text in notices), events
