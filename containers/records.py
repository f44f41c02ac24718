"""Container log records: the CRI format and Docker's json-file, parsed and joined (pure).

A runtime writes one record per stored line. CRI (containerd, CRI-O, conmon, kubelet):
`TIME STREAM TAG MESSAGE`, TIME in RFC 3339 (`Z` or an offset), STREAM `stdout`/`stderr`, TAG
`P` (a part: more follows) or `F` (the last part), optionally with more `:`-separated tags.
Docker json-file: `{"log": "...\\n", "stream": "stdout", "time": "..."}`, where a `log`
without a trailing newline is a part (dockerd splits lines at 16 KiB).

A parser joins the parts of each output stream into one line, at most `max_line` characters
(the rest of an over-long chain is cut with the file engine's marker and left out), and turns
each line into a Record. A stored line that is not a record (a malformed or foreign line) is
delivered whole, as stdout, so nothing is lost.

The line shown is `TIME MESSAGE`: the runtime's own timestamp (of the last part), then the
message; `grep` and history search match the message alone. TIME is taken as the runtime
wrote it (RFC 3339: a token of digits, `T`, `Z`, `:`, `.`, `+`, `-`), not re-parsed.
"""

import bisect
import json
import re
from typing import NamedTuple

from tailf.follow import CUT_MARKER

STREAMS = ("stdout", "stderr")
STAMP_CHARS = "0123456789TZ:.+-"
CRI_LINE = re.compile(r"([0-9TZ:.+\-]+) (stdout|stderr) ([A-Za-z:]+)(?: (.*)|)\Z", re.DOTALL)
DOCKER_TIME = re.compile(r"[0-9TZ:.+\-]+\Z")
NOT_STAMP = str.maketrans("", "", STAMP_CHARS)


class Record(NamedTuple):
    """One whole line of a container: its output stream, the line shown, the message."""

    stream: str
    line: str
    message: str


class Run(NamedTuple):
    """Lines of one output stream, in order: what a follower sends as one frame's lines.

    `messages`: the message of each line, or None when every line is `TIME MESSAGE` with a TIME
    without spaces (the message is then what follows the first space).
    """

    stream: str
    lines: list
    messages: list = None

    def message_list(self):
        """The message of each line (what `grep` matches)."""
        if self.messages is not None:
            return self.messages
        return [line.partition(" ")[2] for line in self.lines]


def runs_of(records):
    """Group Records into Runs of consecutive lines of one output stream."""
    runs = []
    for record in records:
        if not runs or runs[-1].stream != record.stream:
            runs.append(Run(record.stream, [], []))
        runs[-1].lines.append(record.line)
        runs[-1].messages.append(record.message)
    return runs


def merge_streams(runs, limit=None):
    """At most one run per output stream when there are more than `limit` runs (None: keep).

    A container writing stdout and stderr lines in quick turns would otherwise give one tiny
    frame per turn, and the frame window would hold the stream to a few thousand lines/s. So
    when one read (a few milliseconds of output at that rate) alternates more than `limit`
    times, its stdout lines and its stderr lines each go out together, the stream seen first
    first; each stream keeps its own order (as the runtime reads them: from two pipes). A
    container that alternates less keeps its exact order.
    """
    if limit is None or len(runs) <= limit:
        return runs
    merged = {}
    for run in runs:
        merged.setdefault(run.stream, []).append(run)
    out = []
    for stream, parts in merged.items():
        lines = [line for part in parts for line in part.lines]
        if all(part.messages is None for part in parts):
            out.append(Run(stream, lines))
        else:
            out.append(Run(stream, lines, [m for part in parts for m in part.message_list()]))
    return out


