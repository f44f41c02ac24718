"""Holding back termination signals while a task's `finally` tidies up.

Celery's revoke(terminate=True) sends SIGTERM, which billiard turns into SystemExit in the
pool process. Arriving in the middle of a `finally`, that SystemExit would cut the tidying
short (files, sockets and the task's end record left behind) or be swallowed by it (the
process then lives on with its signal handler spent). Deferring it to the end of the
`finally` gives both: everything is closed and recorded, then the process exits as asked.
"""

import contextlib
import signal
import threading

TERMINATION_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


@contextlib.contextmanager
def deferred_termination(signums=TERMINATION_SIGNALS):
    """Run the block with termination signals held back; deliver the first one afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = {}

    def hold(signum, frame):
        caught.append(signum)

    for signum in signums:
        previous[signum] = signal.signal(signum, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:
            deliver(caught[0], previous[caught[0]])


def termination_lost():
    """True when this pool process was told to terminate but lives on.

    billiard's SIGTERM handler raises SystemExit wherever the process is; when that is a
    garbage-collection callback or a `__del__`, CPython prints "Exception ignored" and the
    exit is lost, with the handler already spent (the next SIGTERM would kill the process
    without any `finally`).
    """
    try:
        from billiard.common import terminate_handler_fired
    except ImportError:
        return False
    return terminate_handler_fired()


def deliver(signum, handler):
    """Act on a held-back signal the way its handler would have."""
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        raise SystemExit(128 + signum)


# The signal a Stop or a closed connection revokes a running stream task with
# (`control.revoke_task`). billiard leaves SIGUSR1 to soft time limits, which this project
# does not use; while a stream task runs, the task owns it and turns it into an orderly exit
# of its event loop, so the pool process lives on for the next task instead of being forked
# anew. SIGTERM stays the fallback for a task that does not end in time.
REVOKE_SIGNAL = signal.SIGUSR1


@contextlib.contextmanager
def revoke_signal_handled(loop, on_revoke, signum=REVOKE_SIGNAL):
    """While the block runs, deliver `signum` to `on_revoke()` as a callback of `loop`.

    asyncio's own signal handling is used (a no-op Python handler plus the loop's wakeup
    fd), so the signal never raises inside whatever the process happens to be running — a
    garbage-collection callback, a `finally`, a Redis write — and cannot be lost there.
    Afterwards the signal is ignored (`ignore_late_revoke`; removing asyncio's handler
    would otherwise leave SIG_DFL, which ends the process). Outside the main thread
    (tests, threads) the block runs without the handler.
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    loop.add_signal_handler(signum, on_revoke)
    try:
        yield True
    finally:
        # Blocked while asyncio's handler comes off, so none lands on the SIG_DFL it leaves.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signum})
        try:
            loop.remove_signal_handler(signum)
            signal.signal(signum, ignore_late_revoke)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def ignore_late_revoke(signum, frame):
    """A revoke signal for a task that is already ending: nothing more to do."""


def ignore_revoke_signal(signum=REVOKE_SIGNAL):
    """Make a late revoke signal harmless in this process from now on.

    A revoke sent just as a task ended itself reaches a process that is tidying up, idle,
    or loading its next task; billiard's handler would raise there (killing the process or
    failing the next task). The next task's lease check tells whether a revoke was meant
    for it.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signum, ignore_late_revoke)
