"""The `tail -n N -F` engine: pure file reading, no Celery or Channels.

A Follower reads the last N lines of a file, then returns what is appended on each poll,
following the file by name: after a rename rotation the old file is read to its end before
the new one is opened; truncation restarts at the new start; a missing file is waited for.
Lines come out whole and decoded; lines over the byte limit are cut with a marker.
"""

import os

CHUNK = 1024 * 1024
MAX_READ_PER_POLL = 8 * CHUNK
BACKLOG_BLOCK = 64 * 1024
CUT_MARKER = " [… line cut: longer than {limit} bytes]"


class Follower:
    """Follows one path by name; `start()` gives the backlog, `poll()` what is new."""

    def __init__(self, path, backlog=50, encoding="utf-8", max_line=64 * 1024,
                 partial_timeout=0.5):
        self.path = path
        self.backlog = backlog
        self.encoding = encoding
        self.max_line = max_line
        self.partial_timeout = partial_timeout
        self.file = None
        self.identity = None
        self.pending = b""
        self.skipping = False
        self.pending_since = None
        self.waiting_notice_sent = False

    def start(self):
        """Open the file and return the backlog events: ('lines', [...]) and ('notice', str)."""
        events = []
        if not self._open():
            events.append(("notice", f"{self.path} does not exist yet; waiting for it"))
            self.waiting_notice_sent = True
            return events
        size = os.fstat(self.file.fileno()).st_size
        start = self._backlog_start(size) if self.backlog else size
        self.file.seek(start)
        if not self.backlog:
            self._hold_tail_partial(size)
            return events
        lines = self._read_available(now=None)
        events.extend(lines)
        return events

    def poll(self, now):
        """Return the events since the last call; `now` is a monotonic time in seconds."""
        events = []
        if self.file is None:
            if self._open():
                events.append(("notice", f"{self.path} appeared; following it"))
                self.waiting_notice_sent = False
                events.extend(self._read_available(now))
            return events
        if self.pending and self.pending_since is None:
            self.pending_since = now
        events.extend(self._read_available(now))
        if events:
            return events
        events.extend(self._check_name(now))
        events.extend(self._flush_stale_partial(now))
        return events

    def close(self):
        """Close the open file, if any."""
        if self.file is not None:
            self.file.close()
            self.file = None

    def _open(self):
        try:
            handle = open(self.path, "rb")
        except (FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError):
            return False
        stat = os.fstat(handle.fileno())
        self.file = handle
        self.identity = (stat.st_dev, stat.st_ino)
        self.pending = b""
        self.skipping = False
        return True

    def _backlog_start(self, size):
        """Return the offset where the last `backlog` complete lines begin."""
        position = size
        newlines = 0
        self.file.seek(max(0, size - 1))
        ends_with_newline = size > 0 and self.file.read(1) == b"\n"
        wanted = self.backlog + (1 if ends_with_newline else 0)
        while position > 0:
            step = min(BACKLOG_BLOCK, position)
            position -= step
            self.file.seek(position)
            block = self.file.read(step)
            index = len(block)
            while True:
                index = block.rfind(b"\n", 0, index)
                if index < 0:
                    break
                newlines += 1
                if newlines == wanted:
                    return position + index + 1
        return 0

    def _hold_tail_partial(self, size):
        """At N=0, start after the last newline so a half-written line is completed later."""
        self.file.seek(max(0, size - BACKLOG_BLOCK))
        tail = self.file.read()
        cut = tail.rfind(b"\n")
        if cut >= 0 and cut < len(tail) - 1:
            self.file.seek(size - (len(tail) - cut - 1))
        else:
            self.file.seek(size)

    def _read_available(self, now):
        lines = []
        total = 0
        while total < MAX_READ_PER_POLL:
            chunk = self.file.read(CHUNK)
            if not chunk:
                break
            total += len(chunk)
            lines.extend(self._split(chunk))
        if total and self.pending:
            self.pending_since = now
        return [("lines", lines)] if lines else []

    def _split(self, chunk):
        """Turn bytes into whole decoded lines, keeping an unfinished line pending."""
        data = self.pending + chunk
        parts = data.split(b"\n")
        self.pending = parts.pop()
        out = []
        for raw in parts:
            if self.skipping:
                self.skipping = False
                continue
            out.append(self._decode(raw))
        if len(self.pending) > self.max_line:
            if not self.skipping:
                out.append(self._decode(self.pending))
            self.pending = b""
            self.skipping = True
        return out

    def _decode(self, raw):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if len(raw) > self.max_line:
            text = raw[: self.max_line].decode(self.encoding, errors="replace")
            return text + CUT_MARKER.format(limit=self.max_line)
        return raw.decode(self.encoding, errors="replace")

    def _flush_stale_partial(self, now):
        if self.pending and now is not None and self.pending_since is not None \
                and now - self.pending_since >= self.partial_timeout:
            line = self._decode(self.pending)
            self.pending = b""
            self.pending_since = None
            return [("lines", [line])]
        return []

    def _check_name(self, now):
        """Compare the path with the open file: rotation, truncation, deletion."""
        try:
            stat = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            events = self._read_available(now)
            events.extend(self._flush_stale_partial(float("inf")))
            self.close()
            events.append(("notice", f"{self.path} was removed or renamed; waiting for it "
                                     "to reappear"))
            return events
        if (stat.st_dev, stat.st_ino) != self.identity:
            events = self._read_available(now)
            events.extend(self._flush_stale_partial(float("inf")))
            self.close()
            if self._open():
                events.append(("notice", f"{self.path} was rotated; following the new file"))
                events.extend(self._read_available(now))
            return events
        if stat.st_size < self.file.tell():
            self.file.seek(0)
            self.pending = b""
            self.skipping = False
            events = [("notice", f"{self.path} was truncated; reading from its new start")]
            events.extend(self._read_available(now))
            return events
        return []
