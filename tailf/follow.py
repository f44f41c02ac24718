"""The `tail -n N -F` engine: pure file reading, no Celery or Channels.

A Follower reads the last N lines of a file, then returns what is appended on each poll,
following the file by name: after a rotation (rename, delete, symlink retargeted) the old file
keeps being read for `rotate_wait` seconds while the new one is followed, and is let go once
it has been quiet that long (at most after 10 × `rotate_wait`; at most ROTATED_MAX such files
are held, the oldest read to its end and let go first); truncation restarts at the new
start; a missing file (or directory) is waited for, and a symlink is followed to whatever it
points at now — but every open goes through `roots.open_confined`, so a file outside the log
roots (or under /proc, /sys, /dev) is never read. Lines come out whole and decoded, in large
batches; lines over the byte limit are cut with a marker; a last line without newline is
held, and delivered on its own after `partial_timeout` seconds (the rest of that line then
comes as a line of its own).

Events: ("lines", [str, ...]), ("notice", str), and ("warning", str) when the stream becomes
degraded (file missing, not a regular file, unreadable, outside the log roots, polling
because inotify failed) / ("warning", None) when it recovers — only on changes.

Between polls, `idle()` (or `aidle()` on an asyncio loop) blocks until inotify reports a
change, a name check is due (every second) or an engine deadline (held partial line, end of
a rotation grace) comes; where inotify is unavailable or fails, it polls instead.
"""

import codecs
import os
import time

from tailf import roots as confinement
from tailf import wake
from webapp.streams.text import say

CHUNK = 1024 * 1024
MAX_READ_PER_POLL = 8 * CHUNK
MAX_DRAIN_BYTES = 4 * MAX_READ_PER_POLL
BACKLOG_BLOCK = 64 * 1024
BACKLOG_MAX_BLOCK = 1024 * 1024
BACKLOG_SCAN_LIMIT = 64 * 1024 * 1024
SEEN_BYTES = 64
GRACE_LIMIT_FACTOR = 10
ROTATED_MAX = 8  # rotated files read at once in their grace, per followed name
RELEASED_KEPT = 16

# The reasons a path cannot be followed that a message code says whole (the others, a refusal
# by the folder rule or an operating-system error, travel as the parameter of file_waiting).
WAITING_CODES = {
    "does not exist": "file_missing",
    "does not exist, nor does its directory": "file_missing_dir",
    "cannot be read (permission denied)": "file_denied",
    "is not a regular file": "file_not_regular",
}


def waiting_notice(path, reason):
    """The notice of a path that cannot be followed yet, coded by its reason."""
    code = WAITING_CODES.get(reason)
    return say(code, path=path) if code else say("file_waiting", path=path, reason=reason)


def problem_text(path, reason):
    """Why a path cannot be followed now (a warning's text), coded by its reason."""
    code = WAITING_CODES.get(reason)
    return say(code.replace("file_", "path_"), path=path) if code \
        else say("path_problem", path=path, reason=reason)


def joined(parts):
    """One warning of its parts: the part itself (with its code) when it is alone."""
    return parts[0] if len(parts) == 1 else "; ".join(parts) or None
CUT_MARKER = " [… line cut: longer than {limit} bytes]"
WHOLE_DECODE = {"utf-8", "ascii", "latin-1", "iso8859-1"}


def check_encoding(encoding):
    """Raise ValueError unless lines in this encoding can be split on b"\\n" (UTF-16 cannot)."""
    codecs.lookup(encoding)
    if "\n".encode(encoding) != b"\n":
        raise ValueError(f"encoding {encoding!r} does not write a newline as one "
                         "'\\n' byte; lines cannot be split")


class OpenFile:
    """One open file being read: descriptor, identity, offset, the unfinished line."""

    __slots__ = ("fd", "identity", "offset", "seen", "pending", "pending_since", "skipping",
                 "behind", "retired_at", "active_at")

    def __init__(self, fd, identity):
        self.fd = fd
        self.identity = identity
        self.offset = 0
        self.seen = b""
        self.pending = b""
        self.pending_since = None
        self.skipping = False
        self.behind = False
        self.retired_at = None
        self.active_at = None

    def remember_seen(self):
        """Keep the bytes just before the offset, to notice a rewrite later."""
        size = min(SEEN_BYTES, self.offset)
        self.seen = os.pread(self.fd, size, self.offset - size) if size else b""


