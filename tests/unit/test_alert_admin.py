"""Alert admin and `manage.py alerts`: destinations for superusers only with their secrets never
shown back, rules on any registered kind, the list and test commands."""

import json

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from alerts.models import AlertDestination, AlertEvent, AlertRule
from feeds.models import FeedSource
from tailf.models import LogSource
from tests.alertreceivers import WebhookServer

SECRET = "hunter2secretpw"


@pytest.fixture(autouse=True)
def task_control(monkeypatch):
    """Saving a rule restarts its task: recorded instead of reaching Celery."""
    from alerts import control

    calls = []
    monkeypatch.setattr(control, "restart", lambda rule: calls.append(("restart", rule.pk,
                                                                         rule.enabled)))
    monkeypatch.setattr(control, "stop", lambda pk, client=None: calls.append(("stop", pk)))
    return calls


@pytest.fixture
def admin_client(client, db):
    user = User.objects.create_superuser("root", password="x")
    client.force_login(user)
    return client


@pytest.fixture
def destination(db):
    return AlertDestination.objects.create(
        name="ops hook", url=f"json://alert:{SECRET}@hooks.example.com/hook")


def test_destination_pages_never_show_the_url_secret(admin_client, destination):
    listing = admin_client.get("/admin/alerts/alertdestination/")
    change = admin_client.get(f"/admin/alerts/alertdestination/{destination.pk}/change/")
    for page in (listing, change):
        assert page.status_code == 200
        assert SECRET not in page.content.decode()
        assert "hooks.example.com" in page.content.decode()


def test_saving_a_destination_with_an_empty_url_keeps_the_stored_one(admin_client, destination):
    response = admin_client.post(f"/admin/alerts/alertdestination/{destination.pk}/change/",
                                 {"name": "renamed", "url": ""})
    assert response.status_code == 302
    destination.refresh_from_db()
    assert destination.name == "renamed" and SECRET in destination.url


def test_an_unreadable_destination_url_is_refused(admin_client):
    response = admin_client.post("/admin/alerts/alertdestination/add/",
                                 {"name": "bad", "url": "nosuch://x"})
    assert response.status_code == 200
    assert "Apprise cannot read this URL" in response.content.decode()
    assert not AlertDestination.objects.exists()


def test_staff_who_are_not_superusers_cannot_see_destinations(client, destination):
    from django.contrib.auth.models import Permission

    staff = User.objects.create_user("staff", password="x", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="alerts"))
    client.force_login(staff)
    assert client.get("/admin/alerts/alertdestination/").status_code == 403
    assert client.get(f"/admin/alerts/alertdestination/{destination.pk}/change/").status_code \
        in (403, 302)


def test_a_rule_takes_a_source_of_any_kind_and_saving_restarts_it(
        admin_client, destination, task_control, django_capture_on_commit_callbacks):
    feed = FeedSource.objects.create(name="status", url="https://status.example.com/feed")
    page = admin_client.get("/admin/alerts/alertrule/add/").content.decode()
    assert f"feed:{feed.pk}" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/admin/alerts/alertrule/add/", {
            "name": "outage", "source": f"feed:{feed.pk}", "pattern": "(?i)outage",
            "threshold": 1, "window": 60, "cooldown": 300, "destinations": [destination.pk],
            "enabled": "on"})
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = AlertRule.objects.get(name="outage")
    assert (rule.kind, rule.source_id) == ("feed", feed.pk)
    assert rule.queue() == "feeds.alerts"
    assert task_control == [("restart", rule.pk, True)]


def test_a_rule_with_an_invalid_pattern_is_refused(admin_client):
    source = LogSource.objects.create(name="app", path="/var/log/app.log")
    response = admin_client.post("/admin/alerts/alertrule/add/", {
        "name": "bad", "source": f"log:{source.pk}", "pattern": "(unclosed",
        "threshold": 1, "window": 60, "cooldown": 300, "enabled": "on"})
    assert "pattern is not a valid regular expression" in response.content.decode()
    assert not AlertRule.objects.exists()


def test_a_rule_on_an_unknown_kind_or_a_missing_source_does_not_validate(db):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="no source kind"):
        AlertRule(name="x", kind="nosuch", source_id=1, pattern="a").full_clean()
    with pytest.raises(ValidationError, match="no log source with id 999"):
        AlertRule(name="x", kind="log", source_id=999, pattern="a").full_clean()


