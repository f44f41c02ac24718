"""Following a container source: the file engine over its log files, records out (pure).

A ContainerFollower runs a MultiFollower over the live log files of the matching containers
(found by the layout, watched in their folders: rotation grace, roots, exact backlog as for
files) and parses each file's lines into records (CRI or Docker json-file, parts joined).

Events: ("lines", Run, container) — lines of one container and one output stream, in the
order written (`records.Run`; see `records.merge_streams` for a container that alternates fast) —
("notice", str) and ("warning", str | None). A container that
appears joins with a notice, a new restart log of a known one says it restarted, and a
container whose logs are all gone leaves with one.
"""

import os
import time

from containers.records import PARSERS, runs_of
from tailf.multi import MultiFollower
from webapp.streams.text import say

PARTIAL_TIMEOUT = 2.0
MAX_RUNS = 8


class ContainerFiles(MultiFollower):
    """A MultiFollower whose files are a container layout's live logs."""

    def __init__(self, layout, **options):
        super().__init__(os.path.join(layout.root, "*"), **options)
        self.layout = layout
        self.pattern = layout.describe()

    def candidates(self):
        """The layout's live log files."""
        return self.layout.candidates()

    def folders(self):
        """The layout's folders (or the nearest existing parent of its root)."""
        found = self.layout.folders()
        if found:
            return found
        folder = self.layout.root
        while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
            folder = os.path.dirname(folder)
        return {folder}


class ContainerFollower:
    """Follows the containers of a layout; events carry records (see the module docstring)."""

    def __init__(self, layout, backlog=50, max_line=64 * 1024, *, roots, rotate_wait=5.0,
                 max_files=64, waker=None, positions=None):
        self.layout = layout
        self.max_line = max_line
        self.files = ContainerFiles(layout, backlog=backlog, max_line=max_line, roots=roots,
                                    rotate_wait=rotate_wait, max_files=max_files,
                                    partial_timeout=PARTIAL_TIMEOUT, waker=waker,
                                    positions=positions)
        self.parsers = {}
        self.names = {}
        self.waker = self.files.waker

    def start(self, now=None):
        """The backlog (records) and notices; every container there counts as known."""
        now = time.monotonic() if now is None else now
        events = self.files.start(now)
        self._sync_children(announce=False)
        return self._records(events, now)

    def poll(self, now=None):
        """Records and notices since the last call."""
        now = time.monotonic() if now is None else now
        events = self.files.poll(now)
        records = self._records(events, now)
        records += self._stale_parts(now)
        return records + self._sync_children(announce=True)

    def timeout(self, now=None):
        """How long the caller may wait before the next poll."""
        now = time.monotonic() if now is None else now
        limit = self.files.timeout(now)
        for parser in self.parsers.values():
            since = parser.held_since()
            if since is not None:
                limit = min(limit, max(0.0, since + PARTIAL_TIMEOUT - now))
        return limit

    async def aidle(self, now=None):
        """Wait until a file may have changed or a deadline is due."""
        await self.files.aidle(now)

    def idle(self, now=None):
        """`aidle()` for blocking code."""
        self.files.idle(now)

    def position(self):
        """Where each log's records handed over so far end (`MultiFollower.position`; parts
        of a line still held count as handed over)."""
        return self.files.position()

    def lag(self):
        """Bytes of the open files not read yet."""
        return self.files.lag()

    def skip_ahead(self, keep):
        """Skip towards the end of each file; return the stored lines passed over."""
        return self.files.skip_ahead(keep)

    def close(self):
        """Close every file and the waker."""
        self.files.close()

    def _sync_children(self, announce):
        """Notices for containers that joined, restarted or left (by their followed files)."""
        notices = []
        current = self.files.children
        for path in current:
            if path in self.names:
                continue  # known: named once (every poll would cost a name per container)
            name = self.layout.name_of(path)
            if name is None:
                continue
            known = name in self.names.values()
            self.names[path] = name
            if announce:
                code = "container_restarted" if known else "container_joined"
                notices.append(("notice", say(code, name=name,
                                              restart=self.layout.restart_of(path))))
        for path in [path for path in self.names if path not in current]:
            name = self.names.pop(path)
            parser = self.parsers.pop(path, None)
            if parser is not None:
                notices[:0] = self._runs(runs_of(parser.flush()), name)
            if name not in self.names.values():
                notices.append(("notice", say("container_left", name=name)))
        return notices

    def _stale_parts(self, now):
        """Lines whose last part has not come for PARTIAL_TIMEOUT (the writer stopped)."""
        out = []
        for path, parser in self.parsers.items():
            since = parser.held_since()
            if since is not None and now - since >= PARTIAL_TIMEOUT:
                out += self._runs(runs_of(parser.flush(now - PARTIAL_TIMEOUT)),
                                  self._name(path))
        return out

    def _name(self, path):
        return self.names.get(path) or self.layout.name_of(path) or path

    def _runs(self, runs, name):
        """Lines events of runs of one container."""
        return [("lines", run, name) for run in runs]

    def _records(self, events, now):
        """Turn the engine's lines events into runs of records per output stream."""
        out = []
        for event in events:
            if event[0] != "lines":
                if not _engine_join_notice(event, self.files.children):
                    out.append(event)
                continue
            _, lines, path = event
            parser = self.parsers.get(path)
            if parser is None:
                parser = self.parsers[path] = PARSERS[self.layout.kind](self.max_line)
            out += self._runs(parser.feed_runs(lines, now, MAX_RUNS), self._name(path))
        return out


def _engine_join_notice(event, children):
    """Whether a notice is the engine's own "appeared"/"gone" (said per container instead)."""
    text = event[1] if event[0] == "notice" else None
    if not isinstance(text, str):
        return False
    if getattr(text, "code", "") == "glob_gone":
        return True
    return any(text.startswith(f"{path} appeared") for path in children)