class Follower:
    """Follows one path by name; `start()` gives the backlog, `poll()` what is new.

    `roots` (required): the log roots; nothing outside them is opened. `rotate_wait`:
    seconds a rotated file keeps being read. `start_at=(dev, ino, offset)`: no backlog, start
    exactly at `offset` if the file is still that file, else at its start with the notice
    `start_note` (a message code). `position()` gives such a place for the lines read so far.
    `from_start`: no backlog, read the file from its start. `waker`: a shared waker (the
    caller closes it); by default the follower opens and closes its own.
    """

    def __init__(self, path, backlog=50, encoding="utf-8", max_line=64 * 1024,
                 partial_timeout=0.5, waker=None, *, roots, rotate_wait=5.0, start_at=None,
                 from_start=False, start_note="file_not_searched"):
        check_encoding(encoding)
        self.path = os.fspath(path)
        self.roots = list(roots) if not isinstance(roots, (str, os.PathLike)) else [roots]
        self.real_roots = confinement.real_roots(self.roots)
        self.backlog = backlog
        self.encoding = encoding
        self.max_line = max_line
        self.partial_timeout = partial_timeout
        self.rotate_wait = rotate_wait
        self.start_at = start_at
        self.start_note = start_note
        self.from_start = from_start
        self.whole_decode = codecs.lookup(encoding).name in WHOLE_DECODE
        self.current = None
        self.retired = []
        self.released = []
        self.waiting = None
        self.problem = None
        self.warned = None
        self.waker_reason = ""
        self.lost = False
        self.open_error = None
        self.notes = []
        self.owns_waker = waker is None
        self.waker = waker if waker is not None else wake.open_waker()

    @property
    def fd(self):
        """The descriptor of the file followed by name, or None."""
        return self.current.fd if self.current is not None else None

    @property
    def identity(self):
        """(st_dev, st_ino) of the file followed by name, or None."""
        return self.current.identity if self.current is not None else None

    @property
    def offset(self):
        """How far the file followed by name has been read (0 when none is open)."""
        return self.current.offset if self.current is not None else 0

    def position(self):
        """{path: [st_dev, st_ino, offset]}: where the lines handed over so far end in the file
        followed by name (its unfinished last line not counted), for `start_at` later; {}
        while no file is open."""
        current = self.current
        if current is None:
            return {}
        return {self.path: [*current.identity, current.offset - len(current.pending)]}

    @property
    def behind(self):
        """Whether a read stopped at the per-poll limit: poll again at once."""
        return (self.current is not None and self.current.behind) \
            or any(old.behind for old in self.retired)

    def start(self, now=None):
        """Fix the starting position; return the backlog and any notice."""
        now = time.monotonic() if now is None else now
        self._watch_dirs()
        if not self._open():
            self.waiting = self._missing_reason()
            return self._with_state([("notice", waiting_notice(self.path, self.waiting))])
        current = self.current
        size = os.fstat(current.fd).st_size
        events = []
        if self.start_at is not None:
            dev, ino, offset = self.start_at
            if current.identity == (dev, ino) and size >= offset:
                current.offset = offset
            else:
                events.append(("notice", say(self.start_note, path=self.path)))
        elif self.from_start:
            current.offset = 0
        else:
            current.offset = self._backlog_start(current, size) if self.backlog else size
        current.remember_seen()
        return self._with_state(events + self._read(current, now))

    def poll(self, now=None):
        """Return the events since the last call; `now` is a monotonic time in seconds."""
        self.waker.drain()
        events = self.collect(now)
        self.waker.settle(bool(events))
        return events

    def collect(self, now=None):
        """`poll()` without draining or settling the waker (for a caller sharing it)."""
        now = time.monotonic() if now is None else now
        events = self._poll_retired(now) if self.retired else []
        current = self.current
        if current is None:
            events.extend(self._reopen(now))
        else:
            if self._rewritten(current):  # truncated, then regrown past the offset
                events.extend(self._restart(current))
            events.extend(self._read(current, now))
            if not current.behind:
                events.extend(self._check_name(now))
        if self.current is not None:
            events.extend(self._flush_stale_partial(self.current, now))
        return self._with_state(events)

    def timeout(self, now=None):
        """Return how long the caller may wait before the next poll is needed."""
        if self.behind:
            return 0.0
        now = time.monotonic() if now is None else now
        limit = self.waker.interval
        for each in self.open_files():
            if each.pending and each.pending_since is not None:
                limit = min(limit, each.pending_since + self.partial_timeout - now)
        for old in self.retired:
            limit = min(limit, self._release_at(old) - now)
        return max(0.0, limit)

    def idle(self, now=None):
        """Block until the file may have changed or a deadline of the engine is due."""
        self.waker.idle(self.timeout(now))

    async def aidle(self, now=None):
        """`idle()` for an asyncio loop: waits on the inotify descriptor, never spins."""
        await self.waker.aidle(self.timeout(now))

    def lag(self):
        """Return how many bytes of the open files are not read yet."""
        return sum(max(0, os.fstat(each.fd).st_size - each.offset)
                   for each in self.open_files())

    def skip_ahead(self, keep):
        """Jump to about `keep` bytes before the end; return how many lines were passed over.

        For a viewer too far behind: the lines skipped are counted exactly (newlines in the
        skipped bytes, the held unfinished line included) so they can be reported as dropped.
        Only the file followed by name is skipped; a rotated file in its grace is read on.
        """
        current = self.current
        if current is None:
            return 0
        target = os.fstat(current.fd).st_size - keep
        position, skipped, last_newline = current.offset, 0, -1
        while position < target:
            chunk = os.pread(current.fd, min(4 * CHUNK, target - position), position)
            if not chunk:
                break
            skipped += chunk.count(b"\n")
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                last_newline = position + newline
            position += len(chunk)
        if last_newline < 0:
            return 0
        current.offset = last_newline + 1
        current.pending = b""
        current.pending_since = None
        current.skipping = False
        current.remember_seen()
        return skipped

    def close(self):
        """Close the open files, their watches and (if it is the follower's own) the waker."""
        for old in self.retired:
            self._close_file(old)
        self.retired = []
        if self.current is not None:
            self._close_file(self.current)
            self.current = None
        self.waker.forget(self)
        if self.owns_waker:
            self.waker.close()

    def open_files(self):
        """The open files: the one followed by name, then the rotated ones in their grace."""
        return ([self.current] if self.current is not None else []) + self.retired

    def _with_state(self, events):
        """Queued notices, the events, then a warning event if the degraded state changed."""
        reason = self.waker.reason
        if reason != self.waker_reason:
            self.notes.append(say("polling", reason=reason, path=self.path) if reason
                              else say("inotify_back", path=self.path))
            self.waker_reason = reason
        events = [("notice", text) for text in self.notes] + events
        self.notes = []
        parts = [part for part in (self.problem, reason and f"{reason}; polling") if part]
        warning = joined(parts)
        if warning != self.warned:
            self.warned = warning
            events.append(("warning", warning))
        return events

    def _open(self):
        """Open the path (confined to the roots) as the current file; False if it cannot be."""
        try:
            fd = confinement.open_confined(self.path, self.real_roots)
        except (OSError, confinement.OutsideRoots) as exc:
            self.open_error = exc
            self.problem = problem_text(self.path, self._missing_reason())
            return False
        info = os.fstat(fd)
        self.current = OpenFile(fd, (info.st_dev, info.st_ino))
        self.problem = None
        self.open_error = None
        self.waker.watch_file(fd, self.current, self.path)
        self._watch_dirs()
        return True

    def _close_file(self, each):
        self.waker.unwatch_file(each)
        os.close(each.fd)
        each.fd = -1

    def _watch_dirs(self):
        """Watch the nearest existing directory of the name and of what it points at."""
        dirs = set()
        real = os.path.realpath(self.path)
        names = {self.path, real} if confinement.is_confined(real, self.real_roots) \
            else {self.path}
        for name in names:
            folder = os.path.dirname(name)
            while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
                folder = os.path.dirname(folder)
            dirs.add(folder)
        self.waker.watch_dirs(dirs, owner=self)

    def _missing_reason(self):
        exc = self.open_error
        if isinstance(exc, confinement.OutsideRoots):
            return str(exc)
        if isinstance(exc, confinement.NotRegularFile):
            return "is not a regular file"
        if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
            if not os.path.isdir(os.path.dirname(self.path)):
                return "does not exist, nor does its directory"
            return "does not exist"
        if isinstance(exc, PermissionError):
            return "cannot be read (permission denied)"
        return f"cannot be opened ({getattr(exc, 'strerror', None) or exc})"

    def _reopen(self, now):
        """While waiting: watch what exists of the path, then try to open it."""
        self._watch_dirs()
        if not self._open():
            reason = self._missing_reason()
            if reason == self.waiting:
                return []
            self.waiting = reason
            return [("notice", waiting_notice(self.path, reason))]
        self.waiting = None
        text = say("file_recreated" if self.lost else "file_appeared", path=self.path)
        return [("notice", text)] + self._read(self.current, now)

    def _backlog_start(self, current, size):
        """Return the offset where the last `backlog` lines begin, reading from the end.

        Like `tail -n N`, a long line counts as one line (it is later cut with the marker),
        so the scan goes back past it to find its start; blocks are read one at a time (at
        most 1 MiB held), and the scan goes back at most `backlog + 1` lines of the maximum
        length plus BACKLOG_SCAN_LIMIT bytes: a line too long to reach within that is
        skipped (the backlog then starts after it).
        """
        if size == 0:
            return 0
        fd = current.fd
        ends_with_newline = os.pread(fd, 1, size - 1) == b"\n"
        wanted = self.backlog + (1 if ends_with_newline else 0)
        floor = max(0, size - (self.backlog + 1) * (self.max_line + 2) - BACKLOG_SCAN_LIMIT)
        position, found, block_size = size, 0, BACKLOG_BLOCK
        while position > floor:
            step = min(block_size, position - floor)
            block_size = min(BACKLOG_MAX_BLOCK, block_size * 2)
            position -= step
            block = os.pread(fd, step, position)
            index = len(block)
            while True:
                index = block.rfind(b"\n", 0, index)
                if index < 0:
                    break
                found += 1
                if found == wanted:
                    return position + index + 1
        if position > 0:
            current.skipping = True
            self.notes.append(f"{self.path}: a line longer than the backlog scan reaches "
                              f"({BACKLOG_SCAN_LIMIT // (1024 * 1024)} MiB) was left out of "
                              "the backlog")
        return position

    def _read(self, current, now):
        """Read from the offset towards the end (at most MAX_READ_PER_POLL) into lines."""
        lines = []
        total = 0
        current.behind = False
        fd = current.fd
        while True:
            if total >= MAX_READ_PER_POLL:
                current.behind = True
                break
            chunk = os.pread(fd, CHUNK, current.offset)
            if not chunk:
                break
            current.offset += len(chunk)
            current.seen = (current.seen + chunk[-SEEN_BYTES:])[-SEEN_BYTES:]
            total += len(chunk)
            self._feed(current, chunk, lines, now)
            if len(chunk) < CHUNK:
                break
        if total:
            current.active_at = now
        return [("lines", lines)] if lines else []

    def _feed(self, current, chunk, out, now):
        """Add the whole lines of `pending + chunk` to `out`; keep the unfinished rest."""
        if current.skipping:
            cut = chunk.find(b"\n")
            if cut < 0:
                return
            chunk = chunk[cut + 1:]
            current.skipping = False
        if current.pending:
            chunk = current.pending + chunk
        end = chunk.rfind(b"\n") + 1
        if end:
            out.extend(self._lines(chunk if end == len(chunk) else chunk[:end]))
            current.pending = chunk[end:]
            current.pending_since = now if current.pending else None
        else:
            if not current.pending:
                current.pending_since = now
            current.pending = chunk
        if len(current.pending) > self.max_line:
            out.append(self._cut(current.pending))
            current.pending = b""
            current.pending_since = None
            current.skipping = True

    def _lines(self, block):
        """Decode a block of whole lines (ending in a newline) into a list of strings."""
        if b"\r" in block:
            block = block.replace(b"\r\n", b"\n")
        if len(block) > self.max_line and self._has_long_line(block):
            parts = block.split(b"\n")
            parts.pop()
            return [self._cut(raw) if len(raw) > self.max_line
                    else raw.decode(self.encoding, "replace") for raw in parts]
        if self.whole_decode:
            lines = block.decode(self.encoding, "replace").split("\n")
            lines.pop()
            return lines
        parts = block.split(b"\n")
        parts.pop()
        return [raw.decode(self.encoding, "replace") for raw in parts]

    def _has_long_line(self, block):
        """Whether some line of the block is over the limit, in a few C-level jumps."""
        position, end = 0, len(block)
        while end - position > self.max_line:
            newline = block.rfind(b"\n", position, position + self.max_line + 1)
            if newline < 0:
                return True
            position = newline + 1
        return False

    def _cut(self, raw):
        """Decode the first `max_line` bytes of a long line and add the marker."""
        decoder = codecs.getincrementaldecoder(self.encoding)("replace")
        text = decoder.decode(raw[: self.max_line], final=False)
        return text + CUT_MARKER.format(limit=self.max_line)

    def _flush_partial(self, current):
        """Deliver the held unfinished line now."""
        raw, current.pending, current.pending_since = current.pending, b"", None
        if not raw:
            return []
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        return [("lines", [raw.decode(self.encoding, "replace")])]

    def _flush_stale_partial(self, current, now):
        if current.pending and current.pending_since is not None \
                and now - current.pending_since >= self.partial_timeout:
            return self._flush_partial(current)
        return []

    def _restart(self, current):
        """After a truncation: deliver the held line, then read from the start."""
        events = self._flush_partial(current)
        current.offset = 0
        current.seen = b""
        current.skipping = False
        events.append(("notice", say("file_truncated", path=self.path)))
        return events

    def _rewritten(self, current):
        """Whether the bytes just before the offset changed: truncated, then regrown past it."""
        if not current.seen:
            return False
        seen = current.seen
        return os.pread(current.fd, len(seen), current.offset - len(seen)) != seen

    def _release_at(self, old):
        """When a rotated file is let go: quiet for rotate_wait, at most 10 × that after."""
        return min(old.active_at + self.rotate_wait,
                   old.retired_at + GRACE_LIMIT_FACTOR * self.rotate_wait)

    def _release(self, old):
        """Close a file let go; remember (identity, offset) of the last few released."""
        self.released = self.released[-(RELEASED_KEPT - 1):] + [(old.identity, old.offset)]
        self._close_file(old)

    def _poll_retired(self, now):
        """Read the rotated files in their grace; let go of those quiet long enough."""
        events = []
        for old in list(self.retired):
            events.extend(self._read(old, now))
            events.extend(self._flush_stale_partial(old, now))
            if not old.behind and now >= self._release_at(old):
                events.extend(self._flush_partial(old))
                quiet = now - old.active_at >= self.rotate_wait
                events.append(("notice", say(
                    "rotated_quiet", path=self.path, seconds=f"{self.rotate_wait:g}") if quiet
                    else say("rotated_limit", path=self.path,
                             seconds=f"{GRACE_LIMIT_FACTOR * self.rotate_wait:g}")))
                self._release(old)
                self.retired.remove(old)
        return events

    def _retire(self, current, now):
        """Keep reading the old file for rotate_wait (or close it at once without a grace)."""
        self.current = None
        if self.rotate_wait <= 0:
            events = self._flush_partial(current)
            self._release(current)
            return events
        current.retired_at = current.active_at = now
        self.retired.append(current)
        return self._cap_retired(now)

    def _cap_retired(self, now):
        """Keep at most ROTATED_MAX files in their grace: the oldest are read to their end
        (as far as MAX_DRAIN_BYTES) and let go, so a burst of renames cannot hold descriptors
        and inotify watches without bound."""
        events = []
        while len(self.retired) > ROTATED_MAX:
            old = self.retired.pop(0)
            for _ in range(MAX_DRAIN_BYTES // MAX_READ_PER_POLL):
                events.extend(self._read(old, now))
                if not old.behind:
                    break
            events.extend(self._flush_partial(old))
            if old.behind:
                left = os.fstat(old.fd).st_size - old.offset
                text = say("rotated_many_left", path=self.path, count=ROTATED_MAX, size=left)
            else:
                text = say("rotated_many", path=self.path, count=ROTATED_MAX)
            events.append(("notice", text))
            self._release(old)
        return events

    def _check_name(self, now):
        """At the end of the open file: compare it with the name (rotation, truncation)."""
        current = self.current
        try:
            info = os.stat(self.path)
        except OSError:
            info = None
        if info is not None and (info.st_dev, info.st_ino) == current.identity:
            if info.st_size >= current.offset:
                return []
            return self._restart(current) + self._read(current, now)
        events = self._read(current, now)
        if current.behind:
            return events
        old_links = os.fstat(current.fd).st_nlink
        events.extend(self._retire(current, now))
        self.lost = True
        grace = {"seconds": f"{self.rotate_wait:g}"} if self.rotate_wait > 0 else None
        if not self._open():
            self._watch_dirs()
            self.waiting = self._missing_reason()
            if self.waiting != "does not exist":
                text = say("file_removed_other", path=self.path, reason=self.waiting)
            else:
                text = say("file_removed_grace", path=self.path, **grace) if grace else \
                    say("file_removed", path=self.path)
            events.append(("notice", text))
            return events
        if os.path.islink(self.path):
            code = "file_relinked"
        elif old_links:
            code = "file_rotated"
        else:
            code = "file_recreated"
        events.append(("notice", say(f"{code}_grace", path=self.path, **grace) if grace
                       else say(code, path=self.path)))
        return events + self._read(self.current, now)
