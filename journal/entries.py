"""Journal entries as lines: the `journalctl -o short-iso` format and the level of a priority."""

import time

from tailf.follow import CUT_MARKER

# docs/protocol.md: priority <= 3 is an error, 4 a warning; 5 and 6 are information, 7 debugging.
LEVELS = ("error", "error", "error", "error", "warn", "info", "info", "debug")


def text(fields, name):
    """A field's value as str (UTF-8, invalid bytes replaced), None when the entry has none.

    `fields` are an entry's fields as libsystemd gives them (bytes, or a list of bytes for a
    field given several times); journalctl shows the last of those, and so does this.
    """
    raw = fields.get(name)
    if raw is None:
        return None
    if type(raw) is list:
        raw = raw[-1]
    return raw.decode("utf-8", "replace")


class ShortIso:
    """Formats entries like `journalctl -o short-iso`: `TIME HOST IDENT[PID]: MESSAGE`.

    TIME is the entry's __REALTIME_TIMESTAMP in the process's time zone (Django sets it to
    TIME_ZONE, UTC), as `2026-12-06T15:04:05+0000`; IDENT is SYSLOG_IDENTIFIER, else _COMM,
    else "unknown"; PID is _PID, else SYSLOG_PID. The lines of a multi-line message after the
    first are indented under the message, as journalctl does. A line longer than `max_line`
    bytes is cut.
    """

    def __init__(self, max_line=64 * 1024):
        self.max_line = max_line
        self.cut_marker = CUT_MARKER.format(limit=max_line)
        self._second = None
        self._stamp = ""

    def stamp(self, realtime_usec):
        """The short-iso time of a timestamp in microseconds (one strftime per second)."""
        second = realtime_usec // 1_000_000
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(second))
        return self._stamp

    def line(self, fields, realtime_usec):
        """The line of one entry, from its fields (see `text`)."""
        second = realtime_usec // 1_000_000
        head = self._stamp if second == self._second else self.stamp(realtime_usec)
        host = text(fields, "_HOSTNAME")
        if host:
            head += " " + host
        ident = text(fields, "SYSLOG_IDENTIFIER") or text(fields, "_COMM") or "unknown"
        pid = text(fields, "_PID") or text(fields, "SYSLOG_PID")
        head += f" {ident}[{pid}]: " if pid else f" {ident}: "
        message = text(fields, "MESSAGE") or ""
        if "\n" in message:
            message = message.rstrip("\n").replace("\n", "\n" + " " * len(head))
        shown = head + message
        if len(shown) * 4 > self.max_line and len(shown.encode("utf-8")) > self.max_line:
            cut = shown.encode("utf-8")[:self.max_line].decode("utf-8", "ignore")
            shown = cut + self.cut_marker
        return shown


LEVEL_OF = {str(priority).encode(): name for priority, name in enumerate(LEVELS)}


def level(fields):
    """The level of an entry from its PRIORITY (None when it has none or a strange one)."""
    raw = fields.get("PRIORITY")
    if type(raw) is list:
        raw = raw[-1]
    return LEVEL_OF.get(raw)
