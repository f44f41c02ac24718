"""Confinement of log reading to the log roots (`LOG_ROOTS`): pure, no Django.

`open_confined(path, roots)` opens a file read-only and guarantees that the file actually
opened (checked on the descriptor, not on the name, so a swap between check and open cannot
win) has a real path under one of the roots and not under /proc, /sys or /dev, and is a regular
file. It first opens the name with O_PATH (no read, no side effect even on a device or FIFO) —
through `openat2` with RESOLVE_NO_MAGICLINKS where the kernel has it, so /proc/<pid>/fd-style
magic links are refused during resolution — then reads the real path of that descriptor from
/proc/self/fd, and only if it is allowed reopens that very inode for reading.

RESOLVE_BENEATH is not used: it refuses every absolute symlink, also one that stays inside the
roots (`/var/log/app/current -> /var/log/app/2024.log`), which the contract allows
("symlinks followed"); the check on the descriptor is the guarantee.

The roots are not enough when several groups' logs share them: a log writer of one folder
could plant `app.log.2 -> ../secret/secret.log` and have its source's viewers read another
group's log. So the file reached must also lie directly in its source's own folder (the
folder of the name opened, resolved), unless a link made by root or the worker's own user
leads elsewhere (`source_folders`): the administrator's links are followed, a log writer's
links only within the folder.

`check_under_roots(path, roots)` is the validator for the admin and the CLI.
"""

import collections
import ctypes
import errno
import os
import platform
import stat

FORBIDDEN = ("/proc", "/sys", "/dev")
AT_FDCWD = -100
RESOLVE_NO_MAGICLINKS = 0x02
SYS_OPENAT2 = 547 if platform.machine().startswith("alpha") else 437
DELETED = " (deleted)"
MAX_LINKS = 40  # like the kernel's limit on links followed in one lookup
READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


class OutsideRoots(Exception):
    """The path, or the file it resolves to, is not allowed by the log roots; str() says why."""


class NotRegularFile(OSError):
    """The path resolves to something other than a regular file (directory, FIFO, device)."""


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


_openat2 = {"usable": None, "syscall": None}


def parse_roots(text):
    """Split a colon-separated `LOG_ROOTS` value into absolute directories; ValueError if not."""
    roots = [part for part in text.split(":") if part]
    for root in roots:
        if not os.path.isabs(root):
            raise ValueError(f"LOG_ROOTS entries must be absolute directories, not {root!r}")
    if not roots:
        raise ValueError("LOG_ROOTS names no directory")
    return roots


def real_roots(roots):
    """Return the roots as resolved absolute paths (a root may itself be a symlink)."""
    if isinstance(roots, (str, bytes, os.PathLike)):
        roots = [roots]
    resolved = []
    for root in roots:
        root = os.fspath(root)
        if not os.path.isabs(root):
            raise ValueError(f"log root {root!r} is not an absolute path")
        resolved.append(os.path.realpath(root))
    return resolved


def _within(path, folder):
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def forbidden(real):
    """Whether a resolved path lies under /proc, /sys or /dev (never read, whatever the roots)."""
    return any(_within(real, place) for place in FORBIDDEN)


def is_confined(real, roots):
    """Whether a resolved path lies under one of the (resolved) roots and is not forbidden."""
    return not forbidden(real) and any(_within(real, root) for root in roots)


def roots_text(roots):
    """The roots as `LOG_ROOTS` spells them, for messages."""
    return ":".join(os.fspath(root) for root in roots)


def check_under_roots(path, roots):
    """Raise OutsideRoots (naming LOG_ROOTS) unless `path` is under a root, given and resolved.

    The path need not exist: what exists of it is resolved (symlinks followed). A glob in its
    last component is checked through its directory.
    """
    path = os.fspath(path)
    allowed = real_roots(roots)
    given = [os.path.normpath(os.fspath(root)) for root in (
        [roots] if isinstance(roots, (str, os.PathLike)) else roots)]
    if "\0" in path:
        raise OutsideRoots("a log path cannot contain a NUL byte")
    if not os.path.isabs(path):
        raise OutsideRoots(f"{path} is not an absolute path; a log path must lie under "
                           f"LOG_ROOTS ({roots_text(given)})")
    lexical = os.path.normpath(path)
    if forbidden(lexical) or not any(_within(lexical, root) for root in given + allowed):
        raise OutsideRoots(f"{path} is not under LOG_ROOTS ({roots_text(given)})")
    resolved = os.path.realpath(path)
    if not is_confined(resolved, allowed):
        raise OutsideRoots(f"{path} resolves to {resolved}, which is not under LOG_ROOTS "
                           f"({roots_text(given)})")


def _syscall():
    if _openat2["syscall"] is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        _openat2["syscall"] = libc.syscall
    return _openat2["syscall"]


