"""A rule's task body on the real tail engine, a real Redis and a real webhook receiver: no alert
for old lines, rotation and truncation as for streams, a missing file in the rule's state, one
firing task per lease."""

import asyncio
import os
import time

import pytest
from asgiref.sync import sync_to_async

from alerts import leases, runner
from alerts.models import AlertDestination, AlertEvent, AlertRule
from tailf.models import LogSource
from tests.alertreceivers import WebhookServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_task_starts(monkeypatch):
    """Saving a rule would start its Celery task: recorded instead."""
    from alerts import control

    calls = []
    monkeypatch.setattr(control, "restart", lambda rule: calls.append(("restart", rule.pk)))
    monkeypatch.setattr(control, "stop", lambda pk, client=None: calls.append(("stop", pk)))
    return calls


@pytest.fixture
def webhook(settings):
    settings.ALERT_INTERNAL_ALLOW = ["127.0.0.1"]
    server = WebhookServer()
    yield server
    server.close()


@pytest.fixture
def setup(tmp_path, settings, redis_client, webhook):
    settings.LOG_ROOTS = [str(tmp_path)]
    settings.ALERT_LEASE_SECONDS = 3

    def make(name="app.log", **options):
        path = tmp_path / name
        source = LogSource.objects.create(name=name, path=str(path))
        destination, _ = AlertDestination.objects.get_or_create(name="hook", url=webhook.url)
        rule = AlertRule.objects.create(name=f"errors in {name}", kind="log",
                                        source_id=source.pk, pattern="ERROR",
                                        **({"cooldown": 0} | options))
        rule.destinations.add(destination)
        return rule, path

    return make


def rule_on(kind, source, name, pattern, webhook):
    """A rule (no cooldown) on a source of this kind, sending to the webhook."""
    rule = AlertRule.objects.create(name=name, kind=kind, source_id=source.pk, pattern=pattern,
                                    cooldown=0)
    rule.destinations.add(AlertDestination.objects.create(name="hook", url=webhook.url))
    return rule


