"""Journal entries as lines: the `journalctl -o short-iso` format and the level of a priority."""

import time

from tailf.follow import CUT_MARKER

# SPEC: priority <= 3 is an error, 4 a warning; 5 and 6 are information, 7 debugging.
LEVELS = ("error", "error", "error", "error", "warn", "info", "info", "debug")


def first(value):
    """A field's value; journalctl shows the first of a field given several times."""
    return value[0] if isinstance(value, list) else value


class ShortIso:
    """Formats entries like `journalctl -o short-iso`: `TIME HOST IDENT[PID]: MESSAGE`.

    TIME is the entry's __REALTIME_TIMESTAMP in the process's time zone (Django sets it to
    TIME_ZONE, UTC), as `2026-12-06T15:04:05+0000`; IDENT is SYSLOG_IDENTIFIER, else _COMM, else "unknown"; PID is
    _PID, else SYSLOG_PID. The lines of a multi-line message after the first are indented
    under the message, as journalctl does. A line longer than `max_line` bytes is cut.
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

    def line(self, data, realtime_usec):
        """The line of one entry (its fields as a dict of str, or lists of str)."""
        head = self.stamp(realtime_usec)
        host = first(data.get("_HOSTNAME"))
        if host:
            head += " " + host
        ident = first(data.get("SYSLOG_IDENTIFIER")) or first(data.get("_COMM")) or "unknown"
        pid = first(data.get("_PID")) or first(data.get("SYSLOG_PID"))
        head += f" {ident}[{pid}]: " if pid else f" {ident}: "
        message = first(data.get("MESSAGE")) or ""
        if "\n" in message:
            message = message.rstrip("\n").replace("\n", "\n" + " " * len(head))
        text = head + message
        if len(text) * 4 > self.max_line and len(text.encode("utf-8")) > self.max_line:
            cut = text.encode("utf-8")[:self.max_line].decode("utf-8", "ignore")
            text = cut + self.cut_marker
        return text


def level(data):
    """The level of an entry from its PRIORITY (None when it has none or a strange one)."""
    raw = first(data.get("PRIORITY"))
    if raw is not None and len(raw) == 1 and "0" <= raw <= "7":
        return LEVELS[int(raw)]
    return None
