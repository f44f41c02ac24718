"""The journal kind's stream body: follows one journal folder for one WebSocket connection."""

import asyncio
import logging

from journal.reader import BadCursor, Journal, LinkOutside
from tailf.options import compile_grep
from tailf.roots import OutsideRoots
from tailf.stream import StreamState
from webapp.models import Ending
from webapp.streams import protocol
from webapp.streams.task import StreamEnded
from webapp.streams.text import say

log = logging.getLogger("tailboard.tasks")

BATCH_ENTRIES = 2000  # entries read between two yields to the loop (heartbeats, acks)
POLL_SECONDS = 1.0  # a look at the journal even without a wake-up from its descriptor

MESSAGES = {
    "journal_unreadable": ("{count} journal files in {path} cannot be read by the worker "
                           "(permission denied); add its user to the systemd-journal group"),
    "journal_cursor_gone": ("the entry to resume after is no longer in the journal; resuming "
                            "with the next one still there"),
    "journal_error": "cannot read the journal in {path}: {error}",
}


def describe(source):
    """What the picker shows next to a journal source's name: folder, units, identifiers."""
    parts = [source.directory]
    if source.units:
        parts.append(", ".join(source.units))
    if source.identifiers:
        parts.append(", ".join(source.identifiers))
    if source.priority < 7:
        parts.append(f"priority ≤ {source.priority}")
    return " · ".join(parts)


def open_journal(source):
    """Open the source's journal, confined to LOG_ROOTS, or end the stream saying why."""
    from django.conf import settings

    try:
        return Journal(source.directory, source.units, source.identifiers, source.priority,
                       roots=settings.LOG_ROOTS, max_line=settings.TAIL_MAX_LINE_BYTES)
    except (OutsideRoots, OSError, ValueError) as exc:  # OSError: libsystemd's errno
        log.warning("journal %s: cannot open %s: %s", source.name, source.directory, exc)
        # The viewer is told what went wrong, not how the server's roots are set.
        if isinstance(exc, LinkOutside):
            error = str(exc)
        elif isinstance(exc, OutsideRoots):
            error = "it is not under the log roots"
        elif isinstance(exc, OSError):
            error = exc.strerror or str(exc)
        else:  # ValueError: libsystemd's EINVAL
            error = str(exc) or "libsystemd refused it"
        raise StreamEnded("error", say("journal_error", path=source.directory,
                                       error=error)) from None


async def follow(out, source, options, worker):
    """Send the backlog (or what follows `after`), report `running`, then follow the journal.

    The journal's descriptor wakes the loop (no thread, nothing blocks it for long: entries
    are read in batches between which heartbeats and acks run); it is also looked at every
    POLL_SECONDS in case a wake-up was missed.
    """
    state = StreamState(source.name, worker)
    matcher = compile_grep(options["grep"]).search if options.get("grep") else None
    journal = open_journal(source)
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    loop.add_reader(journal.fd, wake.set)
    try:
        warn_unreadable(journal, source, state)
        await place(out, journal, options, matcher)
        await drain(out, journal, matcher)
        await state.report(out, say("following", name=source.name))
        while True:
            try:
                await asyncio.wait_for(wake.wait(), POLL_SECONDS)
            except asyncio.TimeoutError:
                pass
            wake.clear()
            if journal.process():
                log.debug("journal %s: files added, rotated or removed", source.name)
            await drain(out, journal, matcher)
    finally:
        loop.remove_reader(journal.fd)
        journal.close()


def warn_unreadable(journal, source, state):
    """Log, and warn the viewer once running, about journal files the worker cannot read."""
    unreadable = journal.unreadable()
    if unreadable:
        log.warning("journal %s: cannot read %d files in %s (permission denied)",
                    source.name, len(unreadable), journal.directory)
        state.warning = say("journal_unreadable", count=len(unreadable), path=source.directory)


async def place(out, journal, options, matcher):
    """Position the reader: right after the `after` cursor, else before the backlog.

    A cursor whose entry is gone (vacuumed) goes on with the next entry there, saying so.
    """
    after = options.get("after") or (options.get("resume") or {}).get("cursor")
    if not after:
        journal.start(options.get("lines", 50))
        return
    try:
        first = journal.resume(after)
    except BadCursor as exc:
        raise StreamEnded("error", say("bad_option", error=str(exc)),
                          code=protocol.CLOSE_BAD_OPTION, ending=Ending.ERROR) from None
    if first is not None:
        await out.notice(say("journal_cursor_gone"))
        line, level, cursor = first
        await send(out, [line], [level], [cursor], matcher=matcher)


async def drain(out, journal, matcher):
    """Send every entry the reader has now, in batches, each once the viewer has room.

    A batch is read only when the viewer has room and is at most half the output's buffer,
    so the buffer never overflows: an entry not sent yet stays in the journal, never dropped.
    """
    batch = max(1, min(BATCH_ENTRIES, out.buffer_lines // 2))
    while True:
        if not out.has_room():
            await out.wait_room()
        lines, levels, cursors = journal.read(batch)
        if not lines:
            return
        await send(out, lines, levels, cursors, matcher=matcher)
        if len(lines) < batch:
            return
        await asyncio.sleep(0)


async def send(out, lines, levels, cursors, matcher=None):
    """Send entries (those the grep keeps) as lines with their levels and cursors; an `out`
    that `wants_position` is told the cursor of the last entry read ({"cursor": ...})."""
    read_to = cursors[-1] if cursors else None
    if matcher:
        kept = [n for n, line in enumerate(lines) if matcher(line)]
        lines = [lines[n] for n in kept]
        levels = [levels[n] for n in kept]
        cursors = [cursors[n] for n in kept]
    step = max(1, out.buffer_lines // 2)
    for start in range(0, len(lines), step):
        if not out.has_room():
            await out.wait_room()
        end = start + step
        await out.send_lines(lines[start:end], levels=levels[start:end],
                             cursors=cursors[start:end])
    if read_to and out.wants_position:
        out.note_position({"cursor": read_to})
