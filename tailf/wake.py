"""Wake-ups for the tail engine: Linux inotify through ctypes, or polling when it fails.

A waker watches the open file and the directories whose entries decide what the followed
name points at, and blocks until one of them may have changed or a timeout passes: `idle()`
in plain code, `aidle()` on an asyncio loop (it waits on the inotify descriptor with
`loop.add_reader`, so an idle stream costs nothing between events). Pure: no Celery,
Channels or Django.

inotify is bound with ctypes (three libc calls) rather than a third-party package: nothing to
install or pin, and the fallback is needed anyway where libc or the kernel lacks inotify.
"""

import asyncio
import ctypes
import ctypes.util
import errno
import os
import select
import struct
import time

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_CLOEXEC = os.O_CLOEXEC
IN_NONBLOCK = os.O_NONBLOCK

FILE_EVENTS = IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF
DIR_EVENTS = (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF
              | IN_MOVE_SELF | IN_ONLYDIR)
EVENT_HEADER = struct.Struct("iIII")
READ_SIZE = 64 * 1024

INOTIFY_CHECK_SECONDS = 1.0
POLL_MIN_SECONDS = 0.01
POLL_MAX_SECONDS = 0.1

_libc = None


def _load_libc():
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        for function in ("inotify_init1", "inotify_add_watch", "inotify_rm_watch"):
            if not hasattr(libc, function):
                raise OSError(errno.ENOSYS, f"the C library has no {function}")
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        _libc = libc
    return _libc


def _failed(call, path=None):
    code = ctypes.get_errno()
    return OSError(code, f"{call}: {os.strerror(code)}", path)


class Inotify:
    """One non-blocking inotify instance: add and remove watches, read events."""

    def __init__(self):
        self.libc = _load_libc()
        fd = self.libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise _failed("inotify_init1")
        self.fd = fd

    def fileno(self):
        """Return the descriptor that becomes readable when an event is queued."""
        return self.fd

    def add_watch(self, path, mask):
        """Watch `path` (following symlinks) for `mask`; return the watch descriptor."""
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            raise _failed("inotify_add_watch", path)
        return wd

    def rm_watch(self, wd):
        """Remove a watch; one the kernel already dropped (file deleted) is ignored."""
        if self.libc.inotify_rm_watch(self.fd, wd) < 0 and ctypes.get_errno() != errno.EINVAL:
            raise _failed("inotify_rm_watch")

    def read(self):
        """Return the queued events as (wd, mask, cookie, name) without blocking."""
        events = []
        while True:
            try:
                data = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                return events
            if not data:
                return events
            offset = 0
            while offset < len(data):
                wd, mask, cookie, size = EVENT_HEADER.unpack_from(data, offset)
                offset += EVENT_HEADER.size
                name = data[offset:offset + size].rstrip(b"\0")
                offset += size
                events.append((wd, mask, cookie, name))

    def close(self):
        """Close the instance; the kernel drops its watches with it."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class InotifyWaker:
    """Wakes on inotify events for the open file and the watched directories."""

    kind = "inotify"
    interval = INOTIFY_CHECK_SECONDS

    def __init__(self):
        self.inotify = Inotify()
        self.file_wd = None
        self.file_key = None
        self.dir_wds = {}

    def watch_file(self, fd, key, path):
        """Watch the file open at `fd`: through /proc, so it is that very inode, else `path`."""
        if key == self.file_key and self.file_wd is not None:
            return
        self.unwatch_file()
        target = f"/proc/self/fd/{fd}"
        if not os.path.exists(target):
            target = path
        self.file_wd = self.inotify.add_watch(target, FILE_EVENTS)
        self.file_key = key

    def unwatch_file(self):
        """Stop watching the file."""
        if self.file_wd is not None:
            wd, self.file_wd, self.file_key = self.file_wd, None, None
            if wd not in self.dir_wds.values():
                self.inotify.rm_watch(wd)

    def watch_dirs(self, dirs):
        """Watch exactly these directories for entries created, moved or deleted."""
        dirs = set(dirs)
        if dirs == set(self.dir_wds):
            return
        wanted = {}
        for path in dirs:
            try:
                wanted[path] = self.inotify.add_watch(path, DIR_EVENTS)
            except (FileNotFoundError, NotADirectoryError):
                continue
        keep = set(wanted.values()) | {self.file_wd}
        for wd in set(self.dir_wds.values()) - keep:
            self.inotify.rm_watch(wd)
        self.dir_wds = wanted

    def drain(self):
        """Consume queued events; forget watches the kernel dropped. Return True if any."""
        events = self.inotify.read()
        for wd, mask, _cookie, _name in events:
            if mask & IN_IGNORED:
                if wd == self.file_wd:
                    self.file_wd, self.file_key = None, None
                self.dir_wds = {path: known for path, known in self.dir_wds.items()
                                if known != wd}
        return bool(events)

    def settle(self, active):
        """Nothing to adapt: inotify reports every change."""

    def idle(self, timeout):
        """Block until an event is queued or `timeout` seconds pass."""
        poller = select.poll()
        poller.register(self.inotify.fd, select.POLLIN)
        poller.poll(max(0, int(timeout * 1000 + 0.999)))

    async def aidle(self, timeout):
        """Wait on the event loop until an event is queued or `timeout` seconds pass."""
        loop = asyncio.get_running_loop()
        ready = loop.create_future()

        def wake():
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(self.inotify.fd, wake)
        try:
            await asyncio.wait({ready}, timeout=max(0.0, timeout))
        finally:
            loop.remove_reader(self.inotify.fd)
            ready.cancel()

    def watch_count(self):
        """Return how many watches the kernel holds for this instance (from /proc)."""
        with open(f"/proc/self/fdinfo/{self.inotify.fd}") as info:
            return sum(1 for line in info if line.startswith("inotify wd:"))

    def close(self):
        """Close the inotify instance and all its watches."""
        self.inotify.close()
        self.file_wd, self.file_key, self.dir_wds = None, None, {}


class PollWaker:
    """The fallback: sleeps between checks, 10 ms after activity doubling up to 250 ms."""

    kind = "polling"

    def __init__(self, reason=""):
        self.reason = reason
        self.interval = POLL_MIN_SECONDS

    def watch_file(self, fd, key, path):
        """Nothing to watch when polling."""

    def unwatch_file(self):
        """Nothing to unwatch when polling."""

    def watch_dirs(self, dirs):
        """Nothing to watch when polling."""

    def drain(self):
        """No events to consume."""
        return False

    def settle(self, active):
        """Poll again soon after activity; back off while the file is quiet."""
        if active:
            self.interval = POLL_MIN_SECONDS
        else:
            self.interval = min(POLL_MAX_SECONDS, self.interval * 2)

    def idle(self, timeout):
        """Sleep for `timeout` seconds."""
        time.sleep(max(0.0, timeout))

    async def aidle(self, timeout):
        """Sleep on the event loop for `timeout` seconds."""
        await asyncio.sleep(max(0.0, timeout))

    def close(self):
        """Nothing to release."""


def open_waker():
    """Return an inotify waker, or a polling one (with its `reason`) when inotify fails."""
    try:
        return InotifyWaker()
    except OSError as exc:
        return PollWaker(f"inotify is unavailable ({exc.strerror or exc})")
