"""Alert rules on real processes: a prefork worker pair and a beat process, Apprise delivering to
a JSON webhook and an SMTP server on loopback; a killed worker's rule restarted elsewhere within
60 s with no alert sent twice; a racing task never fires; disabling a rule revokes its task."""

import json
import os
import signal
import sys
import time
import uuid

import pytest

from tests.alertreceivers import SmtpServer, WebhookServer
from tests.harness import Harness

LEASE = 10
SUPERVISE = 5
QUEUES = "tailf.alerts,alerts"


@pytest.fixture
def receivers():
    hook, smtp = WebhookServer(), SmtpServer()
    yield hook, smtp
    hook.close()
    smtp.close()


@pytest.fixture
def installation(tmp_path):
    harness = Harness(tmp_path / "tb", ALERT_INTERNAL_ALLOW="127.0.0.1",
                      ALERT_LEASE_SECONDS=str(LEASE), ALERT_SUPERVISE_SECONDS=str(SUPERVISE))
    try:
        yield harness
    finally:
        harness.close()


def rules(harness):
    return {rule["name"]: rule for rule in json.loads(harness.manage("alerts", "list", "--json"))}


def lease_holder(harness, rule_id):
    value = harness.redis.get(f"tailboard:alert:lease:{rule_id}")
    return value.decode() if value else None


def make_rule(harness, log, hook, smtp):
    source_id = harness.add_log("app", str(log))
    out = harness.shell(
        "from alerts.models import AlertRule, AlertDestination\n"
        f"rule = AlertRule.objects.create(name='errors', kind='log', source_id={source_id}, "
        "pattern='ERROR', cooldown=0)\n"
        f"rule.destinations.add(AlertDestination.objects.create(name='hook', url={hook.url!r}),"
        f" AlertDestination.objects.create(name='mail', url={smtp.url!r}))\n"
        "print(rule.pk)\n")
    return int(out.strip().splitlines()[-1])


def saved_offset(harness, rule_id, log):
    """The offset in `log` where the rule's saved position says its reading got to, or None."""
    raw = harness.redis.get(f"tailboard:alert:position:{rule_id}")
    place = json.loads(raw)["position"].get(str(log)) if raw else None
    return place[2] if place else None


def running_on(harness, rule_id, workers, timeout=60):
    """Wait until a task holds the rule and reports `following`; return (task id, worker)."""
    def found():
        task_id = lease_holder(harness, rule_id)
        if not task_id or "following" not in rules(harness)["errors"]["state"]:
            return None
        for worker in workers:
            if worker.poll() is None and task_id in harness.active_task_ids(worker):
                return task_id, worker
        return None

    result = harness.wait_for(found, timeout, interval=0.5)
    assert result, f"rule not running: {rules(harness)['errors']}"
    return result


def test_rules_run_without_a_browser_and_survive_a_killed_worker(installation, receivers,
                                                                 tmp_path):
    harness = installation
    hook, smtp = receivers
    log = tmp_path / "tb" / "app.log"
    log.write_text("ERROR from before the rule: never alerted\n")
    workers = [harness.start_worker("a1", queues=QUEUES, concurrency=2),
               harness.start_worker("a2", queues=QUEUES, concurrency=2)]
    harness.spawn("beat", [sys.executable, "-m", "celery", "-A", "celery_app", "beat", "-l",
                           "info", "-s", str(tmp_path / "tb" / "beat-schedule")])
    rule_id = make_rule(harness, log, hook, smtp)
    first_task, first_worker = running_on(harness, rule_id, workers)

    with log.open("a") as handle:
        handle.write("fine\nERROR one: disk full\n")
    body = hook.wait_for(1)[0]
    assert "ERROR one: disk full" in body["message"] and "before the rule" not in body["message"]
    mail = smtp.wait_for(1)[0][2]
    assert "ERROR one: disk full" in mail

    # Once the firing is recorded and counted, and where the reading got to is saved, kill
    # the worker running the rule: the other one runs it within 60 s, from there on.
    assert harness.wait_for(lambda: harness.redis.hget("tailboard:metrics:alert_events",
                                                       '["errors","firing"]') == b"1", 10)
    assert harness.wait_for(lambda: saved_offset(harness, rule_id, log) == log.stat().st_size, 10)
    killed_at = time.monotonic()
    harness.stop(first_worker, sig=signal.SIGKILL)
    with log.open("a") as handle:
        handle.write("ERROR gap: written while no task ran\n")
    survivors = [worker for worker in workers if worker is not first_worker]
    second_task, second_worker = running_on(harness, rule_id, survivors, timeout=60)
    assert time.monotonic() - killed_at < 60
    assert second_task != first_task and second_worker is survivors[0]

    hook.wait_for(2)
    with log.open("a") as handle:
        handle.write("ERROR two: after the restart\n")
    hook.wait_for(3)
    time.sleep(2)  # the scenario: 2 s in which a repeated "one" would arrive
    messages = [body["message"] for body in hook.received]
    assert len(messages) == 3, messages  # "one" was not sent again
    assert "ERROR gap" in messages[1] and "ERROR one" not in messages[1]
    assert "ERROR two" in messages[2] and "ERROR gap" not in messages[2]
    assert len(smtp.wait_for(3)) == 3

    # A second task racing for the same rule does not start, and never fires.
    from celery import Celery

    racer = f"racer-{uuid.uuid4()}"
    Celery(broker=harness.redis_url).send_task("alerts.run_rule", args=[rule_id],
                                               task_id=racer, queue="tailf.alerts")
    ended = harness.wait_for(lambda: harness.task_end(racer), 30)
    assert ended and "not started" in ended
    assert lease_holder(harness, rule_id) == second_task

    events = json.loads(harness.shell(
        "import json\nfrom alerts.models import AlertEvent\n"
        "print(json.dumps([[e.event, e.samples, e.results] for e in "
        "AlertEvent.objects.order_by('time')]))\n").strip().splitlines()[-1])
    assert events == [["firing", ["ERROR one: disk full"], {"hook": "sent", "mail": "sent"}],
                      ["firing", ["ERROR gap: written while no task ran"],
                       {"hook": "sent", "mail": "sent"}],
                      ["firing", ["ERROR two: after the restart"],
                       {"hook": "sent", "mail": "sent"}]]
    counted = harness.wait_for(lambda: harness.redis.hget("tailboard:metrics:alert_events",
                                                          '["errors","firing"]') == b"3", 10)
    assert counted, harness.redis.hgetall("tailboard:metrics:alert_events")

    # Disabling the rule revokes its task; nothing more fires.
    harness.shell("from alerts.models import AlertRule\n"
                  f"rule = AlertRule.objects.get(pk={rule_id})\nrule.enabled = False\nrule.save()\n")
    assert harness.wait_for(lambda: harness.task_end(second_task), 20)
    assert lease_holder(harness, rule_id) is None
    assert saved_offset(harness, rule_id, log) is None  # enabled again, it starts at the end
    with log.open("a") as handle:
        handle.write("ERROR three: the rule is off\n")
    time.sleep(SUPERVISE + 2)  # a supervisor round passes: it does not start a disabled rule
    assert len(hook.received) == 3
    assert lease_holder(harness, rule_id) is None


