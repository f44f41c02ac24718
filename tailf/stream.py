"""The log kind's stream body: follows one log file for one WebSocket connection."""

import logging

from tailf.follow import Follower
from webapp.streams import protocol

log = logging.getLogger("tailboard.tasks")


async def follow(out, source, options, worker):
    """Send the backlog, report `running`, then send appended lines until cancelled."""
    from django.conf import settings

    matcher = compile_filter(options.get("grep"))
    follower = Follower(source.path, backlog=options.get("lines", 50), encoding=source.encoding,
                        max_line=settings.TAIL_MAX_LINE_BYTES)
    try:
        log.info("tailing %s with %s wake-ups", source.path, follower.waker.kind)
        await emit(out, follower.start(), matcher)
        await out.send(protocol.status("running", f"following {source.name}",
                                       worker=worker))
        while True:
            await follower.aidle()
            if not out.has_room():
                await out.wait_room()
            if follower.lag() > settings.STREAM_MAX_LAG_BYTES:
                out.drop(follower.skip_ahead(settings.STREAM_MAX_LAG_BYTES // 2))
            events = follower.poll()
            if events:
                await emit(out, events, matcher)
    finally:
        follower.close()


async def emit(out, events, matcher):
    """Send engine events: lines (filtered) as `lines` frames, notices as `notice`.

    Lines go out in pieces the viewer has room for; while it has none, the task waits and
    the rest of the file stays on disk, so a viewer who is behind loses nothing.
    """
    step = max(1, out.buffer_lines // 2)
    for kind, value in events:
        if kind == "lines":
            batch = [line for line in value if matcher(line)] if matcher else value
            for start in range(0, len(batch), step):
                if not out.has_room():
                    await out.wait_room()
                await out.send_lines(batch[start:start + step])
        else:
            await out.notice(value)


def compile_filter(pattern):
    """Return a predicate for the `grep` option, or None when there is none."""
    if not pattern:
        return None
    from tailf.options import compile_grep

    return compile_grep(pattern).search
