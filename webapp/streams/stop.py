"""Stopping a running stream task: the one path, from a Stop to the task's end, in order.

The viewer's Stop, a closed connection, an administrator's stop (`control.stop_streams`:
the admin action, `manage.py streams stop`) and the alert supervisor all end a running
task this way. Each step below runs in the process named, and the functions of this module
follow the same order (docs/architecture.md, "How a stream is stopped", draws it):

1. Web side (Daphne, the `streams` command, the alert supervisor). The viewer is told
   first (`status stopped` and the close; from outside the connection, the stop event to
   its consumer), then the stream's lease is dropped (`session.release`, `leases.release`),
   then `revoke_task` broadcasts the `stream_revoke` control command. The lease goes
   before the revoke: that is how step 4 knows the signal is meant for the task.
2. Worker main process: `stream_revoke` runs Celery's own `revoke(terminate=True)` with
   `REVOKE_SIGNAL` (SIGUSR1) instead of SIGTERM: the task id joins the revoked set (a task
   still queued never starts) and the pool process running it is signalled. It arms
   `check_back` on the worker's timer, STREAM_REVOKE_GRACE_MS later (step 5).
3. Pool process, the signal: while the task's event loop runs, SIGUSR1 belongs to the loop
   (`revoke_signal_handled`): asyncio's C-level handler writes to the loop's wakeup fd and
   the loop sets an event, so the signal never raises where the process happens to be (a
   GC callback, a `finally`, a Redis write) and is never lost there. Before the loop runs
   and after it, SIGUSR1 is ignored (`ignore_revoke_signal`, `ignore_late_revoke`): a late
   revoke neither kills an idle process nor fails the next task.
4. Pool process, the lease check: `revoked` wakes on that event and reads the lease. Gone:
   the task ends in order (`task.supervise` cancels body, watchdog and ack receiver;
   `task.run_stream` closes the loop and records the end, `task.REVOKED`) and the process
   serves the next task. Held: the signal was sent for an earlier task of this process
   that ended as it arrived; it is ignored (logged) and the task goes on.
5. Fallback, worker main process: Celery forgets a request once it has signalled it, so no
   second revoke could reach the process. `check_back` looks again: a pool job still not
   done whose task has not recorded its end (`end_recorded`; the worker may just not have
   read the job's result yet) gets SIGTERM (`FALLBACK_SIGNAL`). Otherwise the process
   lived on: billiard's "terminated on purpose" marks are cleared on it
   (`forget_termination`), so a later real death of it (SIGKILL, OOM) is still reported.
6. Fallback, pool process: billiard turns SIGTERM into `SystemExit`, and the task's
   `finally` runs under `deferred_termination`: a SIGTERM landing there is held until the
   loop is closed and the end recorded, then delivered; one swallowed where CPython cannot
   raise (a GC callback or `__del__`: `termination_lost`) makes `task.finish` exit the
   process after recording the end. billiard forks a replacement.

Guarantees. Order: the viewer is told before the lease goes, the lease goes before the
revoke. No lost signal: SIGUSR1 reaches the loop through its wakeup fd whatever runs at
that moment; one that lands from the task's start until the loop's handler is in is
ignored, and the lease, already gone, ends the task at its first check (`supervise` reads it before it
starts the body; the watchdog after that); SIGTERM is held, not lost, while the end is
recorded, and a swallowed one still ends the process. Fallback: a task that does not end
within the grace (stuck in a blocking call, frozen) is terminated; one whose lease is gone
and whose revoke was lost altogether (no worker answered) ends at its next lease check.

Imported by `celery_app`, which registers the `stream_revoke` command in every worker. Used
by `alerts.tasks` for rule tasks too (same signal, same loop handling).
"""

import contextlib
import logging
import signal
import threading

import redis
from celery.worker import control
from celery.worker import state as worker_state
from django.conf import settings

from webapp import redisconf
from webapp.streams import faults, internals

log = logging.getLogger("tailboard.stop")

REVOKE_COMMAND = "stream_revoke"

# The signal a Stop or a closed connection revokes a running stream task with. billiard
# leaves SIGUSR1 to soft time limits, which this project does not use; while a stream task
# runs, the task owns it and turns it into an orderly exit of its event loop, so the pool
# process lives on for the next task instead of being forked anew.
REVOKE_SIGNAL = signal.SIGUSR1
# The fallback for a task that has not ended STREAM_REVOKE_GRACE_MS after its revoke.
FALLBACK_SIGNAL = signal.SIGTERM
TERMINATION_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


# 1. Web side: the broadcast (the viewer was told and the lease dropped before) ------------

