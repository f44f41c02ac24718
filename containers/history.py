"""History search and the view around a line for container sources (no Celery here).

The files searched are the live logs of the matching containers (oldest written first) and,
with `rotated=1`, their rotated files before each. Each stored record is matched on its
message and shown as the stream shows it (`TIME MESSAGE`); parts of a split line are
matched one by one, as stored.
"""

import asyncio
import os

from containers.records import PARSERS
from tailf.history import confined_opener, send_scan
from tailf.search import lines_around, scan
from webapp.streams import protocol
from webapp.streams.options import OptionError
from webapp.streams.text import say


def files_of(layout, rotated, max_files=None):
    """Return (the files a search reads, oldest first; notices).

    Blocking (it lists the layout's folders): call it off the event loop. At most `max_files`
    containers' live logs are read (the most recently written; a notice says how many were
    left out), each after its rotated files with `rotated`. A log rotated away while it is
    listed is skipped.
    """
    live = []
    for path in layout.candidates():
        try:
            live.append((os.stat(path).st_mtime, path))
        except OSError:
            continue
    live.sort()
    notices = []
    if max_files is not None and len(live) > max_files:
        notices.append(say("search_glob_limit", count=len(live), pattern=layout.describe(),
                           limit=max_files, skipped=len(live) - max_files))
        live = live[-max_files:]
    if not rotated:
        return [path for _, path in live], notices
    return [each for _, path in live for each in layout.siblings(path)], notices


async def search(out, layout, options, pattern, settings):
    """Scan the container logs for `pattern`, sending matches and progress.

    The listing and the first step (which opens the files) run in a thread; each later step
    is bounded (one block) and the loop yields between steps. The scan ends after
    SEARCH_MAX_SECONDS with a notice.
    """
    parser = PARSERS[layout.kind](settings.TAIL_MAX_LINE_BYTES)
    files, notices = await asyncio.to_thread(files_of, layout, options.get("rotated"),
                                             settings.TAILF_MAX_FILES)
    for notice in notices:
        await out.notice(notice)
    events = scan(files, pattern, context=options.get("context", 0),
                  max_matches=settings.SEARCH_MAX_MATCHES, encoding="utf-8",
                  max_line=settings.TAIL_MAX_LINE_BYTES,
                  opener=confined_opener(settings.LOG_ROOTS), live=False,
                  view=parser.view, prefilter=layout.kind == "cri",
                  max_seconds=settings.SEARCH_MAX_SECONDS)
    await send_scan(out, events)


async def around(out, layout, options, settings):
    """Send the lines around `around` of one of the source's files (named by `file`)."""
    name = options.get("file") or ""
    files, _ = await asyncio.to_thread(files_of, layout, True)
    if not files:
        raise OptionError("no container log matches this source")
    chosen = next((path for path in reversed(files)
                   if name in (os.path.basename(path), os.path.relpath(path, layout.root))),
                  None) if name else files[-1]
    if chosen is None:
        raise OptionError(f"{name} is not one of this source's files")
    half = max(1, options.get("lines", 50)) // 2
    found = await asyncio.to_thread(
        lines_around, chosen, options["around"], half, half, encoding="utf-8",
        max_line=settings.TAIL_MAX_LINE_BYTES, opener=confined_opener(settings.LOG_ROOTS))
    view = PARSERS[layout.kind](settings.TAIL_MAX_LINE_BYTES).view
    items = [{"line_no": item["line_no"], "line": view(item["line"])[1], "before": [],
              "after": []} for item in found]
    for message in protocol.matches_messages(chosen, items):
        await out.send_frame(message)
    return chosen, len(found)