def test_a_rule_on_a_real_worker_follows_a_missing_file_rotation_and_truncation(
        installation, receivers, tmp_path):
    harness = installation
    hook, smtp = receivers
    log = tmp_path / "tb" / "later.log"
    harness.start_worker("a1", queues=QUEUES, concurrency=2)
    source_id = harness.add_log("later", str(log))
    rule_id = int(harness.shell(
        "from alerts.models import AlertRule, AlertDestination\n"
        f"rule = AlertRule.objects.create(name='errors', kind='log', source_id={source_id}, "
        "pattern='ERROR', cooldown=0)\n"
        f"rule.destinations.add(AlertDestination.objects.create(name='hook', url={hook.url!r}))\n"
        "print(rule.pk)\n").strip().splitlines()[-1])  # started by the save, no beat needed

    state = harness.wait_for(lambda: "does not exist" in rules(harness)["errors"]["state"]
                             and rules(harness)["errors"]["state"], 30, 0.5)
    assert state and "later.log" in state
    log.write_text("ERROR one: the file appeared\n")
    assert "the file appeared" in hook.wait_for(1)[0]["message"]
    assert harness.wait_for(lambda: "following" in rules(harness)["errors"]["state"], 10, 0.3)

    log.rename(log.with_suffix(".log.1"))
    log.write_text("ERROR two: after the rotation\n")
    assert "after the rotation" in hook.wait_for(2)[1]["message"]

    with log.open("w") as handle:  # truncated in place, then written
        handle.write("ERROR three: after the truncation\n")
    assert "after the truncation" in hook.wait_for(3)[2]["message"]
    time.sleep(2)  # the scenario: 2 s in which a line read twice would arrive
    assert len(hook.received) == 3  # nothing read twice
    assert lease_holder(harness, rule_id)


def test_a_worker_told_to_stop_ends_its_rules_and_another_takes_them(installation, receivers,
                                                                    tmp_path):
    harness = installation
    hook, smtp = receivers
    log = tmp_path / "tb" / "app.log"
    log.write_text("")
    first = harness.start_worker("a1", queues=QUEUES, concurrency=2)
    rule_id = make_rule(harness, log, hook, smtp)
    task_id, _ = running_on(harness, rule_id, [first])
    second = harness.start_worker("a2", queues=QUEUES, concurrency=2)
    harness.spawn("beat", [sys.executable, "-m", "celery", "-A", "celery_app", "beat", "-l",
                           "info", "-s", str(tmp_path / "tb" / "beat-schedule")])
    os.kill(first.pid, signal.SIGTERM)  # the main process only, as `docker stop` does
    first.wait(20)  # a warm shutdown that does not wait for ever
    assert "revoked" in (harness.task_end(task_id) or "")
    moved, worker = running_on(harness, rule_id, [second], timeout=30)
    assert moved != task_id and worker is second
    with log.open("a") as handle:
        handle.write("ERROR after the move\n")
    assert "after the move" in hook.wait_for(1)[0]["message"]
