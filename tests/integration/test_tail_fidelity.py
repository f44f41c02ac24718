"""Tail fidelity on the real stack (issue 13): rotations with late writers, long lines,
every degraded state set and cleared, glob sources and their file limit.

The installation has a second worker running as uid 65534 (nobody) on its own queue, so a
file that is unreadable (chmod 000 does not stop root) can be tailed by someone it stops.
"""

import asyncio
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.harness import Harness

pytestmark = pytest.mark.sqlite_only  # engine tests: see tests/integration/conftest.py

NOBODY = 65534
NOBODY_QUEUE = "tailf-nobody"
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def can_run_as_nobody():
    """Return why a process cannot be run as uid 65534 here, or '' when it can."""
    if os.geteuid() != 0:
        return "the tests do not run as root, so they cannot switch to another uid"
    if shutil.which("setpriv") is None:
        return "setpriv is not installed"
    probe = subprocess.run([*AS_NOBODY, sys.executable, "-c", "import os; print(os.getuid())"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != str(NOBODY):
        return f"setpriv cannot switch to uid {NOBODY}: {probe.stderr.strip()}"
    return ""


def start_worker_as_nobody(harness, name="nobody"):
    """Start a prefork worker as uid 65534 on its own queue; wait until it answers."""
    return harness.start_worker(name, queues=NOBODY_QUEUE, concurrency=2, prefix=AS_NOBODY,
                                HOME=str(harness.workdir))


@pytest.fixture(scope="module")
def system():
    """An installation (TAILF_MAX_FILES=5, TAILF_ROTATE_WAIT=2), a root worker, a nobody one.

    The work folder is under /tmp (pytest's own is 0700) and open to all: the nobody worker
    reads the SQLite database and tails files there.
    """
    workdir = Path(tempfile.mkdtemp(prefix="tailboard-fidelity-"))
    os.chmod(workdir, 0o777)
    harness = Harness(workdir, TAILF_MAX_FILES="5", TAILF_ROTATE_WAIT="2")
    try:
        if (workdir / "db.sqlite3").exists():  # on PostgreSQL the nobody worker uses TCP
            os.chmod(workdir / "db.sqlite3", 0o666)
        harness.admin_password = harness.create_user("admin", superuser=True)
        harness.worker = harness.start_worker(concurrency=4)
        harness.nobody_problem = can_run_as_nobody()
        if not harness.nobody_problem:
            harness.nobody = start_worker_as_nobody(harness)
        harness.web = harness.start_daphne()
        harness.admin_cookie = harness.login(harness.web.base_url, "admin",
                                             harness.admin_password)
        yield harness
    finally:
        harness.close()
        shutil.rmtree(workdir, ignore_errors=True)


def append(path, *lines):
    """Append whole lines to a file."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


def lines_of(messages):
    """The lines of the `lines` messages, in order."""
    return [line for m in messages if m["type"] == "lines" for line in m["lines"]]


def notices_of(messages):
    """The texts of the `notice` messages, in order."""
    return [m["message"] for m in messages if m["type"] == "notice"]


def has_line(line):
    """A predicate: a `lines` message holding this line."""
    return lambda m: m["type"] == "lines" and line in m["lines"]


async def arrived(client, start, wanted, timeout=10):
    """Wait until every wanted line is among the lines received since message `start`."""
    missing = set(wanted) - set(lines_of(client.messages[start:]))
    deadline = time.monotonic() + timeout
    while missing:
        try:
            message = await client.until(lambda m: m["type"] == "lines",
                                         max(0.01, deadline - time.monotonic()))
        except (TimeoutError, asyncio.TimeoutError):
            raise AssertionError(f"{len(missing)} lines never arrived, e.g. "
                                 f"{sorted(missing)[:5]}") from None
        missing -= set(message["lines"])


def warned(m):
    """Whether a message is a running status that carries a warning."""
    return m["type"] == "status" and m["state"] == "running" and bool(m.get("warning"))


def recovered(m):
    """Whether a message is a running status saying the warning is over."""
    return m["type"] == "status" and m["state"] == "running" and "warning" in m \
        and m["warning"] is None


def assert_each_once_in_order(delivered, expected_per_file):
    """Every expected line arrived exactly once, and each file's lines in their order."""
    counts = collections.Counter(delivered)
    repeated = {line: n for line, n in counts.items() if n > 1}
    assert not repeated, f"delivered more than once: {list(repeated.items())[:10]}"
    wanted = [line for lines in expected_per_file for line in lines]
    missing = [line for line in wanted if line not in counts]
    assert not missing, f"{len(missing)} lines lost, e.g. {missing[:10]}"
    assert set(counts) == set(wanted), f"unexpected lines: {sorted(set(counts) - set(wanted))[:10]}"
    for lines in expected_per_file:
        members = set(lines)
        assert [line for line in delivered if line in members] == lines


def late_daemon(log, rotated, late_seconds=2.0, step=0.005):
    """logrotate `create` with a daemon that reopens its log only `late_seconds` later.

    Returns (lines of the old file, lines of the new file), each in file order.
    """
    old_lines, new_lines = [], []
    daemon = open(log, "a", encoding="utf-8", buffering=1)
    for number in range(50):
        old_lines.append(f"old {number}")
        daemon.write(old_lines[-1] + "\n")
    os.rename(log, rotated)
    Path(log).touch()  # `create`: a new empty log under the old name
    other = open(log, "a", encoding="utf-8", buffering=1)  # another writer, already reopened
    deadline = time.monotonic() + late_seconds
    number = 0
    while time.monotonic() < deadline:
        old_lines.append(f"late {number}")
        daemon.write(old_lines[-1] + "\n")
        new_lines.append(f"new {number}")
        other.write(new_lines[-1] + "\n")
        number += 1
        time.sleep(step)
    daemon.close()
    daemon = open(log, "a", encoding="utf-8", buffering=1)  # the daemon reopens at last
    for number in range(20):
        new_lines.append(f"reopened {number}")
        daemon.write(new_lines[-1] + "\n")
    daemon.close()
    other.close()
    return old_lines, new_lines


async def test_create_rotation_with_a_daemon_reopening_late_delivers_every_line_once(
        system, stream, tmp_path):
    log = tmp_path / "daemon.log"
    log.touch()
    source = system.add_log("late-daemon", log, "--rotate-wait", "4")
    async with stream(f"/ws/tailf/{source}/?lines=0") as client:
        await client.status("running")
        start = len(client.messages)
        (old_lines, new_lines), _ = await asyncio.gather(
            asyncio.to_thread(late_daemon, log, tmp_path / "daemon.log.1"),
            client.until(has_line("reopened 19"), timeout=20))
        await arrived(client, start, [old_lines[-1], new_lines[-1]], timeout=20)
        append(log, "sentinel")
        await client.until(has_line("sentinel"), timeout=10)
        delivered = lines_of(client.messages[start:])
        assert delivered.pop() == "sentinel"
        assert_each_once_in_order(delivered, [old_lines, new_lines])
        assert len(old_lines) > 150  # the late writer really wrote for the whole time
        # logrotate `create` renames, then creates: a poll between the two sees the name
        # missing ("removed or renamed") instead of "rotated"; either tells the viewer.
        assert any("rotated" in text or "renamed" in text
                   for text in notices_of(client.messages))


async def test_two_hundred_rotations_with_late_writes_lose_and_repeat_nothing(
        system, stream, tmp_path):
    log = tmp_path / "loop.log"
    log.touch()
    source = system.add_log("rotation-loop", log, "--rotate-wait", "1")
    rounds = 200
    per_file = [[] for _ in range(rounds + 1)]
    async with stream(f"/ws/tailf/{source}/?lines=0") as client:
        await client.status("running")
        start = len(client.messages)
        current = open(log, "a", encoding="utf-8", buffering=1)
        previous = None
        started = time.monotonic()
        for number in range(rounds + 1):
            per_file[number].append(f"r{number} first")
            current.write(per_file[number][-1] + "\n")
            await client.until(has_line(f"r{number} first"), timeout=10)
            if previous is not None:  # the follower has moved on: the old file is in its grace
                per_file[number - 1].append(f"r{number - 1} late")
                previous.write(per_file[number - 1][-1] + "\n")
                previous.close()
            if number == rounds:
                break
            os.rename(log, tmp_path / f"loop.log.{number % 3 + 1}")
            previous, current = current, open(log, "a", encoding="utf-8", buffering=1)
            per_file[number].append(f"r{number} after rename")
            previous.write(per_file[number][-1] + "\n")
        current.close()
        elapsed = time.monotonic() - started
        await arrived(client, start, [f"r{rounds - 1} late"])
        append(log, "sentinel")
        await client.until(has_line("sentinel"), timeout=10)
        delivered = lines_of(client.messages[start:])
        assert delivered.pop() == "sentinel"
        assert_each_once_in_order(delivered, per_file)
        print(f"{rounds} rotations in {elapsed:.1f} s")


async def test_backlog_ending_in_a_huge_line_counts_it_as_one_cut_line(system, stream, tmp_path):
    log = tmp_path / "long.log"
    log.write_bytes(b"early 1\nearly 2\n" + b"L" * 300_000 + b"\nt1\nt2\n")
    source = system.add_log("long-backlog", log)
    async with stream(f"/ws/tailf/{source}/?lines=3") as client:
        await client.status("running")
        backlog = lines_of(client.messages)
        assert len(backlog) == 3
        long, first, second = backlog
        assert long.startswith("L" * 65_536) and long[65_536:].startswith(" [… line cut")
        assert (first, second) == ("t1", "t2")
        append(log, "t3")
        await client.until(has_line("t3"))
        assert lines_of(client.messages)[3:] == ["t3"]


async def test_missing_file_warns_until_it_appears(system, stream, tmp_path):
    log = tmp_path / "later.log"
    source = system.add_log("warn-missing", log)
    async with stream(f"/ws/tailf/{source}/?lines=5") as client:
        running = await client.status("running")
        assert "does not exist" in running["warning"]
        append(log, "here now")
        ok = await client.until(recovered)
        assert ok["message"]
        await arrived(client, 0, ["here now"])


async def test_directory_at_the_path_warns_until_a_file_replaces_it(system, stream, tmp_path):
    log = tmp_path / "dir.log"
    log.mkdir()
    source = system.add_log("warn-directory", log)
    async with stream(f"/ws/tailf/{source}/?lines=5") as client:
        running = await client.status("running")
        assert "not a regular file" in running["warning"]
        log.rmdir()
        append(log, "a file at last")
        await client.until(recovered)
        await arrived(client, 0, ["a file at last"])


async def test_unreadable_file_warns_until_it_is_readable_to_the_worker(system, stream):
    if system.nobody_problem:
        pytest.skip(f"no worker as another uid: {system.nobody_problem}")
    folder = Path(tempfile.mkdtemp(dir=system.workdir))
    os.chmod(folder, 0o755)
    log = folder / "secret.log"
    append(log, "private 1")
    os.chmod(log, 0o000)
    source = system.add_log("warn-unreadable", log, "--queue", NOBODY_QUEUE)
    async with stream(f"/ws/tailf/{source}/?lines=5") as client:
        queued = await client.status("queued")
        running = await client.status("running")
        assert running["worker"] == system.nobody.hostname, queued
        assert "permission denied" in running["warning"]
        assert lines_of(client.messages) == []
        os.chmod(log, 0o644)
        await client.until(recovered)
        append(log, "public 2")
        await client.until(has_line("public 2"))
        assert "private 1" in lines_of(client.messages)  # read from its start when it appeared


async def test_symlink_leaving_the_log_roots_warns_and_is_followed_again_when_back(
        system, stream, tmp_path):
    inside_a, inside_b = tmp_path / "a.txt", tmp_path / "b.txt"
    append(inside_a, "inside a")
    link = tmp_path / "link.log"
    link.symlink_to(inside_a)
    source = system.add_log("warn-outside", link)
    async with stream(f"/ws/tailf/{source}/?lines=5") as client:
        running = await client.status("running")
        assert "warning" not in running
        assert lines_of(client.messages) == ["inside a"]
        swap = tmp_path / "link.new"
        swap.symlink_to("/etc/passwd")
        os.replace(swap, link)
        warning = await client.until(warned)
        assert "outside the log roots" in warning["warning"]
        append(inside_b, "inside b")
        swap.symlink_to(inside_b)
        os.replace(swap, link)
        await client.until(recovered)
        await arrived(client, 0, ["inside b"])
        assert not any(line.startswith("root:") for line in lines_of(client.messages))


async def test_glob_lines_name_their_file_and_files_join_and_leave(system, stream, tmp_path):
    folder = tmp_path / "glob"
    folder.mkdir()
    append(folder / "a.log", "a 1", "a 2")
    append(folder / "b.log", "b 1")
    append(folder / "c.txt", "not matched")
    source = system.add_log("glob", folder / "*.log")
    async with stream(f"/ws/tailf/{source}/?lines=10") as client:
        await client.status("running")
        append(folder / "b.log", "b 2")
        await client.until(has_line("b 2"))
        by_file = collections.defaultdict(list)
        for message in client.messages:
            if message["type"] == "lines":
                by_file[message["file"]].extend(message["lines"])
        assert by_file == {str(folder / "a.log"): ["a 1", "a 2"],
                           str(folder / "b.log"): ["b 1", "b 2"]}
        append(folder / "d.tmp", "d 1", "d 2")
        os.rename(folder / "d.tmp", folder / "d.log")  # appears with lines already in it
        joined = await client.until(lambda m: m["type"] == "lines" and "d 2" in m["lines"])
        assert joined["file"] == str(folder / "d.log")
        assert any(str(folder / "d.log") in text and "appeared" in text
                   for text in notices_of(client.messages))
        os.unlink(folder / "a.log")
        gone = await client.until(lambda m: m["type"] == "notice"
                                  and str(folder / "a.log") in m["message"]
                                  and "no longer following" in m["message"], timeout=15)
        assert gone
        append(folder / "d.log", "d 3")
        last = await client.until(has_line("d 3"))
        assert last["file"] == str(folder / "d.log")
        seen = [line for m in client.messages if m["type"] == "lines"
                for line in m["lines"] if line.startswith("d ")]
        assert seen == ["d 1", "d 2", "d 3"]
        assert "not matched" not in lines_of(client.messages)


async def test_glob_over_the_file_limit_follows_the_newest_and_names_the_setting(
        system, stream, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    now = time.time()
    for number in range(8):
        path = folder / f"f{number}.log"
        append(path, f"f{number} old")
        os.utime(path, (now - 100 + number, now - 100 + number))
    source = system.add_log("many", folder / "*.log")
    async with stream(f"/ws/tailf/{source}/?lines=20") as client:
        await client.status("running")
        notices = notices_of(client.messages)
        assert any("TAILF_MAX_FILES=5" in text and "8 files" in text for text in notices), notices
        backlog = lines_of(client.messages)
        assert sorted(backlog) == [f"f{number} old" for number in range(3, 8)]
        append(folder / "f0.log", "f0 new")
        append(folder / "f7.log", "f7 new")
        await client.until(has_line("f7 new"))
        append(folder / "f9.log", "f9 new")  # a sixth file joins no more
        refused = await client.until(lambda m: m["type"] == "notice"
                                     and "f9.log" in m["message"])
        assert "TAILF_MAX_FILES=5" in refused["message"]
        append(folder / "f3.log", "f3 new")
        await client.until(has_line("f3 new"))
        assert "f0 new" not in lines_of(client.messages)
        assert "f9 new" not in lines_of(client.messages)
