"""Ops control without services: stopping streams (live consumer or gone), pruning lost
records, the admin's open list, stop action and history, and the global stream cap."""

import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import User

from tests.unit.test_stream_consumer import connect, refused_with
from webapp.models import Ending, Stream
from webapp.streams import control, leases, protocol, records

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ops(fakes, monkeypatch):
    """Record Celery revokes for control (leases in the real Redis); returns revoked task ids."""
    revoked = []
    monkeypatch.setattr(control, "revoke_task", revoked.append)
    return revoked


def open_record(user, source, task_id="t-1", channel="specific.gone!1"):
    """A stream record as a consumer would create it (no consumer behind it)."""
    return records.create(user, "log", source, {"lines": 0}, task_id, channel)


def test_stop_without_a_live_consumer_closes_the_record_at_once(ops, viewer, log_source):
    stream = open_record(viewer, log_source)
    result = control.stop_stream(stream.pk, wait=30)
    assert result.ended_by == "control" and not result.had_lease
    assert ops == [stream.task_id]
    stream.refresh_from_db()
    assert stream.ended is not None and stream.ending == "admin_stop"


def test_stop_tells_the_consumer_through_its_channel(ops, viewer, log_source):
    channel = async_to_sync(get_channel_layer().new_channel)()
    stream = open_record(viewer, log_source, "t-2", channel)
    leases.sync_client().set(leases.lease_key("t-2"), channel)
    result = control.stop_stream(stream.pk, wait=0.2)
    event = async_to_sync(get_channel_layer().receive)(channel)
    assert event == protocol.stop_event(control.ADMIN_MESSAGE, "admin_stop")
    assert event["message_code"] == "stopped_by_admin"
    assert result.viewer_told and result.had_lease
    assert not leases.sync_client().exists(leases.lease_key("t-2"))
    assert ops == ["t-2"]
    stream.refresh_from_db()
    assert stream.ending == "admin_stop"


def test_stopping_a_stream_that_is_not_open_raises(ops, viewer, log_source):
    stream = open_record(viewer, log_source)
    records.end(stream.pk, "viewer_stop")
    with pytest.raises(control.NotOpen):
        control.stop_stream(stream.pk)
    with pytest.raises(control.NotOpen):
        control.stop_stream(424242)
    assert ops == []


async def test_live_consumer_tells_its_viewer_and_closes(ops, viewer, log_source):
    communicator, queued = await connect(viewer, f"/ws/tailf/{log_source.pk}/")
    result = await sync_to_async(control.stop_stream, thread_sensitive=False)(queued["stream"])
    stopped = json.loads(await communicator.receive_from())
    assert stopped == {"type": "status", "state": "stopped",
                       "message": "stopped by an administrator",
                       "message_code": "stopped_by_admin", "message_params": {}}
    assert await communicator.receive_output() == {"type": "websocket.close", "code": 1000}
    assert result.ended_by == "consumer"
    stream = await Stream.objects.aget(pk=queued["stream"])
    assert stream.ending == "admin_stop"


def test_prune_lost_closes_records_whose_lease_lapsed(ops, viewer, log_source):
    live = open_record(viewer, log_source, "t-live")
    lost = open_record(viewer, log_source, "t-lost")
    leases.sync_client().set(leases.lease_key("t-live"), "x")
    assert control.prune_lost() == 1
    assert [s.pk for s in control.open_streams()] == [live.pk]
    lost.refresh_from_db()
    assert lost.ending == "lease_lapsed"


def test_prune_lost_keeps_the_last_published_line_count(ops, viewer, log_source):
    lost = open_record(viewer, log_source, "t-lost")
    leases.sync_client().set(leases.sent_key("t-lost"), b"1234")
    assert control.prune_lost() == 1
    lost.refresh_from_db()
    assert lost.lines_sent == 1234


async def test_global_cap_refuses_with_4429_and_names_the_limit(fakes, viewer, log_source,
                                                                settings):
    settings.STREAM_MAX_PER_USER = 5
    settings.STREAM_MAX_TOTAL = 2
    other = await User.objects.acreate(username="other", is_superuser=True)
    first, _ = await connect(viewer, f"/ws/tailf/{log_source.pk}/")
    second, _ = await connect(other, f"/ws/tailf/{log_source.pk}/")
    message = await refused_with(other, f"/ws/tailf/{log_source.pk}/", 4429)
    assert message["message"] == ("too many streams: the server has 2 open, the limit is 2")
    message = await refused_with(viewer, f"/ws/tailf/{log_source.pk}/", 4429)
    assert "the limit is 2" in message["message"]
    assert len(fakes.started) == 2
    await first.disconnect()
    third, queued = await connect(viewer, f"/ws/tailf/{log_source.pk}/")
    assert queued["state"] == "queued"
    await second.disconnect()
    await third.disconnect()


async def test_per_user_cap_names_the_per_user_limit(fakes, viewer, log_source, settings):
    settings.STREAM_MAX_PER_USER = 1
    first, _ = await connect(viewer, f"/ws/tailf/{log_source.pk}/")
    message = await refused_with(viewer, f"/ws/tailf/{log_source.pk}/", 4429)
    assert message["message"] == "too many streams: you have 1 open, the limit is 1 per user"
    await first.disconnect()


