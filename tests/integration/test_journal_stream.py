"""Journal streams end to end on real journal files: real Redis, a prefork worker, Daphne.

Backlog, follow, levels, the cursor on every `lines` frame, and a reconnect with
`after=CURSOR` that neither loses nor repeats an entry, across a rotation.
"""

import pytest

from tests import journalfiles as jf

pytestmark = [pytest.mark.sqlite_only,  # engine tests: see tests/integration/conftest.py
              jf.needed]

BASE = 1765033445_000000


def add_journal(system, name, folder, *extra):
    """Add a journal source with the `sources` CLI; return its id."""
    return system.add_journal(name, "--directory", str(folder), *extra)


def entries(prefix, count, start=0, **fields):
    """`count` entries named prefix0.., a microsecond apart."""
    return [jf.entry(f"{prefix}{n}", usec=BASE + start + n, **fields) for n in range(count)]


async def read_lines(client, count, timeout=15):
    """Read `lines` frames until `count` lines came; return (lines, frames)."""
    lines, frames = [], []
    while len(lines) < count:
        frame = await client.until(lambda m: m["type"] == "lines", timeout)
        frames.append(frame)
        lines += frame["lines"]
    return lines, frames


def messages(lines):
    return [line.split(": ", 1)[1] for line in lines]


async def test_backlog_then_follow_with_levels_and_a_cursor_per_frame(system, stream, tmp_path):
    folder = tmp_path / "journal"
    folder.mkdir()
    path = str(folder / "system.journal")
    jf.write(path, entries("old", 10, unit="web.service", priority=6)
             + entries("other", 3, start=100, unit="db.service"))
    source = add_journal(system, "web-journal", folder, "--unit", "web.service")
    async with stream(f"/ws/journal/{source}/?lines=4") as client:
        running = await client.status("running")
        assert running["message"] == "following web-journal"
        backlog = [line for m in client.messages if m["type"] == "lines" for line in m["lines"]]
        assert messages(backlog) == ["old6", "old7", "old8", "old9"]
        writer = jf.Writer(path)
        try:
            writer.write(entries("new", 3, start=1000, unit="web.service", priority=3)
                         + entries("skip", 2, start=2000, unit="db.service")
                         + [jf.entry("warned", usec=BASE + 3000, unit="web.service",
                                     priority=4)])
            lines, frames = await read_lines(client, 4)
        finally:
            writer.close()
        assert messages(lines) == ["new0", "new1", "new2", "warned"]
        assert [level for f in frames for level in f["levels"]] == ["error"] * 3 + ["warn"]
        assert all(f["cursor"].startswith("s=") for f in frames)


async def test_a_reconnect_after_the_cursor_loses_and_repeats_nothing(system, stream, tmp_path):
    folder = tmp_path / "journal-resume"
    folder.mkdir()
    path = str(folder / "system.journal")
    jf.write(path, entries("a", 50))
    source = add_journal(system, "resume-journal", folder)
    async with stream(f"/ws/journal/{source}/?lines=20") as client:
        await client.status("running")
        seen = [line for m in client.messages if m["type"] == "lines" for line in m["lines"]]
        cursor = [m for m in client.messages if m["type"] == "lines"][-1]["cursor"]
    assert messages(seen) == [f"a{n}" for n in range(30, 50)]
    # While nobody watches: more entries, then a rotation, then more in the new file.
    jf.write(path, entries("b", 30, start=100))
    jf.archive(path)
    jf.write(path, entries("c", 30, start=200))
    async with stream(f"/ws/journal/{source}/?lines=5&after={cursor}") as client:
        lines, frames = await read_lines(client, 60)
        await client.status("running")
        assert messages(lines) == [f"b{n}" for n in range(30)] + [f"c{n}" for n in range(30)]
        assert not [m for m in client.messages if m["type"] == "notice"]
        cursor = frames[-1]["cursor"]
    async with stream(f"/ws/journal/{source}/?after={cursor}") as client:
        await client.status("running")
        assert not [m for m in client.messages if m["type"] == "lines"]


async def test_a_malformed_cursor_is_refused_with_4400(system, stream, tmp_path):
    folder = tmp_path / "journal-bad"
    folder.mkdir()
    jf.write(str(folder / "system.journal"), entries("x", 1))
    source = add_journal(system, "bad-journal", folder)
    async with stream(f"/ws/journal/{source}/?after=s%3D1%27%3Bx") as client:
        refusal = await client.until(lambda m: m["type"] == "status")
        assert refusal["state"] == "error" and refusal["message"].startswith("bad option:")
        await client.socket.wait_closed()
        assert client.socket.close_code == 4400


async def test_a_folder_outside_the_roots_ends_the_stream_saying_why(system, stream):
    source = system.shell(
        "from journal.models import JournalSource\n"
        "from django.contrib.auth.models import Group\n"
        "s = JournalSource.objects.create(name='etc-journal', directory='/etc')\n"
        "print(s.pk)\n").strip().splitlines()[-1]
    async with stream(f"/ws/journal/{source}/") as client:
        ended = await client.status("error", timeout=20)
        assert "cannot read the journal in /etc" in ended["message"]
        assert ended["message"].endswith("it is not under the log roots")