def test_deleting_a_rule_revokes_its_task(db, task_control, django_capture_on_commit_callbacks):
    source = LogSource.objects.create(name="app", path="/var/log/app.log")
    with django_capture_on_commit_callbacks(execute=True):
        rule = AlertRule.objects.create(name="r", kind="log", source_id=source.pk, pattern="x")
    pk = rule.pk
    with django_capture_on_commit_callbacks(execute=True):
        rule.delete()
    assert task_control == [("restart", pk, True), ("stop", pk)]


def test_alerts_list_json_names_destinations_without_their_urls(db, destination, capsys,
                                                                redis_client):
    source = LogSource.objects.create(name="app", path="/var/log/app.log")
    rule = AlertRule.objects.create(name="errors", kind="log", source_id=source.pk,
                                    pattern="ERROR", threshold=3, window=10)
    rule.destinations.add(destination)
    call_command("alerts", "list", "--json")
    out = capsys.readouterr().out
    listed = json.loads(out)
    assert listed[0]["name"] == "errors" and listed[0]["source"] == "log:app"
    assert listed[0]["destinations"] == ["ops hook"] and listed[0]["task_id"] is None
    assert SECRET not in out
    call_command("alerts", "list")
    assert "3 in 10s" in capsys.readouterr().out


def test_alerts_test_sends_to_each_destination_and_prints_the_result(db, settings, capsys,
                                                                    redis_client):
    settings.ALERT_INTERNAL_ALLOW = ["127.0.0.1"]
    good, bad = WebhookServer(), WebhookServer(status=500)
    settings.ALERT_DELIVERY_ATTEMPTS = 1
    try:
        source = LogSource.objects.create(name="app", path="/var/log/app.log")
        rule = AlertRule.objects.create(name="errors", kind="log", source_id=source.pk,
                                        pattern="ERROR")
        rule.destinations.add(AlertDestination.objects.create(name="good", url=good.url),
                              AlertDestination.objects.create(name="bad", url=bad.url))
        with pytest.raises(CommandError, match="some destinations failed"):
            call_command("alerts", "test", "errors")
        out = capsys.readouterr().out
        assert "good: sent" in out and "bad: failed" in out
        assert "[Tailboard] test: errors" == good.received[0]["title"]
        event = AlertEvent.objects.get(rule=rule)
        assert event.event == "test" and event.results["good"] == "sent"
    finally:
        good.close()
        bad.close()


def test_staff_see_only_rules_and_events_of_their_sources_and_change_none(client, db):
    from django.contrib.auth.models import Group, Permission

    ops = Group.objects.create(name="ops")
    mine = LogSource.objects.create(name="mine", path="/var/log/mine.log")
    mine.groups.add(ops)
    theirs = LogSource.objects.create(name="theirs-secret", path="/var/log/theirs.log")
    visible = AlertRule.objects.create(name="mine errors", kind="log", source_id=mine.pk,
                                       pattern="E")
    hidden = AlertRule.objects.create(name="hidden errors", kind="log", source_id=theirs.pk,
                                      pattern="E")
    AlertEvent.objects.create(rule=visible, samples=["seen line"])
    AlertEvent.objects.create(rule=hidden, samples=["secret line"])
    staff = User.objects.create_user("staff", password="x", is_staff=True)
    staff.groups.add(ops)
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="alerts"))
    client.force_login(staff)
    rules = client.get("/admin/alerts/alertrule/").content.decode()
    assert "mine errors" in rules and "hidden errors" not in rules
    assert client.get(f"/admin/alerts/alertrule/{hidden.pk}/change/").status_code in (302, 404)
    assert client.get("/admin/alerts/alertrule/add/").status_code == 403
    events = client.get("/admin/alerts/alertevent/").content.decode()
    assert "mine errors" in events and "hidden errors" not in events


def test_the_rule_form_lists_only_sources_its_user_may_see(db):
    from django.contrib.auth.models import Group

    from alerts.admin import source_choices

    ops = Group.objects.create(name="ops")
    mine = LogSource.objects.create(name="mine", path="/var/log/mine.log")
    mine.groups.add(ops)
    LogSource.objects.create(name="theirs-secret", path="/var/log/theirs.log")
    user = User.objects.create_user("u", password="x")
    user.groups.add(ops)
    names = [name for _, group in source_choices(user) for _, name in group]
    assert names == ["mine"]
