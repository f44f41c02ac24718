"""The worker side of revoking a stream task: an orderly exit first, SIGTERM as the fallback.

`control.revoke_task` broadcasts the `stream_revoke` control command. Every worker runs
Celery's own revoke (terminate=True) with SIGUSR1 (`termination.REVOKE_SIGNAL`): the
worker that runs the task signals its pool process, and the task turns the signal into an
orderly exit of its event loop, so the process serves the next task instead of being
replaced by a fork. Celery forgets a request once it has signalled it, so a second revoke
could not reach the process any more; the worker that signalled therefore checks back
itself, on its own timer, after STREAM_REVOKE_GRACE_MS: a process still busy with that task
(stuck in a blocking call, or the signal came before the task could take it) is sent
SIGTERM, which ends it as a revoke always did before — unless the task has recorded its end
in Redis (then the process is past it, only the worker has not read its result yet).

Imported by `celery_app`, which registers the command in every worker.
"""

import logging
import signal

import redis

from celery.worker import control, state as worker_state
from django.conf import settings

from webapp import redisconf
from webapp.streams import internals
from webapp.streams.termination import REVOKE_SIGNAL

log = logging.getLogger("tailboard.revoke")

REVOKE_COMMAND = "stream_revoke"
FALLBACK_SIGNAL = signal.SIGTERM


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


def job_of(request):
    """Return the pool job of a request (billiard's ApplyResult), or None once it is gone."""
    return internals.pool_job(request)


def check_back(pool, request):
    """Terminate the process still running a revoked task; tidy up after one that ended.

    Returns the signal sent (SIGTERM) or None.
    """
    job = job_of(request)
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
