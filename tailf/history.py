"""History search and the view around a line, as parts of a log stream (no Celery here).

`search` scans the log (and its rotated siblings) with the engine in `tailf.search` and sends
`matches` and `progress`; it returns where the live file's scan ended, so `follow=1` goes on
from there. `around` sends the lines around one line number of the log or a sibling.
"""

import asyncio
import glob
import os

from tailf.multi import is_glob
from tailf.rotations import rotated_siblings
from tailf.roots import open_confined
from tailf.search import iter_lines_around, scan
from webapp.streams import protocol
from webapp.streams.options import OptionError

AROUND_BATCH_BYTES = 2 * 1024 * 1024  # lines read (in a thread) per round of frames sent


def files_of(path, rotated):
    """Return the files a search reads, oldest first (the live file last)."""
    if is_glob(path):
        matches = [name for name in glob.glob(path) if os.path.isfile(name)]
        matches.sort(key=lambda name: os.stat(name).st_mtime)
        if not rotated:
            return matches
        return [sibling for name in matches for sibling in rotated_siblings(name)]
    return rotated_siblings(path) if rotated else [path]


def confined_opener(roots):
    """Return an opener that only opens files under the log roots (read-only fd)."""
    return lambda path: open_confined(path, roots)


async def search(out, source, options, pattern, settings):
    """Scan the log for `pattern`, sending matches and progress; return the end position.

    With `follow`, the live file's unfinished last line is left to the follower and the
    position is (dev, ino, offset) of the live file after its last complete line, or None;
    without it, the files are searched to their end, last line included, and it is None.
    Each step of the engine is bounded (one block), and the loop yields between steps, so Stop
    and the lease watchdog act at once.
    """
    files = files_of(source.path, options.get("rotated"))
    events = scan(files, pattern, context=options.get("context", 0),
                  max_matches=settings.SEARCH_MAX_MATCHES, encoding=source.encoding,
                  max_line=settings.TAIL_MAX_LINE_BYTES,
                  opener=confined_opener(settings.LOG_ROOTS),
                  live=bool(options.get("follow")) and not is_glob(source.path))
    try:
        for event in events:
            kind = event[0]
            if kind == "matches":
                for message in protocol.matches_messages(event[1], event[2]):
                    await out.send_frame(message)
            elif kind == "progress":
                await out.send(protocol.progress(*event[1:4]))
            elif kind == "notice":
                await out.notice(event[1])
            elif kind == "done":
                await out.send(protocol.progress(*event[1:4], done=True))
                return event[4]
            await asyncio.sleep(0)
    finally:
        events.close()
    return None


async def around(out, source, options, settings):
    """Send the lines around `around` (line number) of the log or of one of its siblings."""
    name = options.get("file") or ""
    files = files_of(source.path, rotated=True) if name else [source.path]
    chosen = next((path for path in files if os.path.basename(path) == name), None) \
        if name else files[-1]
    if chosen is None:
        raise OptionError(f"{name} is not one of this log's files")
    half = max(1, options.get("lines", 50)) // 2
    lines = iter_lines_around(
        chosen, options["around"], half, half, encoding=source.encoding,
        max_line=settings.TAIL_MAX_LINE_BYTES, opener=confined_opener(settings.LOG_ROOTS))
    count = 0
    try:
        while True:
            found = await asyncio.to_thread(take, lines, AROUND_BATCH_BYTES)
            if not found:
                break
            count += len(found)
            items = [{"line_no": item["line_no"], "line": item["line"], "before": [],
                      "after": []} for item in found]
            for message in protocol.matches_messages(chosen, items):
                await out.send_frame(message)
    finally:
        try:
            lines.close()
        except ValueError:  # cancelled while a thread runs it: it closes its file when collected
            pass
    return chosen, count


def take(items, budget):
    """Return the next items of an iterator of lines, about `budget` characters of them."""
    batch, size = [], 0
    for item in items:
        batch.append(item)
        size += len(item["line"])
        if size >= budget:
            break
    return batch
