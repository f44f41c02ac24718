"""The Celery tasks of alert rules: one long-running task per rule, and the supervisor.

Rule tasks run on `<source queue>.alerts` (`celery -A celery_app worker -Q tailf.alerts`),
never on a viewer's queue; the supervisor runs every ALERT_SUPERVISE_SECONDS from
`celery -A celery_app beat` on ALERT_SUPERVISOR_QUEUE.
"""

import asyncio
import logging
import os

from celery import shared_task, signals
from django.db import close_old_connections

from webapp.streams import faults
from webapp.streams import leases as stream_leases
from webapp.streams.aio import close_loop
from webapp.streams.stop import (
    REVOKE_SIGNAL,
    deferred_termination,
    ignore_revoke_signal,
    revoke_signal_handled,
)

log = logging.getLogger("tailboard.alerts")


@shared_task(bind=True, name="alerts.run_rule", ignore_result=True, track_started=False)
def run_rule(self, rule_id):
    """Watch one rule's source until revoked, its lease is lost or the rule is turned off."""
    from alerts import runner

    ignore_revoke_signal()
    close_old_connections()
    task_id = self.request.id
    worker = self.request.hostname or "unknown"
    loop = asyncio.new_event_loop()
    reason = "terminated"
    try:
        stopped = asyncio.Event()
        with revoke_signal_handled(loop, stopped.set):
            reason = loop.run_until_complete(runner.run(rule_id, task_id, worker, stopped))
        return reason
    except Exception as exc:
        reason = f"failed: {type(exc).__name__}: {exc}"
        log.exception("alert rule %s: task %s failed", rule_id, task_id)
        raise
    finally:
        with deferred_termination():
            close_loop(loop)
            try:
                # The revoke path's check-back reads this: the process is past the task.
                stream_leases.record_end(stream_leases.sync_client(), task_id, reason)
            except faults.OUTSIDE as exc:
                log.error("alert task %s: could not record its end: %s", task_id, exc)
            log.info("alert rule %s: task %s ended: %s", rule_id, task_id, reason)


@shared_task(name="alerts.supervise", ignore_result=True)
def supervise():
    """Start enabled rules with no running task; revoke tasks of rules gone or disabled."""
    from alerts import control

    close_old_connections()
    started, stopped = control.supervise_once()
    return {"started": started, "stopped": stopped}


@signals.worker_shutting_down.connect
def end_rules_on_shutdown(**kwargs):
    """A worker told to stop (SIGTERM to its main process, as `docker stop` sends) ends its
    rule tasks in order: they would otherwise hold its warm shutdown for ever. Their leases
    are released, so the next supervisor round starts them on another worker."""
    from celery.worker import state

    for request in list(state.active_requests):
        if request.name == run_rule.name and request.worker_pid:
            log.info("worker stopping: ending alert task %s", request.id)
            try:
                os.kill(request.worker_pid, REVOKE_SIGNAL)
            except ProcessLookupError:
                pass
