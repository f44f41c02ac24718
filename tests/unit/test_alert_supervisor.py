"""The alert supervisor on a real Redis: one task per rule however many rounds race, rules with
a live lease left alone, tasks of disabled or deleted rules revoked, a queue with no worker said
in the rule's state."""

import threading

import pytest

from alerts import control, leases, positions
from alerts.models import AlertRule
from tailf.models import LogSource

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sent(monkeypatch, redis_client):
    """Celery sends and revokes recorded (the lease logic runs on the real Redis)."""
    from alerts.tasks import run_rule
    from webapp.streams import control as stream_control

    record = {"started": [], "revoked": [], "state_at_send": []}

    class Recorded:
        """The task with its sends recorded. It replaces the module's name rather than the
        task's attribute: a thread may resolve the task proxy through another Celery app."""

        def apply_async(self, **kw):
            record["started"].append((kw["args"][0], kw["task_id"], kw["queue"],
                                      kw["expires"]))
            record["state_at_send"].append(AlertRule.objects.get(pk=kw["args"][0]).state)

        def __getattr__(self, name):
            return getattr(run_rule, name)

    monkeypatch.setattr("alerts.tasks.run_rule", Recorded())
    monkeypatch.setattr(stream_control, "revoke_task", record["revoked"].append)
    return record


@pytest.fixture
def rule(db, sent):
    source = LogSource.objects.create(name="app", path="/var/log/app.log", queue="tailf.web1")
    made = AlertRule.objects.create(name="errors", kind="log", source_id=source.pk,
                                    pattern="ERROR")
    sent["started"].clear()  # the save's own start (after commit)
    sent["state_at_send"].clear()
    leases.drop(control.redis_client(), made.pk)
    return made


def test_a_rule_without_a_lease_is_started_on_its_sources_alert_queue(rule, sent, settings):
    started, stopped = control.supervise_once()
    assert started == [rule.pk] and stopped == []
    (rule_id, task_id, queue, expires), = sent["started"]
    assert (rule_id, queue, expires) == (rule.pk, "tailf.web1.alerts",
                                         settings.ALERT_LEASE_SECONDS)
    assert leases.holder(control.redis_client(), rule.pk) == task_id


def test_a_restarted_rule_no_longer_shows_what_its_lost_task_said(rule, sent):
    """A worker killed while following leaves "following app" behind: the restart replaces it
    before the new task is sent (so nothing reads the old state as the new task's)."""
    AlertRule.objects.filter(pk=rule.pk).update(state="following app")
    control.supervise_once()
    (_, task_id, queue, _), = sent["started"]
    assert sent["state_at_send"] == [f"queued as task {task_id} on {queue}"]
    assert "following" not in AlertRule.objects.get(pk=rule.pk).state


def test_a_rule_whose_task_holds_the_lease_is_left_alone(rule, sent):
    control.supervise_once()
    assert control.supervise_once() == ([], [])
    assert len(sent["started"]) == 1


def test_racing_supervisor_rounds_start_one_task(rule, sent):
    barrier = threading.Barrier(8)

    def round_():
        barrier.wait()
        control.supervise_once()

    threads = [threading.Thread(target=round_) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sent["started"]) == 1


def test_disabled_and_deleted_rules_have_their_tasks_revoked(rule, sent):
    control.supervise_once()
    task_id = sent["started"][0][1]
    AlertRule.objects.filter(pk=rule.pk).update(enabled=False)  # no signal: the supervisor
    assert control.supervise_once() == ([], [rule.pk])
    assert sent["revoked"] == [task_id]
    assert leases.holder(control.redis_client(), rule.pk) is None


def test_saving_a_rule_restarts_its_task_and_disabling_it_revokes(rule, sent):
    control.supervise_once()
    first = sent["started"][0][1]
    rule.pattern = "FATAL"
    rule.save()
    assert sent["revoked"] == [first] and len(sent["started"]) == 2
    second = sent["started"][1][1]
    rule.enabled = False
    rule.save()
    assert sent["revoked"] == [first, second] and len(sent["started"]) == 2
    assert leases.holder(control.redis_client(), rule.pk) is None


def test_a_queue_with_no_worker_is_said_in_the_rules_state(rule, sent):
    control.supervise_once()
    rule.refresh_from_db()
    assert "waiting for a worker on queue tailf.web1.alerts" in rule.state


def test_an_edited_rule_keeps_where_its_reading_got_to_and_a_disabled_one_forgets(rule, sent):
    client = control.redis_client()
    control.supervise_once()
    client.set(positions.key(rule.pk), '{"kind": "log", "source": 1, "position": {}}')
    rule.pattern = "FATAL"
    rule.save()  # restarted: its new task goes on from there
    assert client.exists(positions.key(rule.pk))
    rule.enabled = False
    rule.save()  # enabled again later, it starts at the source's end, as a new rule
    assert not client.exists(positions.key(rule.pk))
    client.set(positions.key(rule.pk), "{}")
    rule.delete()
    assert not client.exists(positions.key(rule.pk))
