"""The `tail -n N -F` engine: pure file reading, no Celery or Channels.

A Follower reads the last N lines of a file, then returns what is appended on each poll,
following the file by name: after a rename rotation the old file is read to its end before
the new one is opened; truncation restarts at the new start; a missing file (or directory)
is waited for, and a symlink is followed to whatever it points at now. Lines come out whole
and decoded, in large batches; lines over the byte limit are cut with a marker; a last line
without newline is held, and delivered on its own after `partial_timeout` seconds (the rest
of that line then comes as a line of its own).

Between polls, `idle()` (or `aidle()` on an asyncio loop) blocks until inotify reports a
change, a name check is due (every second) or a held partial line times out; where inotify
is unavailable or fails, it polls instead.
"""

import codecs
import os
import stat
import time

from tailf import wake

CHUNK = 1024 * 1024
MAX_READ_PER_POLL = 8 * CHUNK
BACKLOG_BLOCK = 64 * 1024
SEEN_BYTES = 64
CUT_MARKER = " [… line cut: longer than {limit} bytes]"
WHOLE_DECODE = {"utf-8", "ascii", "latin-1", "iso8859-1"}


def check_encoding(encoding):
    """Raise ValueError unless lines in this encoding can be split on b"\\n" (UTF-16 cannot)."""
    codecs.lookup(encoding)
    if "\n".encode(encoding) != b"\n":
        raise ValueError(f"encoding {encoding!r} does not write a newline as one "
                         "'\\n' byte; lines cannot be split")


