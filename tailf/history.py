"""History search and the view around a line, as parts of a log stream (no Celery here).

`search` scans the log (and its rotated siblings) with the engine in `tailf.search` and sends
`matches` and `progress`; it returns where the live file's scan ended, so `follow=1` goes on
from there. `around` sends the lines around one line number of the log or a sibling.
"""

import asyncio
import glob
import itertools
import os
import stat

from tailf.multi import is_glob
from tailf.roots import open_confined
from tailf.rotations import Listing
from tailf.search import iter_lines_around, scan
from webapp.streams import protocol
from webapp.streams.options import OptionError
from webapp.streams.text import say

AROUND_BATCH_BYTES = 2 * 1024 * 1024  # lines read (in a thread) per round of frames sent


def files_of(path, rotated, max_files=None):
    """Return (files a search reads, oldest first with the live file last; notices).

    The folder is listed once, however many files a glob matches (blocking: call it off the
    event loop). A glob's members are the regular files it matches, at most `max_files` of
    them (the most recently written; a notice says how many were left out), each followed by
    its rotated siblings with `rotated`. A member rotated away while it is listed is skipped.
    """
    if not is_glob(path):
        return (Listing(os.path.dirname(path)).siblings(path) if rotated else [path]), []
    members = []
    for name in glob.glob(path):
        try:
            info = os.stat(name)
        except OSError:  # gone (rotated away) since the listing: not one of the files now
            continue
        if stat.S_ISREG(info.st_mode):
            members.append((info.st_mtime, name))
    members.sort()
    notices = []
    if max_files is not None and len(members) > max_files:
        notices.append(say("search_glob_limit", count=len(members), pattern=path,
                           limit=max_files, skipped=len(members) - max_files))
        members = members[-max_files:]
    names = [name for _, name in members]
    if not rotated:
        return names, notices
    listing = Listing(os.path.dirname(path))
    return [sibling for name in names for sibling in listing.siblings(name)], notices


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
    files, notices = await asyncio.to_thread(files_of, source.path, options.get("rotated"),
                                             settings.TAILF_MAX_FILES)
    for notice in notices:
        await out.notice(notice)
    events = scan(files, pattern, context=options.get("context", 0),
                  max_matches=settings.SEARCH_MAX_MATCHES, encoding=source.encoding,
                  max_line=settings.TAIL_MAX_LINE_BYTES,
                  opener=confined_opener(settings.LOG_ROOTS),
                  live=bool(options.get("follow")) and not is_glob(source.path),
                  max_seconds=settings.SEARCH_MAX_SECONDS)
    return await send_scan(out, events)


async def send_scan(out, events):
    """Send a `scan`'s events as `matches` and `progress` frames and notices; return the
    position the scan ended at (None when it ended early). The scan is closed however the
    stream ends."""
    try:
        # The first step opens every file (up to search.MAX_FILES): off the loop, too.
        first = await asyncio.to_thread(next, events, None)
        for event in itertools.chain([first] if first else [], events):
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
        try:
            events.close()
        except ValueError:  # cancelled while a thread runs it: it closes its files when collected
            pass
    return None
    return None


async def around(out, source, options, settings):
    """Send the lines around `around` (line number) of the log or of one of its siblings."""
    name = options.get("file") or ""
    files = (await asyncio.to_thread(files_of, source.path, True))[0] if name \
        else [source.path]
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
