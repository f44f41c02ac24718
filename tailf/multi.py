"""Glob sources: one stream follows every regular file matching `/dir/pattern` (pure engine).

A MultiFollower has the Follower's interface (`start`, `poll`, `timeout`, `idle`, `aidle`,
`lag`, `skip_ahead`, `close`) and runs one Follower per matching file, all sharing one waker
(one inotify instance per stream: the pattern's directory plus one watch per open file).
Lines events name their file: ("lines", [str, ...], path); notices and warnings are as for a
Follower ("notice", str), ("warning", str | None).

At start at most `max_files` files are followed, the most recently modified; `backlog` is the
last N lines of the most recently written files together, oldest file first. Files that match
later join (while there is room) and are read from their start; files gone leave with a
notice; each file has its own rotation grace. `positions` ({path: [dev, ino, offset]}, from
`position()`): the files named there start at their place instead (`Follower`'s
`start_at`). A pattern matching nothing yet is waited for with a warning. Only the last
component may hold glob characters.
"""

import glob
import os
import re
import stat
import time

from tailf import roots as confinement
from tailf import wake
from tailf.follow import Follower, check_encoding, joined
from webapp.streams.text import say

MAX_FILES = 64
RESCAN_SECONDS = 1.0
WARNINGS_NAMED = 3
MAGIC = re.compile(r"[*?[]")


def is_glob(path):
    """Whether a log path ends in a glob (`*`, `?` or `[` in its last component)."""
    return MAGIC.search(os.path.basename(os.fspath(path))) is not None


def check_glob(path):
    """Raise ValueError if glob characters appear anywhere but in the last component."""
    if MAGIC.search(os.path.dirname(os.fspath(path))):
        raise ValueError(f"{path}: only the last component of a log path may be a glob")