def split_runs(out, err, err_at, limit=None):
    """The Runs of a batch of whole `TIME MESSAGE` lines, given per output stream.

    `out` and `err`: the stdout and the stderr lines, each in order; `err_at[k]`: how many
    stdout lines came before the k-th stderr line (so the order is known without a run per
    turn). The same as `merge_streams(runs, limit)` of the batch's runs in order.
    """
    if not err:
        return [Run("stdout", out)] if out else []
    if not out:
        return [Run("stderr", err)]
    groups = len(set(err_at))  # runs of stderr lines: err_at does not decrease
    count = 2 * groups - 1 + (err_at[0] > 0) + (err_at[-1] < len(out))
    if limit is not None and count > limit:
        first = "stderr" if err_at[0] == 0 else "stdout"
        both = {"stdout": Run("stdout", out), "stderr": Run("stderr", err)}
        return [both[first], both["stderr" if first == "stdout" else "stdout"]]
    runs, taken, start = [], 0, 0
    while start < len(err_at):  # at most `limit` turns: one C-level search each
        at = err_at[start]
        end = bisect.bisect_right(err_at, at, start)
        if at > taken:
            runs.append(Run("stdout", out[taken:at]))
        runs.append(Run("stderr", err[start:end]))
        taken, start = at, end
    if taken < len(out):
        runs.append(Run("stdout", out[taken:]))
    return runs


def stamps_valid(stamps):
    """Whether every timestamp is a non-empty run of RFC 3339 characters (digits, `T`, `Z`,
    `:`, `.`, `+`, `-`; not a newline), as `parse()` requires: one C-level pass for them all."""
    return all(stamps) and not "".join(stamps).translate(NOT_STAMP)


class Joiner:
    """The unfinished parts of one output stream, bounded at `max_line` characters."""

    __slots__ = ("parts", "size", "cut", "since", "stamp")

    def __init__(self):
        self.parts = []
        self.size = 0
        self.cut = False
        self.since = None
        self.stamp = ""

    def add(self, text, max_line, now=None):
        """Add a part (what is beyond the cap is dropped and marked once)."""
        if not self.parts and now is not None:
            self.since = now
        if self.cut:
            return
        room = max_line - self.size
        if len(text) > room:
            self.parts.append(text[:room] + CUT_MARKER.format(limit=max_line))
            self.cut = True
            self.size = max_line
            return
        self.parts.append(text)
        self.size += len(text)

    def take(self, last, max_line):
        """Return the joined line with its last part; start afresh."""
        self.add(last, max_line)
        text = "".join(self.parts)
        self.parts, self.size, self.cut, self.since = [], 0, False, None
        return text


class Parser:
    """Turns stored lines of one log file into Records, joining parts (per output stream)."""

    def __init__(self, max_line=64 * 1024):
        self.max_line = max_line
        self.joiners = {name: Joiner() for name in STREAMS}

    def feed(self, lines, now=0.0):
        """Return the Records the stored `lines` complete (parts are held for later lines)."""
        out = []
        for line in lines:
            parsed = self.parse(line)
            if parsed is None:
                out.append(Record("stdout", line, line))
                continue
            stamp, stream, message, last = parsed
            joiner = self.joiners[stream]
            if not last:
                joiner.add(message, self.max_line, now)
                joiner.stamp = stamp
                continue
            message = joiner.take(message, self.max_line)
            out.append(Record(stream, f"{stamp} {message}", message))
        return out

    def feed_runs(self, lines, now=0.0, limit=None):
        """`feed()` grouped into Runs (see `merge_streams` for `limit`); whole single-part
        records take a fast path.

        The fast path handles a batch made only of whole records (no part held or coming, no
        malformed line) in one tight loop; any other batch goes through `feed()`, with the
        same result.
        """
        if lines and self.held_since() is None:
            split = self.fast_split(lines)
            if split is not None:
                return split_runs(*split, limit=limit)
        return merge_streams(runs_of(self.feed(lines, now)), limit)

    def fast_split(self, lines):
        """(stdout lines, stderr lines, err_at) of a batch of whole records (see `split_runs`),
        or None when it needs `feed()`."""
        return None

    def held_since(self):
        """When the oldest held part came (a monotonic time), or None."""
        times = [joiner.since for joiner in self.joiners.values() if joiner.parts]
        return min(times) if times else None

    def flush(self, before=None):
        """Return the held parts as lines (those held since before `before`, or all).

        For a writer that stopped in the middle of a line (a container that exited after
        writing a part): the part is not lost.
        """
        out = []
        for stream, joiner in self.joiners.items():
            if joiner.parts and (before is None or joiner.since <= before):
                stamp = joiner.stamp
                message = joiner.take("", self.max_line)
                out.append(Record(stream, f"{stamp} {message}", message))
        return out

    def parse(self, line):
        """Return (time, stream, message, is_last_part) of a stored line, or None."""
        raise NotImplementedError

    def view(self, line):
        """(subject, shown) of one stored line, alone (what history search matches and shows)."""
        parsed = self.parse(line)
        if parsed is None:
            return line, line
        stamp, _, message, _ = parsed
        return message, f"{stamp} {message}"


