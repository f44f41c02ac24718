"""Wake-ups for the tail engine: Linux inotify through ctypes, or polling when it fails.

A waker watches the open file and the directories whose entries decide what the followed
name points at, and blocks until one of them may have changed or a timeout passes: `idle()`
in plain code, `aidle()` on an asyncio loop (it waits on the inotify descriptor with
`loop.add_reader`, so an idle stream costs nothing between events; the descriptor stays
registered from one wait to the next, and its events are read as soon as it fires, so it
never stays readable and cannot spin the loop). One waker (one inotify
instance) serves a whole stream, however many files it follows. Without inotify it polls:
every 10 ms after activity, doubling while quiet up to 0.1 s (POLL_MAX_SECONDS), and retries
inotify every 30 s. Pure: no Celery, Channels or Django.

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
RETRY_SECONDS = 30.0

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


def unavailable(exc, what="inotify is unavailable"):
    """Why a stream polls instead of waiting on inotify, for its viewer and the worker's log.

    EMFILE from `inotify_init1` is the per-user instance limit (one instance per stream),
    which says what to raise."""
    if exc.errno == errno.EMFILE and "inotify_init1" in str(exc):
        try:
            with open("/proc/sys/fs/inotify/max_user_instances") as handle:
                limit = f"all {int(handle.read())}"
        except (OSError, ValueError):
            limit = "all its"
        return (f"{what}: this user has {limit} inotify instances in use (one per stream); "
                "raise fs.inotify.max_user_instances on the worker host")
    return f"{what} ({exc.strerror or exc})"


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
            last = len(data) <= READ_SIZE // 2  # the queue was short: empty now, most likely
            offset = 0
            while offset < len(data):
                wd, mask, cookie, size = EVENT_HEADER.unpack_from(data, offset)
                offset += EVENT_HEADER.size
                name = data[offset:offset + size].rstrip(b"\0")
                offset += size
                events.append((wd, mask, cookie, name))
            if last:  # a later event makes the descriptor readable again
                return events

    def close(self):
        """Close the instance; the kernel drops its watches with it."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Waker:
    """Wakes on inotify events for the watched files and directories, or polls when it cannot.

    Many followers may share one waker (one inotify instance per stream): files are watched
    by key, directories by owner (the union of all owners' sets is watched). When inotify
    fails (no instance left, watch limit reached) the waker degrades in place to polling —
    `kind` becomes "polling" and `reason` says why — and retries inotify every
    RETRY_SECONDS, re-adding every watch; `reason` is "" again once it works.
    """

    def __init__(self, reason=""):
        self.files = {}
        self.file_wds = {}
        self.dir_sets = {}
        self.dir_wds = {}
        self.dirs_changed = True
        self.inotify = None
        self.registered = None  # (loop, fd) while the descriptor is registered with a loop
        self.waiter = None
        self.seen = False  # events were read (by a wake-up) that `drain` has not reported
        self.retry = not reason
        self.failed_at = None
        if reason:
            self._degrade(reason)
        else:
            try:
                self.inotify = Inotify()
                self._healthy()
            except OSError as exc:
                self._degrade(unavailable(exc))

    def _healthy(self):
        self.kind, self.reason, self.interval = "inotify", "", INOTIFY_CHECK_SECONDS

    def _degrade(self, reason):
        self._close_inotify()
        self.file_wds, self.dir_wds = {}, {}
        self.kind, self.reason, self.interval = "polling", reason, POLL_MIN_SECONDS
        self.failed_at = time.monotonic()

    def _attempt(self, call, *args):
        try:
            return call(*args)
        except OSError as exc:
            self._degrade(f"inotify failed ({exc.strerror or exc})")
            return None

    def watch_file(self, fd, key, path):
        """Watch the file open at `fd` under `key`: through /proc, so it is that very inode."""
        self.files[key] = (fd, path)
        if self.inotify is not None and key not in self.file_wds:
            self._attempt(self._add_file, key)

    def _add_file(self, key):
        fd, path = self.files[key]
        target = f"/proc/self/fd/{fd}"
        if not os.path.exists(target):
            target = path
        self.file_wds[key] = self.inotify.add_watch(target, FILE_EVENTS)

    def unwatch_file(self, key):
        """Stop watching the file under `key`."""
        self.files.pop(key, None)
        wd = self.file_wds.pop(key, None)
        if wd is not None and self.inotify is not None and not self._in_use(wd):
            self._attempt(self.inotify.rm_watch, wd)

    def _in_use(self, wd):
        return wd in self.dir_wds.values() or wd in self.file_wds.values()

    def watch_dirs(self, dirs, owner=None):
        """Watch these directories for `owner` (replacing its previous set)."""
        dirs = set(dirs)
        if self.dir_sets.get(owner) == dirs:
            return
        self.dir_sets[owner] = dirs
        if self.inotify is not None:
            self._attempt(self._sync_dirs)

    def forget(self, owner):
        """Drop the directories watched for `owner`."""
        if self.dir_sets.pop(owner, None) is not None and self.inotify is not None:
            self._attempt(self._sync_dirs)

    def _sync_dirs(self):
        wanted = set().union(*self.dir_sets.values()) if self.dir_sets else set()
        for path in wanted - set(self.dir_wds):
            try:
                self.dir_wds[path] = self.inotify.add_watch(path, DIR_EVENTS)
            except (FileNotFoundError, NotADirectoryError):
                continue
        for path in set(self.dir_wds) - wanted:
            wd = self.dir_wds.pop(path)
            if not self._in_use(wd):
                self.inotify.rm_watch(wd)

    def drain(self):
        """Consume queued events; forget watches the kernel dropped. Return True if any.

        Also clears what a wake-up saw after inotify failed: the waits that follow must
        poll, not return at once.
        """
        if self.inotify is not None:
            self._take()
        seen, self.seen = self.seen, False
        return seen

    def _take(self):
        events = self.inotify.read()
        if not events:
            return
        self.seen = True
        dir_wds = set(self.dir_wds.values())
        for wd, mask, _cookie, _name in events:
            if wd in dir_wds:
                self.dirs_changed = True
            if mask & IN_IGNORED:
                self.file_wds = {key: known for key, known in self.file_wds.items()
                                 if known != wd}
                self.dir_wds = {path: known for path, known in self.dir_wds.items()
                                if known != wd}

    def take_dirs_changed(self):
        """Whether a watched directory changed since the last call (always True when polling)."""
        changed = self.dirs_changed or self.inotify is None
        self.dirs_changed = False
        return changed

    def settle(self, active):
        """Polling: poll again soon after activity, back off while quiet; retry inotify."""
        if self.inotify is not None:
            return
        if active:
            self.interval = POLL_MIN_SECONDS
        else:
            self.interval = min(POLL_MAX_SECONDS, self.interval * 2)
        if self.retry and time.monotonic() - self.failed_at >= RETRY_SECONDS:
            self.recover()

    def recover(self):
        """Try inotify again and re-add every watch; return whether it works now."""
        try:
            self.inotify = Inotify()
            for key in self.files:
                self._add_file(key)
            self._sync_dirs()
        except OSError as exc:
            self._degrade(unavailable(exc, "inotify failed"))
            return False
        self._healthy()
        self.dirs_changed = True
        return True

    def idle(self, timeout):
        """Block until an event is queued or `timeout` seconds pass."""
        if self.seen:  # events came in since the last drain: there is work now
            return
        if self.inotify is None:
            time.sleep(max(0.0, timeout))
            return
        poller = select.poll()
        poller.register(self.inotify.fd, select.POLLIN)
        poller.poll(max(0, int(timeout * 1000 + 0.999)))

    async def aidle(self, timeout):
        """Wait on the event loop until an event is queued or `timeout` seconds pass.

        Returns at once when a wake-up read events since the last `drain` (they came while
        the caller was busy elsewhere, e.g. sending): waiting for another event would hold
        those lines until the timeout.
        """
        if self.seen:
            return
        if self.inotify is None:
            await asyncio.sleep(max(0.0, timeout))
            return
        loop = asyncio.get_running_loop()
        if self.registered != (loop, self.inotify.fd):
            self._unregister()
            loop.add_reader(self.inotify.fd, self._readable)
            self.registered = (loop, self.inotify.fd)
        self.waiter = ready = loop.create_future()
        timer = loop.call_later(max(0.0, timeout), _resolve, ready)
        try:
            await ready
        finally:
            timer.cancel()
            self.waiter = None

    def _readable(self):
        try:
            self._take()  # read now: a descriptor left readable would wake the loop again
        except OSError as exc:
            self._degrade(f"inotify failed ({exc.strerror or exc})")
        if self.waiter is not None:
            _resolve(self.waiter)

    def _unregister(self):
        if self.registered is not None:
            loop, fd = self.registered
            self.registered = None
            if not loop.is_closed():
                loop.remove_reader(fd)

    def _close_inotify(self):
        self._unregister()
        if self.inotify is not None:
            self.inotify.close()
            self.inotify = None

    def watch_count(self):
        """Return how many watches the kernel holds for this instance (from /proc)."""
        if self.inotify is None:
            return 0
        with open(f"/proc/self/fdinfo/{self.inotify.fd}") as info:
            return sum(1 for line in info if line.startswith("inotify wd:"))

    def close(self):
        """Close the inotify instance and all its watches."""
        self._close_inotify()
        self.retry = False
        self.files, self.file_wds, self.dir_sets, self.dir_wds = {}, {}, {}, {}


def _resolve(future):
    if not future.done():
        future.set_result(None)


def open_waker():
    """Return a waker: inotify, or polling (with its `reason`) when inotify fails."""
    return Waker()