class Follower:
    """Follows one path by name; `start()` gives the backlog, `poll()` what is new.

    Both return events: ("lines", [str, ...]) and ("notice", str), in file order.
    """

    def __init__(self, path, backlog=50, encoding="utf-8", max_line=64 * 1024,
                 partial_timeout=0.5, waker=None):
        check_encoding(encoding)
        self.path = path
        self.backlog = backlog
        self.encoding = encoding
        self.max_line = max_line
        self.partial_timeout = partial_timeout
        self.whole_decode = codecs.lookup(encoding).name in WHOLE_DECODE
        self.fd = None
        self.identity = None
        self.offset = 0
        self.seen = b""
        self.pending = b""
        self.pending_since = None
        self.skipping = False
        self.behind = False
        self.waiting = None
        self.lost = False
        self.open_error = None
        self.notes = []
        self.waker = waker if waker is not None else wake.open_waker()
        if getattr(self.waker, "reason", ""):
            self.notes.append(f"{self.waker.reason}; checking {self.path} by polling")

    def start(self, now=None):
        """Fix the starting position; return the backlog and any notice."""
        now = time.monotonic() if now is None else now
        self._watch_dirs()
        if not self._open():
            self.waiting = self._missing_reason()
            return self._take_notes() + [("notice", f"{self.path} {self.waiting}; waiting "
                                                    "for it")]
        size = os.fstat(self.fd).st_size
        self.offset = self._backlog_start(size) if self.backlog else size
        self.seen = os.pread(self.fd, min(SEEN_BYTES, self.offset),
                             self.offset - min(SEEN_BYTES, self.offset))
        return self._take_notes() + self._read(now)

    def poll(self, now=None):
        """Return the events since the last call; `now` is a monotonic time in seconds."""
        now = time.monotonic() if now is None else now
        self.waker.drain()
        events = []
        if self.fd is None:
            events.extend(self._reopen(now))
        else:
            if self._rewritten():  # truncated, then regrown past the offset since last look
                events.extend(self._restart())
            events.extend(self._read(now))
            if not self.behind:
                events.extend(self._check_name(now))
        events.extend(self._flush_stale_partial(now))
        events = self._take_notes() + events
        self.waker.settle(bool(events))
        return events

    def timeout(self, now=None):
        """Return how long the caller may wait before the next poll is needed."""
        if self.behind:
            return 0.0
        now = time.monotonic() if now is None else now
        limit = self.waker.interval
        if self.pending and self.pending_since is not None:
            limit = min(limit, self.pending_since + self.partial_timeout - now)
        return max(0.0, limit)

    def idle(self, now=None):
        """Block until the file may have changed or a deadline of the engine is due."""
        self.waker.idle(self.timeout(now))

    async def aidle(self, now=None):
        """`idle()` for an asyncio loop: waits on the inotify descriptor, never spins."""
        await self.waker.aidle(self.timeout(now))

    def lag(self):
        """Return how many bytes of the open file are not read yet."""
        if self.fd is None:
            return 0
        return max(0, os.fstat(self.fd).st_size - self.offset)

    def skip_ahead(self, keep):
        """Jump to about `keep` bytes before the end; return how many lines were passed over.

        For a viewer too far behind: the lines skipped are counted exactly (newlines in the
        skipped bytes, the held unfinished line included) so they can be reported as dropped.
        """
        if self.fd is None:
            return 0
        target = os.fstat(self.fd).st_size - keep
        position, skipped, last_newline = self.offset, 0, -1
        while position < target:
            chunk = os.pread(self.fd, min(4 * CHUNK, target - position), position)
            if not chunk:
                break
            skipped += chunk.count(b"\n")
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                last_newline = position + newline
            position += len(chunk)
        if last_newline < 0:
            return 0
        self.offset = last_newline + 1
        self.pending = b""
        self.pending_since = None
        self.skipping = False
        self.seen = os.pread(self.fd, min(SEEN_BYTES, self.offset),
                             self.offset - min(SEEN_BYTES, self.offset))
        return skipped

    def close(self):
        """Close the open file and the wake-up source."""
        self._close_file()
        self.waker.close()

    def _take_notes(self):
        notes, self.notes = self.notes, []
        return [("notice", text) for text in notes]

    def _open(self):
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            self.open_error = exc
            return False
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            self.open_error = None
            return False
        self.fd = fd
        self.identity = (info.st_dev, info.st_ino)
        self.offset = 0
        self.seen = b""
        self.pending = b""
        self.pending_since = None
        self.skipping = False
        self._guard(self.waker.watch_file, fd, self.identity, self.path)
        self._watch_dirs()
        return True

    def _close_file(self):
        if self.fd is not None:
            self._guard(self.waker.unwatch_file)
            os.close(self.fd)
            self.fd = None
            self.identity = None

    def _watch_dirs(self):
        """Watch the nearest existing directory of the name and of what it points at."""
        dirs = set()
        for name in {self.path, os.path.realpath(self.path)}:
            folder = os.path.dirname(name)
            while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
                folder = os.path.dirname(folder)
            dirs.add(folder)
        self._guard(self.waker.watch_dirs, dirs)

    def _guard(self, call, *args):
        """Run a waker call; when inotify fails (e.g. watch limit), fall back to polling."""
        try:
            call(*args)
        except OSError as exc:
            self.waker.close()
            self.waker = wake.PollWaker(f"inotify failed ({exc.strerror or exc})")
            self.notes.append(f"{self.waker.reason}; checking {self.path} by polling")

    def _missing_reason(self):
        exc = self.open_error
        if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
            if not os.path.isdir(os.path.dirname(self.path)):
                return "does not exist, nor does its directory"
            return "does not exist"
        if isinstance(exc, PermissionError):
            return "cannot be read (permission denied)"
        if exc is None:
            return "is not a regular file"
        return f"cannot be opened ({exc.strerror or exc})"

    def _reopen(self, now):
        """While waiting: watch what exists of the path, then try to open it."""
        self._watch_dirs()
        if not self._open():
            reason = self._missing_reason()
            if reason == self.waiting:
                return []
            self.waiting = reason
            return [("notice", f"{self.path} {reason}; waiting for it")]
        self.waiting = None
        if self.lost:
            text = f"{self.path} was recreated; following the new file"
        else:
            text = f"{self.path} appeared; following it"
        return [("notice", text)] + self._read(now)

    def _backlog_start(self, size):
        """Return the offset where the last `backlog` lines begin, reading from the end.

        The scan goes back at most as far as `backlog + 1` lines of the maximum length can
        reach, so a huge file without newlines is not read whole; a line cut off by that
        bound is skipped.
        """
        if size == 0:
            return 0
        ends_with_newline = os.pread(self.fd, 1, size - 1) == b"\n"
        wanted = self.backlog + (1 if ends_with_newline else 0)
        floor = max(0, size - (self.backlog + 1) * (self.max_line + 2))
        position, found = size, 0
        while position > floor:
            step = min(BACKLOG_BLOCK, position - floor)
            position -= step
            block = os.pread(self.fd, step, position)
            index = len(block)
            while True:
                index = block.rfind(b"\n", 0, index)
                if index < 0:
                    break
                found += 1
                if found == wanted:
                    return position + index + 1
        if position > 0:
            self.skipping = True
        return position

    def _read(self, now):
        """Read from the offset towards the end (at most MAX_READ_PER_POLL) into lines."""
        lines = []
        total = 0
        self.behind = False
        while True:
            if total >= MAX_READ_PER_POLL:
                self.behind = True
                break
            chunk = os.pread(self.fd, CHUNK, self.offset)
            if not chunk:
                break
            self.offset += len(chunk)
            self.seen = (self.seen + chunk[-SEEN_BYTES:])[-SEEN_BYTES:]
            total += len(chunk)
            self._feed(chunk, lines, now)
            if len(chunk) < CHUNK:
                break
        return [("lines", lines)] if lines else []

    def _feed(self, chunk, out, now):
        """Add the whole lines of `pending + chunk` to `out`; keep the unfinished rest."""
        if self.skipping:
            cut = chunk.find(b"\n")
            if cut < 0:
                return
            chunk = chunk[cut + 1:]
            self.skipping = False
        if self.pending:
            chunk = self.pending + chunk
        end = chunk.rfind(b"\n") + 1
        if end:
            out.extend(self._lines(chunk if end == len(chunk) else chunk[:end]))
            self.pending = chunk[end:]
            self.pending_since = now if self.pending else None
        else:
            if not self.pending:
                self.pending_since = now
            self.pending = chunk
        if len(self.pending) > self.max_line:
            out.append(self._cut(self.pending))
            self.pending = b""
            self.pending_since = None
            self.skipping = True

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

    def _flush_partial(self):
        """Deliver the held unfinished line now."""
        raw, self.pending, self.pending_since = self.pending, b"", None
        if not raw:
            return []
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        return [("lines", [raw.decode(self.encoding, "replace")])]

    def _flush_stale_partial(self, now):
        if self.pending and self.pending_since is not None \
                and now - self.pending_since >= self.partial_timeout:
            return self._flush_partial()
        return []

    def _restart(self):
        """After a truncation: deliver the held line, then read from the start."""
        events = self._flush_partial()
        self.offset = 0
        self.seen = b""
        self.skipping = False
        events.append(("notice", f"{self.path} was truncated; reading from its new start"))
        return events

    def _rewritten(self):
        """Whether the bytes just before the offset changed: truncated, then regrown past it."""
        if not self.seen:
            return False
        return os.pread(self.fd, len(self.seen), self.offset - len(self.seen)) != self.seen

    def _check_name(self, now):
        """At the end of the open file: compare it with the name (rotation, truncation)."""
        try:
            info = os.stat(self.path)
        except OSError:
            info = None
        if info is not None and (info.st_dev, info.st_ino) == self.identity:
            if info.st_size >= self.offset:
                return []
            return self._restart() + self._read(now)
        events = self._read(now)
        if self.behind:
            return events
        events.extend(self._flush_partial())
        old_links = os.fstat(self.fd).st_nlink
        self._close_file()
        self.lost = True
        if not self._open():
            self._watch_dirs()
            self.waiting = self._missing_reason()
            events.append(("notice", f"{self.path} was removed or renamed ({self.waiting} "
                                     "now); waiting for it to reappear"))
            return events
        if os.path.islink(self.path):
            text = f"{self.path} now points to another file; following it"
        elif old_links:
            text = f"{self.path} was rotated; the old file was read to its end, following " \
                   "the new one"
        else:
            text = f"{self.path} was recreated; following the new file"
        events.append(("notice", text))
        return events + self._read(now)
