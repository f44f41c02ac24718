"""The journal kind's stream body with a recording output: grep, the running status, a slow
viewer (nothing dropped: entries wait in the journal), a vacuumed cursor and refusals."""

import asyncio
import errno
import os
from types import SimpleNamespace

import pytest

from journal.reader import Journal
from journal.stream import follow
from tests import journalfiles as jf
from tests.unit.test_flow_control import RecordingLayer
from webapp.streams.flow import Output
from webapp.streams.task import StreamEnded

pytestmark = jf.needed

BASE = 1765033445_000000


def source(folder, **fields):
    return SimpleNamespace(name="j", directory=str(folder), units=[], identifiers=[],
                           priority=7, **fields)


async def run_until(out, layer, body, done, ack=True, timeout=10):
    """Run the body, acknowledging every frame, until done(frames) holds; then cancel it."""
    task = asyncio.ensure_future(body)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not done(layer.frames()):
            assert asyncio.get_running_loop().time() < deadline, layer.frames()[-3:]
            if task.done():
                task.result()
            if ack and out.next_seq:
                await out.acknowledge(out.next_seq - 1)
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return layer.frames()


def lines(frames):
    return [line.split(": ", 1)[1] for f in frames if f["type"] == "lines" for line in f["lines"]]


@pytest.fixture
def roots(settings, tmp_path):
    settings.LOG_ROOTS = [str(tmp_path)]
    return tmp_path


async def test_a_slow_viewer_loses_nothing_and_nothing_is_dropped(roots):
    jf.write(str(roots / "x.journal"), [jf.entry(f"m{n}", usec=BASE + n) for n in range(500)])
    layer = RecordingLayer()
    out = Output(layer, "c", window=2, buffer_lines=10)
    frames = await run_until(out, layer, follow(out, source(roots), {"lines": 500}, "w1"),
                             lambda fs: any(f.get("state") == "running" for f in fs))
    assert lines(frames) == [f"m{n}" for n in range(500)]
    assert not [f for f in frames if f["type"] == "dropped"]
    assert frames[-1]["message"] == "following j" and frames[-1]["worker"] == "w1"


async def test_grep_keeps_matching_entries_and_their_cursors(roots):
    jf.write(str(roots / "x.journal"), [jf.entry(f"{'odd' if n % 2 else 'even'} {n}",
                                                 usec=BASE + n) for n in range(10)])
    layer = RecordingLayer()
    out = Output(layer, "c", window=8, buffer_lines=1000)
    frames = await run_until(out, layer, follow(out, source(roots), {"lines": 10, "grep": "odd"},
                                                "w1"),
                             lambda fs: any(f.get("state") == "running" for f in fs))
    assert lines(frames) == [f"odd {n}" for n in (1, 3, 5, 7, 9)]
    journal = Journal(str(roots))
    journal.start(10)
    assert [f for f in frames if f["type"] == "lines"][-1]["cursor"] == journal.read(10)[2][9]


async def test_a_vacuumed_cursor_says_so_and_goes_on_with_the_next_entry(roots):
    path = str(roots / "x.journal")
    jf.write(path, [jf.entry(f"old{n}", usec=BASE + n) for n in range(3)])
    layer = RecordingLayer()
    out = Output(layer, "c", window=8, buffer_lines=1000)
    frames = await run_until(out, layer, follow(out, source(roots), {"lines": 3}, "w1"),
                             lambda fs: any(f.get("state") == "running" for f in fs))
    cursor = [f for f in frames if f["type"] == "lines"][-1]["cursor"]
    archived = jf.archive(path)
    jf.write(path, [jf.entry("new0", usec=BASE + 100)])
    os.unlink(archived)
    layer = RecordingLayer()
    out = Output(layer, "c", window=8, buffer_lines=1000)
    frames = await run_until(out, layer, follow(out, source(roots), {"after": cursor}, "w1"),
                             lambda fs: any(f.get("state") == "running" for f in fs))
    assert [f["message_code"] for f in frames if f["type"] == "notice"] == [
        "journal_cursor_gone"]
    assert lines(frames) == ["new0"]


async def test_a_cursor_the_journal_rejects_ends_with_4400(roots):
    jf.write(str(roots / "x.journal"), [jf.entry("x", usec=BASE)])
    out = Output(RecordingLayer(), "c")
    with pytest.raises(StreamEnded) as ended:
        await follow(out, source(roots), {"after": "s=12;i=1"}, "w1")
    assert ended.value.code == 4400 and "bad option" in ended.value.message


async def test_a_folder_outside_the_roots_ends_the_stream_without_naming_them(roots, tmp_path):
    out = Output(RecordingLayer(), "c")
    with pytest.raises(StreamEnded) as ended:
        await follow(out, source("/etc"), {}, "w1")
    assert ended.value.message == "cannot read the journal in /etc: it is not under the log roots"
    assert str(roots) not in ended.value.message


async def test_journal_files_the_worker_cannot_read_are_named_in_a_warning(roots, monkeypatch):
    jf.write(str(roots / "x.journal"), [jf.entry("readable", usec=BASE)])
    jf.write(str(roots / "y.journal"), [jf.entry("other", usec=BASE + 1)])
    real_access = os.access
    # Tests run as root, who may read anything: make y.journal unreadable to the check.
    monkeypatch.setattr(os, "access", lambda path, mode: (
        not str(path).endswith("y.journal") and real_access(path, mode)))
    layer = RecordingLayer()
    out = Output(layer, "c", window=8, buffer_lines=1000)
    frames = await run_until(out, layer, follow(out, source(roots), {"lines": 5}, "w1"),
                             lambda fs: any(f.get("state") == "running" for f in fs))
    running = [f for f in frames if f.get("state") == "running"][0]
    assert running["warning"] == (f"1 journal files in {roots} cannot be read by the worker "
                                  "(permission denied); add its user to the systemd-journal "
                                  "group")


async def test_libsystemd_refusing_the_folder_ends_the_stream_with_its_reason(roots,
                                                                              monkeypatch):
    def refusing(path):
        """What systemd-python raises when libsystemd cannot open the folder (as a user
        who may not read it): OSError with libsystemd's errno."""
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("journal.reader.Reader", refusing)
    out = Output(RecordingLayer(), "c")
    with pytest.raises(StreamEnded) as ended:
        await follow(out, source(roots), {}, "w1")
    assert ended.value.message == f"cannot read the journal in {roots}: Permission denied"
    assert ended.value.code == 4410


async def test_a_worker_without_the_journal_binding_ends_the_stream_saying_so(roots,
                                                                             monkeypatch):
    monkeypatch.setattr("journal.reader.Reader", None)
    out = Output(RecordingLayer(), "c")
    with pytest.raises(StreamEnded) as ended:
        await follow(out, source(roots), {}, "w1")
    assert ended.value.message == (f"cannot read the journal in {roots}: this worker cannot "
                                   "read journals: systemd-python is not installed "
                                   "(requirements-native.txt)")
