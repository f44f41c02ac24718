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
        get = data.get
        second = realtime_usec // 1_000_000
        head = self._stamp if second == self._second else self.stamp(realtime_usec)
        host = get("_HOSTNAME")
        if host:
            head += " " + (host if type(host) is str else first(host))
        ident = get("SYSLOG_IDENTIFIER") or get("_COMM") or "unknown"
        pid = get("_PID") or get("SYSLOG_PID")
        if type(ident) is list or type(pid) is list:
            ident, pid = first(ident), first(pid)
        head += f" {ident}[{pid}]: " if pid else f" {ident}: "
        message = get("MESSAGE") or ""
        if type(message) is list:
            message = message[0]
        if "\n" in message:
            message = message.rstrip("\n").replace("\n", "\n" + " " * len(head))
        text = head + message
        if len(text) * 4 > self.max_line and len(text.encode("utf-8")) > self.max_line:
            cut = text.encode("utf-8")[:self.max_line].decode("utf-8", "ignore")
            text = cut + self.cut_marker
        return text


LEVEL_OF = {str(priority): name for priority, name in enumerate(LEVELS)}


def level(data):
    """The level of an entry from its PRIORITY (None when it has none or a strange one)."""
    raw = data.get("PRIORITY")
    if type(raw) is list:
        raw = raw[0]
    return LEVEL_OF.get(raw)