async def wait_until(predicate, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await sync_to_async(predicate, thread_sensitive=False)()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


def state_of(rule):
    return AlertRule.objects.get(pk=rule.pk).state


class Running:
    def __init__(self, rule, redis_client, task_id="task-1", claim=True):
        self.rule = rule
        self.task_id = task_id
        if claim:
            assert leases.claim(redis_client, rule.pk, task_id)
        self.stopped = asyncio.Event()
        self.task = asyncio.ensure_future(runner.run(rule.pk, task_id, "w1", self.stopped))

    async def stop(self):
        self.stopped.set()
        return await asyncio.wait_for(self.task, 10)


async def following(setup, redis_client, text="", **options):
    """A log rule (setup's) on a file holding `text`, its task running and following it:
    (rule, path, running)."""
    rule, path = await sync_to_async(setup)(**options)
    path.write_text(text)
    running = Running(rule, redis_client)
    await wait_until(lambda: "following" in state_of(rule))
    return rule, path, running


async def test_old_lines_never_fire_and_new_matches_do(setup, webhook, redis_client):
    rule, path, running = await following(setup, redis_client, "ERROR old one\nERROR old two\n")
    with path.open("a") as handle:
        handle.write("fine\nERROR new disk full\n")
    body = await asyncio.to_thread(webhook.wait_for, 1)
    assert "ERROR new disk full" in body[0]["message"]
    assert "old" not in body[0]["message"]
    event = await wait_until(lambda: AlertEvent.objects.filter(rule=rule, results__hook="sent")
                             .first())
    assert event.samples == ["ERROR new disk full"] and event.matches == 1
    assert await running.stop() == "revoked"
    assert leases.holder(redis_client, rule.pk) is None  # released


async def test_rotation_and_truncation_fire_for_new_lines_only(setup, webhook, redis_client):
    rule, path, running = await following(setup, redis_client, "start\n")
    os.rename(path, str(path) + ".1")
    path.write_text("ERROR after rotation\n")
    await asyncio.to_thread(webhook.wait_for, 1)
    with path.open("w") as handle:  # truncated in place
        handle.write("ERROR after truncation\n")
    bodies = await asyncio.to_thread(webhook.wait_for, 2)
    await asyncio.sleep(1)  # the scenario: a second in which a line read twice would be sent
    messages = [body["message"] for body in bodies]
    assert len(messages) == 2
    assert "after rotation" in messages[0] and "after truncation" in messages[1]
    await running.stop()


async def test_a_missing_file_is_in_the_rules_state(setup, webhook, redis_client):
    rule, path = await sync_to_async(setup)("absent.log")
    running = Running(rule, redis_client)
    state = await wait_until(lambda: "does not exist" in state_of(rule) and state_of(rule))
    assert "absent.log" in state
    path.write_text("ERROR it appeared\n")
    body = await asyncio.to_thread(webhook.wait_for, 1)
    assert "it appeared" in body[0]["message"]
    await running.stop()


async def test_a_task_without_the_lease_does_not_start(setup, redis_client):
    rule, path = await sync_to_async(setup)()
    leases.claim(redis_client, rule.pk, "someone-else")
    running = Running(rule, redis_client, task_id="late", claim=False)
    assert (await asyncio.wait_for(running.task, 5)).startswith("not started")


async def test_a_task_that_lost_its_lease_never_fires(setup, webhook, redis_client):
    rule, path, running = await following(setup, redis_client)
    redis_client.set(leases.key(rule.pk), "another-task")  # another worker took the rule
    with path.open("a") as handle:
        handle.write("ERROR seen by the wrong task\n")
    reason = await asyncio.wait_for(running.task, 10)
    assert "lease" in reason
    await asyncio.sleep(0.5)  # the scenario: half a second in which a late delivery would go
    assert webhook.attempts == 0
    assert not await sync_to_async(AlertEvent.objects.filter(rule=rule).exists)()


async def test_a_threshold_rule_sends_its_resolved_message(setup, webhook, redis_client,
                                                          monkeypatch):
    rule, path, running = await following(setup, redis_client, threshold=2, window=1,
                                          cooldown=0, resolved_message="disk errors stopped")
    with path.open("a") as handle:
        handle.write("ERROR a\nERROR b\n")
    bodies = await asyncio.to_thread(webhook.wait_for, 2, 20)
    assert bodies[0]["title"].startswith("[Tailboard] alert")
    assert bodies[1]["title"].startswith("[Tailboard] resolved")
    assert "disk errors stopped" in bodies[1]["message"]
    await running.stop()


async def outage_rule(settings, feed_server, webhook):
    """A rule on a local feed whose one entry is an old outage."""
    from feeds.models import FeedSource

    settings.FEED_INTERNAL_ALLOW = ["127.0.0.1"]
    settings.ALERT_LEASE_SECONDS = 3
    feed_server.items = [("old", "Outage last week")]

    def make():
        source = FeedSource.objects.create(name="status", url=feed_server.url, interval=5)
        return rule_on("feed", source, "outages", "(?i)outage", webhook)

    return await sync_to_async(make)()


async def test_a_rule_on_a_feed_fires_on_new_matching_entries_only(settings, redis_client,
                                                                   webhook, feed_server):
    rule = await outage_rule(settings, feed_server, webhook)
    running = Running(rule, redis_client)
    await wait_until(lambda: "watching" in state_of(rule))
    feed_server.items.insert(0, ("new", "Outage: database down"))
    feed_server.items.insert(0, ("calm", "Maintenance finished"))
    body = (await asyncio.to_thread(webhook.wait_for, 1, 20))[0]
    assert "Outage: database down" in body["message"]
    assert "last week" not in body["message"] and "Maintenance" not in body["message"]
    await running.stop()


@pytest.mark.skipif(not __import__("tests.journalfiles").journalfiles.available(),
                    reason="systemd-journal-remote is missing")
async def test_a_rule_on_a_journal_fires_on_new_entries_only(tmp_path, settings, redis_client,
                                                             webhook):
    from journal.models import JournalSource
    from tests import journalfiles as jf

    settings.LOG_ROOTS = [str(tmp_path)]
    settings.ALERT_LEASE_SECONDS = 3
    base = 1765033445_000000
    jf.write(str(tmp_path / "x.journal"),
             [jf.entry("segfault before the rule", usec=base)])

    def make():
        source = JournalSource.objects.create(name="journal", directory=str(tmp_path))
        return rule_on("journal", source, "segfaults", "segfault", webhook)

    rule = await sync_to_async(make)()
    running = Running(rule, redis_client)
    await wait_until(lambda: AlertRule.objects.get(pk=rule.pk).state.startswith("following"))
    writer = jf.Writer(str(tmp_path / "x.journal"))
    try:
        writer.write([jf.entry("all fine", usec=base + 10**6),
                      jf.entry("app[100]: segfault at 0", usec=base + 2 * 10**6)])
        body = (await asyncio.to_thread(webhook.wait_for, 1, 20))[0]
    finally:
        writer.close()
    assert "segfault at 0" in body["message"] and "before the rule" not in body["message"]
    await running.stop()


async def test_a_rule_whose_source_is_disabled_stops_and_says_so(setup, redis_client):
    rule, path, running = await following(setup, redis_client)
    await sync_to_async(LogSource.objects.filter(pk=rule.source_id).update)(enabled=False)
    reason = await asyncio.wait_for(running.task, 10)
    assert "disabled" in reason
    leases.claim(redis_client, rule.pk, "task-2")
    again = Running(rule, redis_client, task_id="task-2", claim=False)
    assert (await asyncio.wait_for(again.task, 5)).startswith("not started")
    assert "is disabled" in await sync_to_async(state_of)(rule)


async def test_a_rule_on_a_container_fires_on_new_records_with_parts_joined(tmp_path, settings,
                                                                           redis_client,
                                                                           webhook):
    from containers.models import ContainerSource

    settings.LOG_ROOTS = [str(tmp_path)]
    settings.ALERT_LEASE_SECONDS = 3
    log = tmp_path / "pods" / "shop_web-1_u1" / "app" / "0.log"
    log.parent.mkdir(parents=True)
    stamp = "2026-12-06T15:12:34.917598233+00:00"
    log.write_text(f"{stamp} stderr F panic before the rule\n")

    def make():
        source = ContainerSource.objects.create(name="shop", pods_dir=str(tmp_path / "pods"),
                                                namespace="shop", pod="web-*")
        return rule_on("container", source, "panics", "panic: .* lost", webhook)

    rule = await sync_to_async(make)()
    running = Running(rule, redis_client)
    await wait_until(lambda: AlertRule.objects.get(pk=rule.pk).state.startswith("following"))
    with log.open("a") as handle:  # one line in two parts (the runtime split it), on stderr
        handle.write(f"{stamp} stdout F all fine\n{stamp} stderr P panic: connection \n"
                     f"{stamp} stderr F lost\n")
    body = (await asyncio.to_thread(webhook.wait_for, 1, 20))[0]
    assert "panic: connection lost" in body["message"]
    assert "before the rule" not in body["message"]
    await running.stop()


def saved_offset(redis_client, rule, path):
    """The offset the rule's saved position holds for `path` (None while there is none)."""
    import json

    from alerts import positions

    raw = redis_client.get(positions.key(rule.pk))
    place = json.loads(raw)["position"].get(str(path)) if raw else None
    return place[2] if place else None


async def test_a_rule_started_again_alerts_on_what_was_written_while_no_task_ran(
        setup, webhook, redis_client, monkeypatch):
    from alerts import positions

    rule, path, running = await following(setup, redis_client, "ERROR before the rule\n")
    with path.open("a") as handle:
        handle.write("ERROR first\n")
    assert "ERROR first" in (await asyncio.to_thread(webhook.wait_for, 1))[0]["message"]
    size = path.stat().st_size
    await wait_until(lambda: saved_offset(redis_client, rule, path) == size)  # once it was sent
    real_save = positions.save

    async def not_saved(*args):  # the worker dies: nothing after this is saved
        return False

    monkeypatch.setattr(positions, "save", not_saved)
    await running.stop()
    with path.open("a") as handle:
        handle.write("fine\nERROR while no task ran\n")
    monkeypatch.setattr(positions, "save", real_save)
    again = Running(rule, redis_client, task_id="task-2")
    bodies = await asyncio.to_thread(webhook.wait_for, 2, 20)
    assert "ERROR while no task ran" in bodies[1]["message"]
    assert "first" not in bodies[1]["message"] and "before the rule" not in bodies[1]["message"]
    await again.stop()
    assert saved_offset(redis_client, rule, path) == path.stat().st_size


async def test_a_rule_whose_file_was_replaced_while_no_task_ran_reads_the_new_one_whole(
        setup, webhook, redis_client):
    rule, path, running = await following(setup, redis_client, "start\n")
    await running.stop()  # an orderly stop saves where the reading got to
    assert saved_offset(redis_client, rule, path) == len("start\n")
    os.rename(path, str(path) + ".1")  # rotated while no task ran
    path.write_text("ERROR in the new file\n")
    again = Running(rule, redis_client, task_id="task-2")
    body = (await asyncio.to_thread(webhook.wait_for, 1, 20))[0]
    assert "ERROR in the new file" in body["message"]
    await again.stop()


@pytest.mark.skipif(not __import__("tests.journalfiles").journalfiles.available(),
                    reason="systemd-journal-remote is missing")
async def test_a_journal_rule_started_again_goes_on_after_its_last_cursor(
        tmp_path, settings, redis_client, webhook, monkeypatch):
    import json

    from alerts import positions
    from journal.models import JournalSource
    from tests import journalfiles as jf

    settings.LOG_ROOTS = [str(tmp_path)]
    settings.ALERT_LEASE_SECONDS = 3
    monkeypatch.setattr(runner, "RESTART_PAUSE", 0.2)
    base = 1765033445_000000
    journal = str(tmp_path / "x.journal")
    jf.write(journal, [jf.entry("segfault before the rule", usec=base)])

    def make():
        source = JournalSource.objects.create(name="journal", directory=str(tmp_path))
        return rule_on("journal", source, "segfaults", "segfault", webhook)

    rule = await sync_to_async(make)()
    # A position the journal does not take (from another journal): the reading fails once,
    # then starts at the end instead of failing for ever.
    redis_client.set(positions.key(rule.pk), json.dumps(
        {"kind": "journal", "source": rule.source_id, "position": {"cursor": "not a cursor"}}))
    running = Running(rule, redis_client)
    await wait_until(lambda: AlertRule.objects.get(pk=rule.pk).state.startswith("following"),
                     timeout=20)
    jf.write(journal, [jf.entry("app[1]: segfault one", usec=base + 10**6)])
    assert "segfault one" in (await asyncio.to_thread(webhook.wait_for, 1, 20))[0]["message"]
    await running.stop()
    saved = json.loads(redis_client.get(positions.key(rule.pk)))["position"]["cursor"]
    jf.write(journal, [jf.entry("app[1]: segfault while no task ran", usec=base + 2 * 10**6)])
    again = Running(rule, redis_client, task_id="task-2")
    bodies = await asyncio.to_thread(webhook.wait_for, 2, 20)
    assert "segfault while no task ran" in bodies[1]["message"]
    assert "segfault one" not in bodies[1]["message"]
    await again.stop()
    assert json.loads(redis_client.get(positions.key(rule.pk)))["position"]["cursor"] != saved


async def test_a_feed_rule_started_again_alerts_on_entries_published_while_no_task_ran(
        settings, redis_client, webhook, feed_server):
    from alerts import positions

    rule = await outage_rule(settings, feed_server, webhook)
    running = Running(rule, redis_client)
    await wait_until(lambda: "watching" in state_of(rule))
    await wait_until(lambda: redis_client.exists(positions.key(rule.pk)))  # entries seen saved
    await running.stop()
    feed_server.items.insert(0, ("gap", "Outage: published while no task ran"))
    for key in redis_client.scan_iter("tailboard:feed:*"):  # the gap outlasted the cached copy
        redis_client.delete(key)
    again = Running(rule, redis_client, task_id="task-2")
    body = (await asyncio.to_thread(webhook.wait_for, 1, 20))[0]
    assert "published while no task ran" in body["message"]
    assert "last week" not in body["message"]
    await again.stop()


async def test_a_file_missing_for_a_while_keeps_the_saved_position(setup, webhook,
                                                                   redis_client, settings):
    settings.TAILF_ROTATE_WAIT = 0
    rule, path, running = await following(setup, redis_client, "start\n")
    with path.open("a") as handle:
        handle.write("ERROR one\n")
    await asyncio.to_thread(webhook.wait_for, 1)
    size = path.stat().st_size
    await wait_until(lambda: saved_offset(redis_client, rule, path) == size)
    path.unlink()  # gone for now (a rotation that has not made the new file yet)
    await wait_until(lambda: "does not exist" in state_of(rule))
    await asyncio.sleep(1.5)  # a save or two pass
    assert saved_offset(redis_client, rule, path) == size
    await running.stop()
