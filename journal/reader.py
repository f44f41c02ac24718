"""The journal engine: reads one journal folder with cysystemd, filtered, from a backlog or a
cursor, and follows it. Knows nothing about Celery or Channels.

Filters are sd-journal matches: the values of one field are OR'ed (units, identifiers,
priorities 0..p), the fields AND'ed. Following: the caller waits for `fd` to be readable (or
a timeout), then calls `process()` (which takes in rotated, new and removed files: the
INVALIDATE event, python-systemd#130) and `read()`.
"""

import os

from cysystemd.reader import JournalEvent, JournalReader, Rule

from journal.entries import ShortIso, level
from tailf.roots import OutsideRoots, check_under_roots, is_confined, real_roots


class BadCursor(ValueError):
    """The journal does not understand a cursor."""


class LinkOutside(OutsideRoots):
    """A journal file or machine-id folder of the folder links outside the roots (the text
    names the link, not the roots, and may be shown to viewers)."""


def cursor_key(cursor):
    """What identifies an entry in a cursor: its seqnum id and seqnum (s=, i=), else all."""
    parts = dict(part.split("=", 1) for part in cursor.split(";") if "=" in part)
    return (parts["s"], parts["i"]) if "s" in parts and "i" in parts else cursor


class Journal:
    """One filtered reader of a journal folder (under `roots`), as lines, levels and cursors."""

    def __init__(self, directory, units=(), identifiers=(), priority=7, roots=None,
                 max_line=64 * 1024):
        if roots is not None:
            check_under_roots(directory, roots)
        self.directory = os.path.realpath(directory)
        if not os.path.isdir(self.directory):
            raise FileNotFoundError(f"{directory} is not a folder")
        if roots is not None:
            check_links(self.directory, real_roots(roots))
        self.format = ShortIso(max_line)
        self.reader = JournalReader()
        self.reader.open_directory(self.directory)
        self.fd = self.reader.fd  # the inotify watches exist from here on: nothing is missed
        for field, values in (("_SYSTEMD_UNIT", units), ("SYSLOG_IDENTIFIER", identifiers),
                              ("PRIORITY", [str(p) for p in range(priority + 1)]
                               if priority < 7 else ())):
            if values:
                self.reader.add_filter(any_of(field, values))

    def start(self, backlog):
        """Place the reader so that `read()` returns the last `backlog` entries, then new ones.

        An empty journal is read from its head: from its tail, sd-journal would skip the
        first entry of a file that appears later.
        """
        self.reader.seek_head()
        if not self.reader.skip_next(1):
            self.reader.seek_head()
            return
        self.reader.seek_tail()  # cysystemd steps back onto the last entry
        if backlog and self.reader.skip_previous(backlog) < backlog:
            self.reader.seek_head()  # fewer entries than asked: all of them

    def resume(self, cursor):
        """Place the reader right after the entry at `cursor`; return the entry read instead
        (line, level, cursor) when that one is no longer in the journal, else None.

        Raises BadCursor when the journal rejects the cursor.
        """
        try:
            self.reader.seek_cursor(cursor.encode("ascii"))
        except (SystemError, UnicodeEncodeError) as exc:
            raise BadCursor(f"the journal does not know cursor {cursor[:80]!r}: {exc}") from None
        entry = self.reader.next()
        if entry is None or cursor_key(entry.cursor.decode()) == cursor_key(cursor):
            return None
        return self.convert(entry)

    def read(self, limit):
        """Return up to `limit` next entries as (lines, levels, cursors)."""
        lines, levels, cursors = [], [], []
        reader = self.reader
        for _ in range(limit):
            entry = reader.next()
            if entry is None:
                break
            line, entry_level, cursor = self.convert(entry)
            lines.append(line)
            levels.append(entry_level)
            cursors.append(cursor)
        return lines, levels, cursors

    def convert(self, entry):
        """(line, level, cursor) of one entry."""
        data = entry.data
        return (self.format.line(data, entry.get_realtime_usec()), level(data),
                entry.cursor.decode())

    def process(self):
        """Take in what changed since the last wake-up (appends, and files added, rotated or
        removed: sd-journal's INVALIDATE, python-systemd#130); True when files changed."""
        return self.reader.process_events() == JournalEvent.INVALIDATE

    def unreadable(self):
        """The journal files of the folder (and its machine-id folders) this process cannot read."""
        found = []
        for folder, subfolders, files in os.walk(self.directory):
            if folder != self.directory:
                subfolders.clear()
            found += [os.path.join(folder, name) for name in files
                      if name.endswith((".journal", ".journal~"))
                      and not os.access(os.path.join(folder, name), os.R_OK)]
        return found

    def close(self):
        """Close the reader's files and watches."""
        self.reader = None


def journal_entries(directory):
    """What sd-journal opens in a folder: its journal files and machine-id folders, and theirs.

    Yields paths, symlinks included (sd-journal follows them).
    """
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.endswith((".journal", ".journal~")):
            yield path
        elif len(name) == 32 and all(ch in "0123456789abcdef" for ch in name):
            yield path
            if os.path.isdir(path):
                yield from (os.path.join(path, inner) for inner in os.listdir(path)
                            if inner.endswith((".journal", ".journal~")))


def check_links(directory, allowed):
    """Raise OutsideRoots when a journal file or machine-id folder that sd-journal would open
    in `directory` is a symlink resolving outside the (resolved) roots `allowed`.

    sd-journal follows such links; this refuses them when the stream opens (a link made
    later, while it runs, is not seen here).
    """
    for path in journal_entries(directory):
        if os.path.islink(path) and not is_confined(os.path.realpath(path), allowed):
            raise LinkOutside(f"{os.path.basename(path)} in the folder links outside the "
                               "log roots")


def any_of(field, values):
    """A cysystemd rule matching entries whose `field` has one of `values`."""
    rules = [Rule(field, str(value)) for value in values]
    rule = rules[0]
    for other in rules[1:]:
        rule = rule | other
    return rule