def _open_path(path):
    """Open `path` with O_PATH, refusing magic links where openat2 exists."""
    flags = os.O_PATH | os.O_CLOEXEC
    if _openat2["usable"] is not False:
        how = _OpenHow(flags, 0, RESOLVE_NO_MAGICLINKS)
        fd = _syscall()(SYS_OPENAT2, AT_FDCWD, os.fsencode(path), ctypes.byref(how),
                        ctypes.sizeof(how))
        if fd >= 0:
            _openat2["usable"] = True
            return fd
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EPERM) or _openat2["usable"]:
            raise OSError(code, os.strerror(code), path)
        _openat2["usable"] = False  # no openat2 here (old kernel, or seccomp says EPERM)
    return os.open(path, flags)


def resolved_path(fd):
    """Return the real path of the file open at `fd`, read from /proc/self/fd."""
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError as exc:
        raise OutsideRoots("its real path cannot be verified (/proc is not available: "
                           f"{exc.strerror or exc})") from None
    if real.endswith(DELETED) and os.fstat(fd).st_nlink == 0:
        real = real[: -len(DELETED)]
    return real


def trusted_owners():
    """Who may make a link that leads out of a source's folder: root and the worker's user."""
    return {0, os.geteuid()}


def source_folders(path, owners=None, roots=None):
    """Return the folders a file named `path` may resolve into (resolved paths).

    Its own folder (resolved), and the folder of the target of each symlink on its way that
    root or the worker's own user made (a link's owner is whoever created it: nobody else
    can make one owned by root). A link made by anyone else — a log writer who can write the
    folder — leads nowhere new: what it reaches must lie in a folder already allowed. That
    holds for the folders on the way too (`trusted_realpath`): a folder reached through such a
    link (a planted `pods/ns_web_u1 -> ns_secret_u2`) allows nothing. With `roots` (resolved),
    only links that lie under a root are judged (what a log writer can make); links on the
    way to a root (`/logs -> /data/logs`) are the administrator's setup and followed.
    """
    owners = trusted_owners() if owners is None else owners
    name = os.path.abspath(os.fspath(path))
    folders = []
    for _ in range(MAX_LINKS):
        folder = trusted_realpath(os.path.dirname(name), owners, roots)
        if folder is None:
            break
        folders.append(folder)
        try:
            info = os.lstat(name)
            if not stat.S_ISLNK(info.st_mode) or info.st_uid not in owners:
                break
            name = os.path.join(folder, os.readlink(name))
        except OSError:
            break
    return folders


def trusted_realpath(path, owners, roots=None):
    """`os.path.realpath(path)` following only symlinks made by `owners`, else None.

    Resolved one component at a time, as the kernel does (a missing component is kept as
    named, like realpath); None when a link made by anyone else, or more than MAX_LINKS
    links, are on the way. With `roots` (resolved), a link that does not lie under one of
    them may have any owner.
    """
    parts = collections.deque(os.path.abspath(os.fspath(path)).split(os.sep))
    resolved, links = os.sep, 0
    while parts:
        part = parts.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            resolved = os.path.dirname(resolved)
            continue
        candidate = os.path.join(resolved, part)
        try:
            info = os.lstat(candidate)
            if not stat.S_ISLNK(info.st_mode):
                resolved = candidate
                continue
            target = os.readlink(candidate)
        except OSError:
            resolved = candidate
            continue
        links += 1
        if links > MAX_LINKS or info.st_uid not in owners and (
                roots is None or any(_within(candidate, root) for root in roots)):
            return None
        if target.startswith(os.sep):
            resolved = os.sep
        parts.extendleft(reversed(target.split(os.sep)))
    return resolved


def open_confined(path, roots, own_folder=True):
    """Open `path` read-only and return the descriptor, if the file opened is allowed.

    With `own_folder`, the file reached must also lie directly in one of `source_folders(path)`:
    its own folder, or where a link made by root (or the worker's user) leads.

    Raises OutsideRoots (with a human reason, shown to viewers: it never names the roots nor
    the file reached) when the file actually reached is outside every root or under /proc,
    /sys or /dev, or (`own_folder`) outside the allowed folders; NotRegularFile for a
    directory, FIFO, socket or device (never opened for reading); and the kernel's OSError
    (FileNotFoundError, PermissionError, ...) otherwise. `roots` are absolute directories, resolved here (pass `real_roots()` once
    to save that work).
    """
    allowed = real_roots(roots)
    handle = _open_path(os.fspath(path))
    try:
        real = resolved_path(handle)
        if not is_confined(real, allowed):
            where = "under /proc, /sys or /dev" if forbidden(real) else "outside the log roots"
            raise OutsideRoots(f"resolves to a file {where}; it is not read")
        if own_folder and os.path.dirname(real) not in source_folders(path, roots=allowed):
            raise OutsideRoots("resolves to a file outside its source's folder (through a "
                               "link not made by root); it is not read")
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(errno.EINVAL, "not a regular file", os.fspath(path))
        fd = os.open(f"/proc/self/fd/{handle}", READ_FLAGS)
    finally:
        os.close(handle)
    opened = os.fstat(fd)
    if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
        os.close(fd)
        raise OutsideRoots("changed while it was being opened; it is not read")
    return fd
