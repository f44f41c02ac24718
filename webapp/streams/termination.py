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