def revoke_task(task_id):
    """Revoke the task and end it if it runs (the one revoke path: steps 2 to 6).

    Blocking (a broadcast over the broker): call it from a thread, a management command or
    a sync view. Call it after the lease is dropped.
    """
    from celery_app import app

    try:
        app.control.broadcast(REVOKE_COMMAND, arguments={"task_id": task_id})
    except faults.OUTSIDE as exc:
        log.error("revoke of task %s failed (its lease is gone, so it ends anyway): %s",
                  task_id, exc)


# 2. Worker main process: Celery's revoke with SIGUSR1, the fallback armed -----------------

@control.control_command(args=[("task_id", str)], signature="<task_id>")
def stream_revoke(state, task_id, **kwargs):
    """Revoke a stream task in order (SIGUSR1); SIGTERM its process if it has not ended soon."""
    request = worker_state.requests.get(task_id)
    reply = control.revoke(state, task_id, terminate=True, signal=REVOKE_SIGNAL.name)
    if request is not None:
        consumer = state.consumer
        consumer.timer.call_after(settings.STREAM_REVOKE_GRACE_MS / 1000, check_back,
                                  (consumer.pool, request))
    return reply


# 3. Pool process: the signal is the loop's while the task runs, ignored otherwise ---------

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


# 4. Pool process: the lease tells whether the signal is this task's -----------------------

async def revoked(redis_client, task_id, signalled):
    """Return once a revoke signal meant for this task has arrived.

    A signal is meant for this task when its lease is gone (Stop and disconnect drop the
    lease before they revoke); one that finds the lease held was sent for an earlier task
    of this process that ended as its revoke arrived, and is ignored.
    """
    from webapp.streams import leases

    while True:
        await signalled.wait()
        signalled.clear()
        try:
            if not await leases.aheld(redis_client, task_id):
                return
        except faults.OUTSIDE as exc:
            log.warning("task %s: revoke signal, lease unknown (%s): ending", task_id, exc)
            return
        log.info("task %s: ignored a revoke signal while its lease is held "
                 "(meant for an earlier task of this process)", task_id)


# 5. Fallback, worker main process: SIGTERM a process still busy with the task -------------

def check_back(pool, request):
    """Terminate the process still running a revoked task; tidy up after one that ended.

    Returns the signal sent (SIGTERM) or None.
    """
    job = internals.pool_job(request)
    pid = internals.job_pid(job) or request.worker_pid
    if job is not None and not job.ready() and pid and not end_recorded(request.id):
        log.warning("task %s did not end within %s ms of its revoke: terminating its "
                    "process %s", request.id, settings.STREAM_REVOKE_GRACE_MS, pid)
        pool.terminate_job(pid, FALLBACK_SIGNAL)
        return FALLBACK_SIGNAL
    forget_termination(pool, pid)
    return None


_client = []


def end_recorded(task_id):
    """True when the task has recorded its end (`task.finish`): its process is past it.

    The worker's own loop may not have read the process's result yet (a busy machine delays
    it), so "the job is not done" alone could SIGTERM a process that has moved on. False
    when Redis does not answer within half a second.
    """
    from webapp.streams import leases

    if not _client:
        _client.append(redisconf.configured().sync_client(socket_timeout=0.5,
                                                          socket_connect_timeout=0.5))
    try:
        return bool(_client[0].exists(leases.end_key(task_id)))
    except redis.RedisError as exc:
        log.warning("task %s: could not read its end (%s)", task_id, exc)
        return False


def forget_termination(pool, pid):
    """Clear billiard's "terminated on purpose" marks on a process that lived on.

    billiard marks a process it signals for a revoke, expecting it to die; left set on a
    process that ended its task in order, the marks would make a later real death of that
    process (SIGKILL, OOM) pass as a revoke, silently.
    """
    internals.clear_termination_marks(pool, pid)


# 6. Fallback, pool process: SIGTERM held back while the task records its end --------------

@contextlib.contextmanager
def deferred_termination(signums=TERMINATION_SIGNALS):
    """Run the block with termination signals held back; deliver the first one afterwards.

    billiard turns SIGTERM into SystemExit in the pool process. Arriving in the middle of a
    `finally`, that SystemExit would cut the tidying short (files, sockets and the task's
    end record left behind) or be swallowed by it (the process then lives on with its
    signal handler spent). Deferring it to the end of the `finally` gives both: everything
    is closed and recorded, then the process exits as asked.
    """
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


def deliver(signum, handler):
    """Act on a held-back signal the way its handler would have."""
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        raise SystemExit(128 + signum)


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
