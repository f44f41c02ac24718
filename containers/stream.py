"""The container kind's stream body: follows a container source for one WebSocket connection.

Built on the log kind's stream (its status, search and emit rules): lines go out in frames
of one container (`file`) and one output stream (`stream`); `grep` matches the message.
"""

import logging

from containers import history
from containers.follow import ContainerFollower
from containers.layout import layout_of
from tailf.options import compile_grep
from tailf.roots import OutsideRoots
from tailf.stream import StreamState, compile_filter, file_places, run_follower
from webapp.models import Ending
from webapp.streams import protocol
from webapp.streams.options import OptionError
from webapp.streams.task import StreamEnded
from webapp.streams.text import say

log = logging.getLogger("tailboard.tasks")


async def follow(out, source, options, worker):
    """Run one container stream: a tail, a history search (then maybe a tail), or a view."""
    from django.conf import settings

    state = StreamState(source.name, worker)
    layout = layout_of(source, settings.LOG_ROOTS)
    if options.get("around"):
        await state.report(out, say("reading_around", name=source.name, line=options["around"]))
        try:
            path, count = await history.around(out, layout, options, settings)
        except (OptionError, ValueError, OSError, OutsideRoots) as exc:
            raise StreamEnded("error", f"cannot read around line {options['around']}: {exc}",
                              code=protocol.CLOSE_BAD_OPTION, ending=Ending.ERROR) from None
        raise StreamEnded("stopped", f"{count} lines of {path}")
    backlog = options.get("lines", 50)
    if options.get("search"):
        await state.report(out, say("searching", name=source.name))
        await history.search(out, layout, options, compile_grep(options["search"], "search"),
                             settings)
        if not options.get("follow"):
            raise StreamEnded("stopped", say("search_finished"))
        backlog = 0
        options = {**options, "grep": options.get("grep") or options["search"]}
    await tail(out, source, layout, options, state, backlog)


def open_follower(source, layout, backlog, positions=None):
    """Return the engine for a container source (`positions`: where each log goes on, from
    an earlier reading's `position()`)."""
    from django.conf import settings

    return ContainerFollower(layout, backlog=backlog, max_line=settings.TAIL_MAX_LINE_BYTES,
                             roots=settings.LOG_ROOTS, rotate_wait=settings.TAILF_ROTATE_WAIT,
                             max_files=settings.TAILF_MAX_FILES, positions=positions)


async def tail(out, source, layout, options, state, backlog):
    """Send the backlog, report `running`, then send new records until cancelled."""
    matcher = compile_filter(options.get("grep"))
    follower = open_follower(source, layout, backlog, file_places(options.get("resume")))
    log.info("following containers %s with %s wake-ups", layout.describe(), follower.waker.kind)
    await run_follower(out, follower, matcher, state, emit)


async def emit(out, events, matcher, state):
    """Send records as `lines` frames (one container, one output stream), notices, warnings."""
    step = max(1, out.buffer_lines // 2)
    for event in events:
        kind = event[0]
        if kind == "lines":
            _, run, name = event
            batch = run.lines
            if matcher is not None:
                batch = [line for line, message in zip(batch, run.message_list(), strict=False)
                         if matcher(message)]
            fields = {"stream": run.stream}
            for start in range(0, len(batch), step):
                if not out.has_room():
                    await out.wait_room()
                await out.send_lines(batch[start:start + step], name, fields)
        elif kind == "warning":
            await state.warn(out, event[1])
        else:
            await out.notice(event[1])
