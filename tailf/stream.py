"""The log kind's stream body: follows one log file for one WebSocket connection."""

import logging

from tailf import history
from tailf.follow import Follower
from tailf.multi import MultiFollower, is_glob
from tailf.options import compile_grep
from tailf.roots import OutsideRoots
from webapp.models import Ending
from webapp.streams import protocol
from webapp.streams.internals import re2_line_search
from webapp.streams.kinds import Pool
from webapp.streams.options import OptionError
from webapp.streams.task import StreamEnded
from webapp.streams.text import say

log = logging.getLogger("tailboard.tasks")


async def follow(out, source, options, worker):
    """Run one log stream: a tail, a history search (then maybe a tail), or a view of lines."""
    from django.conf import settings

    state = StreamState(source.name, worker)
    if options.get("around"):
        await state.report(out, say("reading_around", name=source.name, line=options["around"]))
        try:
            path, count = await history.around(out, source, options, settings)
        except (OptionError, ValueError, OSError, OutsideRoots) as exc:
            raise StreamEnded("error", f"cannot read around line {options['around']}: {exc}",
                              code=protocol.CLOSE_BAD_OPTION, ending=Ending.ERROR) from None
        raise StreamEnded("stopped", f"{count} lines of {path}")
    start = resume_at(source, options.get("resume"))
    if options.get("search"):
        await state.report(out, say("searching", name=source.name))
        position = await history.search(out, source, options,
                                        compile_grep(options["search"], "search"), settings)
        if not options.get("follow"):
            raise StreamEnded("stopped", say("search_finished"))
        start = {"start_at": position} if position else {"backlog": 0}
        options = {**options, "grep": options.get("grep") or options["search"]}
    await tail(out, source, options, state, start)


def resume_at(source, position):
    """The engine's start for a `resume` option (a position noted by an earlier reading,
    `Follower.position`): each file goes on where it was, or from its start if it is another
    file now. None: {} (the backlog)."""
    places = file_places(position)
    if is_glob(source.path):
        return {"positions": places} if places else {}
    at = places.get(source.path)
    return {"start_at": at, "start_note": "file_replaced"} if at else {}


def file_places(position):
    """{path: (dev, ino, offset)} of a `resume` option made by a file engine's `position()`
    (anything else in it is left out)."""
    if not isinstance(position, dict):
        return {}
    return {path: tuple(at) for path, at in position.items()
            if isinstance(at, list) and len(at) == 3 and all(type(n) is int for n in at)}


async def tail(out, source, options, state, start):
    """Send the backlog, report `running`, then send appended lines until cancelled."""

    matcher = compile_filter(options.get("grep"))
    follower = open_follower(source, **({"backlog": options.get("lines", 50)} | start))
    log.info("tailing %s with %s wake-ups", source.path, follower.waker.kind)
    await run_follower(out, follower, matcher, state)


async def run_follower(out, follower, matcher, state, send=None):
    """Send a file engine's start, report `running`, then send its events until cancelled.

    `send(out, events, matcher, state)` sends events (default: `emit`, lines of files). A
    viewer who is behind stops the reading (the lag stays on disk) until it is more than
    STREAM_MAX_LAG_BYTES behind; then the engine skips ahead and the skipped lines are counted.
    An `out` that `wants_position` is told the engine's `position()` after each send. The
    engine is closed however the stream ends.
    """
    from django.conf import settings

    send = send or emit

    async def send_and_note(events):
        await send(out, events, matcher, state)
        if out.wants_position:
            position = follower.position()
            if position:  # no file open (missing for now): the last place noted still holds
                out.note_position(position)

    try:
        await send_and_note(follower.start())
        await state.report(out, say("following", name=state.name))
        while True:
            await follower.aidle()
            if not out.has_room():
                await out.wait_room()
            if follower.lag() > settings.STREAM_MAX_LAG_BYTES:
                out.drop(follower.skip_ahead(settings.STREAM_MAX_LAG_BYTES // 2))
            events = follower.poll()
            if events:
                await send_and_note(events)
    finally:
        follower.close()


def pools(options):
    """The per-user limits a stream with these options counts against: searches."""
    from django.conf import settings

    if options.get("search"):
        return [Pool("search", settings.SEARCH_MAX_PER_USER, "searches")]
    return []


def open_follower(source, **extra):
    """Return the engine for a log source: a Follower, or a MultiFollower for a glob path."""
    from django.conf import settings

    if is_glob(source.path):
        extra.pop("start_at", None)
        extra.pop("start_note", None)
        extra.setdefault("backlog", 0)
    common = {"encoding": source.encoding,
              "max_line": settings.TAIL_MAX_LINE_BYTES, "roots": settings.LOG_ROOTS,
              "rotate_wait": source.rotate_wait if source.rotate_wait is not None
              else settings.TAILF_ROTATE_WAIT, **extra}
    if is_glob(source.path):
        return MultiFollower(source.path, max_files=settings.TAILF_MAX_FILES, **common)
    return Follower(source.path, **common)


class StreamState:
    """The `running` status of a log stream and its `warning` while it is degraded."""

    def __init__(self, name, worker):
        self.name = name
        self.worker = worker
        self.running = False
        self.warning = None
        self.message = ""

    async def report(self, out, message):
        """Send `status running` (what the stream does now), with the warning if any."""
        self.running = True
        self.message = message
        extra = {"warning": self.warning} if self.warning else {}
        await out.send(protocol.status("running", message, worker=self.worker, **extra))

    async def warn(self, out, warning):
        """Record a new warning (or None: recovered); tell the viewer once running."""
        self.warning = warning
        if self.running:
            await out.send(protocol.status("running", warning or self.message, warning=warning))


async def emit(out, events, matcher, state):
    """Send engine events: lines (filtered) as `lines` frames, notices, warnings.

    Lines go out in pieces the viewer has room for; while it has none, the task waits and
    the rest of the file stays on disk, so a viewer who is behind loses nothing. Lines of a
    multi-file stream carry their file.
    """
    step = max(1, out.buffer_lines // 2)
    for kind, value, *rest in events:
        if kind == "lines":
            batch = [line for line in value if matcher(line)] if matcher else value
            file = rest[0] if rest else None
            for start in range(0, len(batch), step):
                if not out.has_room():
                    await out.wait_room()
                await out.send_lines(batch[start:start + step], file)
        elif kind == "warning":
            await state.warn(out, value)
        else:
            await out.notice(value)


def compile_filter(pattern):
    """Return a predicate for the `grep` option (one RE2 call per line, no match object), or
    None when there is none."""
    if not pattern:
        return None
    return re2_line_search(compile_grep(pattern))
