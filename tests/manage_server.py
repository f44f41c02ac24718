"""Run many `manage.py` commands in one long-lived process instead of one process each.

Starting Python and Django costs about a second per `manage.py` run; a test installation runs
dozens (adding sources, users, reading records). `ManageServer` starts this module once with the
installation's environment (`python -m tests.manage_server`) and sends it one command line at a
time; the server runs each exactly as `manage.py` would (Django's `ManagementUtility`: same
argument parsing, same output, exit code 1 on a `CommandError`), with its own stdout and
stderr captured, and closes its database connections after every command, as a process exit
would.
"""

import contextlib
import io
import json
import os
import select
import subprocess
import sys
import threading
import time
import traceback


def exit_code(stop, stderr):
    """Return the exit code a process ending with this SystemExit would have."""
    if stop.code is None:
        return 0
    if isinstance(stop.code, int):
        return stop.code
    print(stop.code, file=stderr)
    return 1


def run_command(argv):
    """Run one `manage.py ARGV` here; return (exit code, stdout, stderr)."""
    from django.core.management import ManagementUtility
    from django.db import connections

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            ManagementUtility(["manage.py", *argv]).execute()
        except SystemExit as stop:
            code = exit_code(stop, err)
        except BaseException:  # noqa: BLE001 - reported like an uncaught exception at exit
            traceback.print_exc()
            code = 1
        finally:
            connections.close_all()
    return code, out.getvalue(), err.getvalue()


def serve(requests, replies):
    """Answer JSON argv lines from `requests` with JSON result lines on `replies` until EOF."""
    import django

    django.setup()
    replies.write(json.dumps({"ready": True}) + "\n")
    replies.flush()
    for line in requests:
        code, out, err = run_command(json.loads(line))
        replies.write(json.dumps({"code": code, "stdout": out, "stderr": err}) + "\n")
        replies.flush()


def main():
    """Serve on the standard streams; stray writes to fd 1 go to stderr, stdin reads nothing."""
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull, encoding="utf-8")
    serve(requests, replies)


class ManageServer:
    """A client of one server process with a fixed environment; `run()` is `manage.py ARGS`."""

    def __init__(self, root, env, log_path):
        self.root, self.env, self.log_path = root, dict(env), log_path
        self.process = None
        self.lock = threading.Lock()

    def _start(self, timeout):
        """Start the server and wait for its ready line."""
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.manage_server"], cwd=self.root, env=self.env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        log.close()
        if "ready" not in self._reply(timeout):
            raise RuntimeError("manage server did not start")

    def _reply(self, timeout):
        """Read one JSON reply line; kill the server and raise on timeout or exit."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise subprocess.TimeoutExpired("manage.py (server)", timeout)
            if select.select([self.process.stdout], [], [], remaining)[0]:
                line = self.process.stdout.readline()
                if not line:
                    tail = self.log_path.read_text(errors="replace")[-3000:]
                    self.close()
                    raise RuntimeError(f"manage server exited:\n{tail}")
                return json.loads(line)

    def run(self, args, timeout=120):
        """Run `manage.py ARGS` in the server; return a CompletedProcess like subprocess.run."""
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                self._start(timeout)
            self.process.stdin.write((json.dumps(list(args)) + "\n").encode())
            self.process.stdin.flush()
            reply = self._reply(timeout)
        return subprocess.CompletedProcess(["manage.py", *args], reply["code"], reply["stdout"],
                                           reply["stderr"])

    def close(self):
        """End the server (EOF, then SIGKILL if it lingers)."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        process.stdout.close()


if __name__ == "__main__":
    main()