@pytest.fixture
def admin_client(client, db):
    admin = User.objects.create_superuser("boss", password="pw-boss-123456")
    client.force_login(admin)
    return client


def test_admin_lists_open_streams_with_user_source_and_worker(admin_client, viewer,
                                                              log_source):
    stream = open_record(viewer, log_source)
    records.set_worker(stream.pk, "w9@host")
    html = admin_client.get("/admin/webapp/stream/?state=open").content.decode()
    assert "viewer" in html and f"log:{log_source.pk} app" in html and "w9@host" in html
    assert "Stop selected streams" in html


def test_admin_shows_lines_sent_live_for_open_streams_and_recorded_for_ended_ones(
        admin_client, viewer, log_source, ops):
    open_record(viewer, log_source, "t-live")
    leases.sync_client().set(leases.sent_key("t-live"), b"4242")
    done = open_record(viewer, log_source, "t-done")
    records.end(done.pk, Ending.VIEWER_STOP, "", 977)
    html = admin_client.get("/admin/webapp/stream/").content.decode()
    assert "lines sent" in html.lower()
    assert '<td class="field-sent">4242</td>' in html
    assert '<td class="field-sent">977</td>' in html


def test_admin_history_says_how_each_stream_ended(admin_client, viewer, log_source):
    endings = {Ending.VIEWER_STOP: "", Ending.DISCONNECT: "close code 1001",
               Ending.ADMIN_STOP: "", Ending.MAX_DURATION: "12 h",
               Ending.WORKER_LOST: "worker w1 silent 8 s", Ending.LEASE_LAPSED: ""}
    for n, (ending, detail) in enumerate(endings.items()):
        records.end(open_record(viewer, log_source, f"t-{n}").pk, ending, detail)
    html = admin_client.get("/admin/webapp/stream/?state=ended").content.decode()
    for ending, detail in endings.items():
        assert ending.label in html and detail in html
    only_admin = admin_client.get("/admin/webapp/stream/?ending=admin_stop").content.decode()
    assert only_admin.count('class="action-select"') == 1


def test_admin_stop_action_goes_through_control(admin_client, viewer, log_source, monkeypatch):
    stopped = []

    def fake_stop(ids):
        stopped.extend(ids)
        return {pk: control.StopResult(pk, "t", True, True, "consumer") for pk in ids}

    monkeypatch.setattr(control, "stop_streams", fake_stop)
    open_one = open_record(viewer, log_source, "t-open")
    ended = open_record(viewer, log_source, "t-ended")
    records.end(ended.pk, Ending.VIEWER_STOP)
    response = admin_client.post("/admin/webapp/stream/", {
        "action": "stop_selected", "_selected_action": [open_one.pk, ended.pk]}, follow=True)
    assert stopped == [open_one.pk]
    text = response.content.decode()
    assert "Stopped 1 stream: 1 viewer told" in text and "1 already ended" in text


def test_staff_without_the_change_permission_cannot_stop(client, viewer, log_source):
    from django.contrib.auth.models import Permission

    staff = User.objects.create_user("watcher", password="x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_stream"))
    client.force_login(staff)
    open_record(viewer, log_source)
    html = client.get("/admin/webapp/stream/").content.decode()
    assert "viewer" in html and "stop_selected" not in html


def test_admin_never_adds_edits_or_deletes_streams(admin_client, viewer, log_source):
    stream = open_record(viewer, log_source)
    assert admin_client.get("/admin/webapp/stream/add/").status_code == 403
    assert admin_client.get(f"/admin/webapp/stream/{stream.pk}/delete/").status_code == 403
    page = admin_client.post(f"/admin/webapp/stream/{stream.pk}/change/", {"worker": "evil"})
    assert page.status_code == 403
    stream.refresh_from_db()
    assert stream.worker == ""


def test_staff_see_in_the_admin_only_the_sources_they_may_view(client, viewer, log_source):
    from django.contrib.auth.models import Group, Permission

    from tailf.models import LogSource

    hidden = LogSource.objects.create(name="payroll", path="/var/log/payroll/secret.log")
    hidden.groups.add(Group.objects.create(name="finance"))
    staff = User.objects.create_user("auditor", password="x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_logsource"))
    staff.groups.add(Group.objects.get(name="ops"))
    client.force_login(staff)
    listing = client.get("/admin/tailf/logsource/").content.decode()
    assert "app" in listing and "/var/log/app.log" in listing
    assert "payroll" not in listing and "secret.log" not in listing
    assert client.get(f"/admin/tailf/logsource/{hidden.pk}/change/").status_code in (302, 404)


def test_the_admin_refuses_a_log_path_outside_the_log_roots(admin_client, settings):
    settings.LOG_ROOTS = ["/var/log"]
    page = admin_client.post("/admin/tailf/logsource/add/", {
        "name": "shadow", "path": "/etc/shadow", "queue": "tailf", "encoding": "utf-8",
        "enabled": "on"})
    assert page.status_code == 200 and "LOG_ROOTS" in page.content.decode()
    from tailf.models import LogSource

    assert not LogSource.objects.filter(name="shadow").exists()