class CriParser(Parser):
    """The CRI log format (kubelet's /var/log/pods, conmon's k8s-file)."""

    def parse(self, line):
        """Return (time, stream, message, is_last_part), or None for a malformed line."""
        hit = CRI_LINE.match(line)
        if hit is None:
            return None
        tag = hit.group(3).split(":", 1)[0]
        if tag not in ("P", "F"):
            return None
        return hit.group(1), hit.group(2), hit.group(4) or "", tag == "F"

    def fast_split(self, lines):
        """The split of a batch when every line is `TIME stdout|stderr F MESSAGE`, else None.

        Each line is cut at its first ` stdout F ` (or ` stderr F `); what comes before must be
        a TIME (checked for the whole batch at the end), so a line whose head is another (a
        stderr line with ` stdout F ` in its message) sends the batch to `feed()`.
        """
        out, err, err_at, stamps = [], [], [], []
        add_out, add_err, mark = out.append, err.append, stamps.append
        for line in lines:  # a TIME holds no space: the first head found is the line's own
            stamp, head, message = line.partition(" stdout F ")
            if head:
                add_out(f"{stamp} {message}")
            else:
                stamp, head, message = line.partition(" stderr F ")
                if not head:
                    return None
                add_err(f"{stamp} {message}")
                err_at.append(len(out))
            mark(stamp)
        return (out, err, err_at) if stamps_valid(stamps) else None


class DockerParser(Parser):
    """Docker's json-file log driver (`<id>-json.log`)."""

    def parse(self, line):
        """Return (time, stream, message, is_last_part), or None for anything but a record."""
        if not line.startswith("{"):
            return None
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, or nested deep on purpose
            return None
        if not isinstance(record, dict):
            return None
        text, stream, stamp = record.get("log"), record.get("stream"), record.get("time")
        if not isinstance(text, str) or stream not in STREAMS or not isinstance(stamp, str) \
                or not DOCKER_TIME.match(stamp):
            return None
        last = text.endswith("\n")
        if last:
            text = text[:-2] if text.endswith("\r\n") else text[:-1]
        return stamp, stream, text, last

    def fast_split(self, lines):
        """The split of a batch when every line is a whole record (`log` ending in a newline),
        else None.

        The batch is decoded in one call; a file not written by dockerd (records spread over
        several lines) could only mislabel its own text here, as `feed()` shows it raw.
        """
        try:
            records = json.loads("[" + ",".join(lines) + "]")
        except (ValueError, RecursionError):
            return None
        if len(records) != len(lines):
            return None
        out, err, err_at, stamps = [], [], [], []
        for record in records:
            if type(record) is not dict:
                return None
            text, kind, stamp = record.get("log"), record.get("stream"), record.get("time")
            if type(text) is not str or text[-1:] != "\n" or text[-2:] == "\r\n" \
                    or kind not in STREAMS or type(stamp) is not str:
                return None
            if kind == "stdout":
                out.append(stamp + " " + text[:-1])
            else:
                err.append(stamp + " " + text[:-1])
                err_at.append(len(out))
            stamps.append(stamp)
        return (out, err, err_at) if stamps_valid(stamps) else None


PARSERS = {"cri": CriParser, "docker": DockerParser}
