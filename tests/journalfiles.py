"""Real journal files for tests, written by Debian's systemd-journal-remote from entries in
the journal export format (no journald daemon needed)."""

import os
import shutil
import struct
import subprocess
import uuid

import pytest

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT_ID = "0123456789abcdef0123456789abcdef"


def available():
    """True when systemd-journal-remote is installed (apt: systemd-journal-remote)."""
    return os.access(JOURNAL_REMOTE, os.X_OK)


def in_ci():
    """True in CI (`CI` set to anything but empty, 0 or false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


# Journal tests are skipped where systemd-journal-remote is missing, except in CI (.ci/run
# installs it): there they run and fail.
needed = pytest.mark.skipif(not available() and not in_ci(),
                            reason=f"{JOURNAL_REMOTE} is missing (apt-get install "
                                   "systemd-journal-remote)")


def entry(message, *, usec, unit="app.service", ident="app", pid=100, priority=6,
          host="web1", monotonic=None, **fields):
    """The fields of one entry, as journald would store them (values: str, or a list of str
    for a field given several times)."""
    data = {"__REALTIME_TIMESTAMP": str(usec),
            "__MONOTONIC_TIMESTAMP": str(monotonic if monotonic is not None else usec),
            "_BOOT_ID": BOOT_ID, "_HOSTNAME": host, "MESSAGE": message}
    if unit is not None:
        data["_SYSTEMD_UNIT"] = unit
    if ident is not None:
        data["SYSLOG_IDENTIFIER"] = ident
    if pid is not None:
        data["_PID"] = str(pid)
    if priority is not None:
        data["PRIORITY"] = str(priority)
    data.update({key: value if isinstance(value, list) else str(value)
                 for key, value in fields.items()})
    return data


def export(entries):
    """Serialise entries in the journal export format (binary-safe for multi-line values; a
    list value gives the field once per item, in order)."""
    out = bytearray()
    for fields in entries:
        for key, values in fields.items():
            for value in values if isinstance(values, list) else [values]:
                raw = value.encode("utf-8")
                if b"\n" in raw:
                    out += key.encode() + b"\n" + struct.pack("<Q", len(raw)) + raw + b"\n"
                else:
                    out += key.encode() + b"=" + raw + b"\n"
        out += b"\n"
    return bytes(out)


def write(path, entries):
    """Append entries to the journal file at `path` (created if missing) and wait till done."""
    result = subprocess.run([JOURNAL_REMOTE, f"--output={path}", "-"], input=export(entries),
                            capture_output=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"journal-remote failed: {result.stderr.decode(errors='replace')}")


class Writer:
    """A journal-remote process kept running: entries written to it land in the file while a
    reader follows it."""

    def __init__(self, path):
        self.path = path
        self.process = subprocess.Popen([JOURNAL_REMOTE, f"--output={path}", "-"],
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)

    def write(self, entries):
        """Hand entries to journal-remote (it writes them as they arrive)."""
        self.process.stdin.write(export(entries))
        self.process.stdin.flush()

    def close(self):
        """End the input; journal-remote finishes writing and exits."""
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def archive(path):
    """Rotate the journal file at `path` the way journald archives one: rename it to
    `NAME@SEQNUM_ID-HEAD_SEQNUM-HEAD_REALTIME.journal` (a new file takes its name later)."""
    folder, name = os.path.split(path)
    archived = os.path.join(folder, f"{name[:-len('.journal')]}@{uuid.uuid4().hex}"
                                    f"-0000000000000001-0005f0e2a3b4c5d6.journal")
    shutil.move(path, archived)
    return archived
