"""Starting and stopping rule tasks: the supervisor's round, and what a save or delete does."""

import logging
import uuid

from django.conf import settings

from alerts import leases, positions
from alerts.models import AlertRule
from webapp.streams import faults
from webapp.streams import leases as stream_leases

log = logging.getLogger("tailboard.alerts")

# A rule task runs until revoked; Celery's task time limit (sized for streams) must not end it.
RULE_TIME_LIMIT = 10 * 365 * 86_400


def redis_client():
    """This process's blocking Redis client (shared with the stream lifecycle)."""
    return stream_leases.sync_client()


def start(rule, client=None):
    """Start the rule's task unless one holds its lease; return the new task id or None."""
    from alerts.tasks import run_rule

    client = client or redis_client()
    task_id = f"alert-{rule.pk}-{uuid.uuid4()}"
    if not leases.claim(client, rule.pk, task_id):
        return None
    try:
        queue = rule.queue()
    except LookupError as exc:
        leases.release(client, rule.pk, task_id)
        log.error("alert rule %s (%s) not started: %s", rule.pk, rule.name, exc)
        return None
    # Before the task can say anything: what a task on a killed worker last said ("following
    # ...") is no longer true.
    note_state(rule, f"queued as task {task_id} on {queue}")
    try:
        # A message no worker took before its lease lapsed is dropped, not run late: the
        # next supervisor round has sent another by then.
        run_rule.apply_async(args=[rule.pk], task_id=task_id, queue=queue,
                             time_limit=RULE_TIME_LIMIT, soft_time_limit=None,
                             expires=settings.ALERT_LEASE_SECONDS)
    except faults.OUTSIDE as exc:
        leases.release(client, rule.pk, task_id)
        log.error("alert rule %s (%s) not started on queue %s: %s", rule.pk, rule.name,
                  queue, exc)
        note_state(rule, f"error: not started on queue {queue}: {exc}")
        return None
    log.info("alert rule %s (%s) started as task %s on queue %s", rule.pk, rule.name,
             task_id, queue)
    note_missing_worker(rule, queue, client)
    return task_id


def note_state(rule, text):
    """Record the rule's state; a database that fails here is logged, and the start goes on."""
    from alerts.runner import set_state

    try:
        set_state(rule.pk, text)
    except faults.OUTSIDE as exc:
        log.warning("alert rule %s: could not record its state %r: %s", rule.pk, text, exc)


def note_missing_worker(rule, queue, client):
    """Say in the rule's state (and the log) when no worker consumes its queue."""
    from webapp.streams import workers

    try:
        if workers.online(client).get(queue):
            return
    except faults.OUTSIDE as exc:
        log.warning("alert rule %s: could not read the worker registry: %s", rule.pk, exc)
        return
    text = (f"waiting for a worker on queue {queue} (none online: run "
            f"`celery -A celery_app worker -Q {queue}` where the source is)")
    log.warning("alert rule %s (%s): %s", rule.pk, rule.name, text)
    note_state(rule, text)


def stop(rule_id, client=None, forget=True):
    """Drop the rule's lease and revoke its task (terminate=True); return the task id.

    With `forget` (a rule disabled or deleted) its saved position goes too; the lease goes
    first, so the revoked task, which saves only while it holds it, cannot save it again.
    """
    from webapp.streams.control import revoke_task

    client = client or redis_client()
    task_id = leases.drop(client, rule_id)
    if forget:
        positions.forget(client, rule_id)
    if task_id:
        revoke_task(task_id)
        log.info("alert rule %s: task %s revoked", rule_id, task_id)
    return task_id


def restart(rule):
    """Stop the rule's task and start a new one if it is enabled (after a save)."""
    client = redis_client()
    stop(rule.pk, client, forget=not rule.enabled)
    return start(rule, client) if rule.enabled else None


def supervise_once():
    """Start every enabled rule whose lease is missing; stop tasks of rules gone or disabled.

    Returns (started, stopped): lists of rule ids.
    """
    client = redis_client()
    rules = {rule.pk: rule for rule in AlertRule.objects.filter(enabled=True)}
    held = leases.holders(client, rules)
    started = [pk for pk, rule in rules.items() if held.get(pk) is None and start(rule, client)]
    stopped = [pk for pk in leases.scan_rule_ids(client) if pk not in rules and stop(pk, client)]
    if started or stopped:
        log.info("alert supervisor: started rules %s, stopped rules %s", started, stopped)
    return started, stopped