class MultiFollower:
    """Follows every regular file matching a glob; lines events carry the file's path."""

    def __init__(self, pattern, backlog=50, encoding="utf-8", max_line=64 * 1024,
                 partial_timeout=0.5, waker=None, *, roots, rotate_wait=5.0,
                 max_files=MAX_FILES, positions=None):
        pattern = os.fspath(pattern)
        check_glob(pattern)
        self.pattern = pattern
        self.path = pattern
        self.directory = os.path.dirname(pattern)
        self.glob = os.path.join(glob.escape(self.directory), os.path.basename(pattern))
        self.backlog = backlog
        self.max_files = max_files
        self.positions = dict(positions or {})
        self.roots = list(roots) if not isinstance(roots, (str, os.PathLike)) else [roots]
        self.options = {"encoding": encoding, "max_line": max_line,
                        "partial_timeout": partial_timeout, "rotate_wait": rotate_wait,
                        "roots": confinement.real_roots(self.roots)}
        check_encoding(encoding)
        self.owns_waker = waker is None
        self.waker = waker if waker is not None else wake.open_waker()
        self.children = {}
        self.matched = set()
        self.skipped = set()
        self.notes = []
        self.warned = None
        self.waker_reason = ""
        self.scanned_at = None

    @property
    def behind(self):
        """Whether some file's read stopped at the per-poll limit."""
        return any(child.behind for child in self.children.values())

    def start(self, now=None):
        """Choose the files, return the backlog (oldest file first) and notices."""
        now = time.monotonic() if now is None else now
        self._watch_dir()
        found = self._scan(now)
        found.sort(reverse=True)
        if len(found) > self.max_files:
            self.notes.append(say("glob_limit", count=len(found), pattern=self.pattern,
                                  limit=self.max_files))
            self.skipped.update(path for _, path in found[self.max_files:])
        remaining, started = self.backlog, []
        for _, path in found[: self.max_files]:
            at = self.positions.get(path)
            child = self._child(path, start_at=tuple(at), start_note="file_replaced") if at \
                else self._child(path, backlog=remaining)
            events = child.start(now)
            started.append(self._tag(path, events))
            if remaining:
                got = sum(len(event[1]) for event in events if event[0] == "lines")
                held = child.current is not None and bool(child.current.pending)
                remaining = max(0, remaining - got - held)
        events = [event for events in reversed(started) for event in events]
        if not self.children:
            events.append(("notice", say("glob_nothing", pattern=self.pattern)))
        return self._with_state(events)

    def poll(self, now=None):
        """Return the events since the last call, each file's lines in that file's order."""
        now = time.monotonic() if now is None else now
        self.waker.drain()
        events = []
        if self.scanned_at is None or now - self.scanned_at >= RESCAN_SECONDS or (
                self.waker.kind == "inotify" and self.waker.take_dirs_changed()):
            events.extend(self._rescan(now))
        for path, child in list(self.children.items()):
            child.waker_reason = self.waker.reason  # the stream names the waker once
            events.extend(self._tag(path, child.collect(now)))
            if path not in self.matched and child.current is None and not child.retired:
                events.append(("notice", say("glob_gone", path=path)))
                self._drop(path)
        events = self._with_state(events)
        self.waker.settle(bool(events))
        return events

    def timeout(self, now=None):
        """Return how long the caller may wait before the next poll is needed."""
        now = time.monotonic() if now is None else now
        limit = self.waker.interval
        if self.waker.kind != "inotify" and self.scanned_at is not None:
            limit = min(limit, self.scanned_at + RESCAN_SECONDS - now)
        for child in self.children.values():
            limit = min(limit, child.timeout(now))
        return max(0.0, limit)

    def idle(self, now=None):
        """Block until a file may have changed or a deadline is due."""
        self.waker.idle(self.timeout(now))

    async def aidle(self, now=None):
        """`idle()` for an asyncio loop."""
        await self.waker.aidle(self.timeout(now))

    def position(self):
        """{path: [st_dev, st_ino, offset]} of every file followed (see `Follower.position`);
        given back as `positions`, each file goes on from there."""
        found = {}
        for child in self.children.values():
            found.update(child.position())
        return found

    def lag(self):
        """Return how many bytes of all open files are not read yet."""
        return sum(child.lag() for child in self.children.values())

    def skip_ahead(self, keep):
        """Skip each file to about its share of `keep` bytes from its end; return lines passed."""
        share = keep // max(1, len(self.children))
        return sum(child.skip_ahead(share) for child in self.children.values()
                   if child.lag() > share)

    def close(self):
        """Close every file, their watches and (if it is this follower's own) the waker."""
        for path in list(self.children):
            self._drop(path)
        self.waker.forget(self)
        if self.owns_waker:
            self.waker.close()

    def _child(self, path, **options):
        child = Follower(path, waker=self.waker, **self.options, **options)
        child.waker_reason = self.waker.reason
        self.children[path] = child
        return child

    def _drop(self, path):
        self.children.pop(path).close()

    def _tag(self, path, events):
        """Name the file in lines events; the children's warnings are summed up by the stream."""
        return [(kind, value, path) if kind == "lines" else (kind, value)
                for kind, value in events if kind != "warning"]

    def candidates(self):
        """The paths that match now (a subclass may find its files another way)."""
        return glob.glob(self.glob)

    def folders(self):
        """The directories to watch for files appearing (the nearest existing one)."""
        folder = self.directory
        while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
            folder = os.path.dirname(folder)
        return {folder}

    def _watch_dir(self):
        self.waker.watch_dirs(self.folders(), owner=self)

    def _scan(self, now):
        """Return (mtime, path) of the matching regular files; note the other matches once."""
        self.scanned_at = now
        found, odd = [], set()
        for path in self.candidates():
            try:
                info = os.stat(path)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                found.append((info.st_mtime, path))
            else:
                odd.add(path)
        for path in sorted(odd - self.skipped):
            if path not in self.children:
                self.notes.append(say("glob_not_regular", path=path, pattern=self.pattern))
        self.matched = {path for _, path in found}
        self.skipped = (self.skipped & self.matched) | odd
        return found

    def _rescan(self, now):
        """Add the files that appeared (read from their start), while there is room."""
        self._watch_dir()
        events = []
        for _, path in sorted(self._scan(now)):
            if path in self.children or path in self.skipped:
                continue
            if len(self.children) >= self.max_files:
                self.skipped.add(path)
                events.append(("notice", say("glob_full", path=path, pattern=self.pattern,
                                             limit=self.max_files)))
                continue
            try:
                info = os.stat(path)
            except OSError:
                continue
            identity = (info.st_dev, info.st_ino)
            if identity in self._held():
                continue  # a file still read under its old name (rotated): join after that
            offset = self._released().get(identity)
            if offset is None:
                child = self._child(path, from_start=True)
                text = say("file_appeared_start", path=path)
            else:
                child = self._child(path, start_at=identity + (offset,))
                text = say("file_appeared_rotated", path=path)
            events.append(("notice", text))
            events.extend(self._tag(path, child.start(now)))
        return events

    def _held(self):
        """Identities of the files open in some child (followed, or rotated in their grace)."""
        return {each.identity for child in self.children.values()
                for each in child.open_files()}

    def _released(self):
        """identity -> offset of the files the children let go of (last few each)."""
        return {identity: offset for child in self.children.values()
                for identity, offset in child.released}

    def _with_state(self, events):
        """Queued notices, the events, then a warning event if the degraded state changed."""
        reason = self.waker.reason
        if reason != self.waker_reason:
            self.notes.append(say("polling", reason=reason, path=self.pattern) if reason
                              else say("inotify_back", path=self.pattern))
            self.waker_reason = reason
        events = [("notice", text) for text in self.notes] + events
        self.notes = []
        problems = sorted(child.problem for child in self.children.values() if child.problem)
        if len(problems) > WARNINGS_NAMED:
            problems = problems[:WARNINGS_NAMED] + [
                f"{len(problems) - WARNINGS_NAMED} more files cannot be read"]
        if not self.children:
            problems.append(say("glob_no_match", pattern=self.pattern))
        if reason:
            problems.append(f"{reason}; polling")
        warning = joined(problems)
        if warning != self.warned:
            self.warned = warning
            events.append(("warning", warning))
        return events
