"""The journal engine: reads one journal folder with libsystemd (the systemd project's
binding, systemd-python), filtered, from a backlog or a cursor, and follows it. Knows nothing
about Celery or Channels.

Filters are sd-journal matches: the values of one field are OR'ed (units, identifiers,
priorities 0..p), the fields AND'ed. Following: the caller waits for `fd` to be readable (or
a timeout), then calls `process()` (which takes in rotated, new and removed files: the
INVALIDATE event, python-systemd#130) and `read()`.

An entry's fields are read in one call (`sd_journal_enumerate_data`, values as bytes, keys
only decoded): the line decodes only the few values it shows.
"""

import errno
import os

try:
    from systemd.journal import INVALIDATE, Reader
except ImportError:  # it builds against libsystemd (requirements-native.txt): a worker may lack it
    INVALIDATE = Reader = None

from journal.entries import ShortIso, level
from tailf.roots import OutsideRoots, check_under_roots, is_confined, real_roots
from webapp.streams import internals


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
        self.reader = open_reader(self.directory)
        self.fd = self.reader.fileno()  # the inotify watches exist from here on: nothing is missed
        self.reader.add_match(*matches(units, identifiers, priority))

    def start(self, backlog):
        """Place the reader so that `read()` returns the last `backlog` entries, then new ones.

        An empty journal is read from its head: from its tail, sd-journal would skip the
        first entry of a file that appears later.
        """
        reader = self.reader
        step, back, _, _, _ = internals.journal_steps(reader)
        reader.seek_head()
        if not step():
            reader.seek_head()
            return
        reader.seek_tail()
        for _ in range(backlog + 1):  # onto the entry before the backlog (one step: the last)
            if not back():
                reader.seek_head()  # fewer entries than asked: all of them
                return

    def resume(self, cursor):
        """Place the reader right after the entry at `cursor`; return the entry read instead
        (line, level, cursor) when that one is no longer in the journal, else None.

        Raises BadCursor when the journal rejects the cursor.
        """
        try:
            self.reader.seek_cursor(cursor)
        except (ValueError, OSError) as exc:  # ValueError: EINVAL, a cursor it cannot parse
            raise BadCursor(f"the journal does not know cursor {cursor[:80]!r}: {exc}") from None
        step, _, fields_of, realtime, cursor_of = internals.journal_steps(self.reader)
        if not step() or cursor_key(cursor_of()) == cursor_key(cursor):
            return None
        fields = fields_of()
        return self.format.line(fields, realtime()), level(fields), cursor_of()

    def read(self, limit):
        """Return up to `limit` next entries as (lines, levels, cursors)."""
        lines, levels, cursors = [], [], []
        step, _, fields_of, realtime, cursor = internals.journal_steps(self.reader)
        line = self.format.line
        for _ in range(limit):
            if not step():
                break
            fields = fields_of()
            lines.append(line(fields, realtime()))
            levels.append(level(fields))
            cursors.append(cursor())
        return lines, levels, cursors

    def process(self):
        """Take in what changed since the last wake-up (appends, and files added, rotated or
        removed: sd-journal's INVALIDATE, python-systemd#130); True when files changed."""
        return self.reader.process() == INVALIDATE

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
        self.reader.close()


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


def open_reader(directory):
    """A libsystemd reader of the journal files in `directory` (and its machine-id folders).

    Raises OSError (libsystemd's errno) or ValueError when libsystemd refuses the folder, and
    OSError(ENOSYS) on a worker without the binding.
    """
    if Reader is None:
        raise OSError(errno.ENOSYS, "this worker cannot read journals: systemd-python is not "
                                    "installed (requirements-native.txt)")
    return Reader(path=directory)


def matches(units, identifiers, priority):
    """The sd-journal matches of the filters: `FIELD=value` for each value. sd-journal OR's
    the matches of one field and AND's the fields."""
    found = [f"_SYSTEMD_UNIT={unit}" for unit in units]
    found += [f"SYSLOG_IDENTIFIER={ident}" for ident in identifiers]
    if priority < 7:
        found += [f"PRIORITY={value}" for value in range(priority + 1)]
    return found
