"""Staff see streams and sources of their own groups only, in the admin and in /healthz
(superusers and the HEALTHZ_TOKEN see all), through Django's test client."""

import pytest
from django.contrib.auth.models import Group, Permission, User

from feeds.models import FeedSource
from tailf.models import LogSource
from webapp.streams import records

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def payroll(log_source):
    """A source of group finance (the viewer's group is ops), with a stream open on it."""
    hidden = LogSource.objects.create(name="payroll", path="/var/log/payroll/secret.log",
                                      queue="payroll-queue")
    hidden.groups.add(Group.objects.create(name="finance"))
    cfo = User.objects.create_user("cfo", password="x")
    records.create(cfo, "log", hidden, {"search": "salary-of-ceo"}, "task-payroll-1",
                   "specific.payroll!chan")
    records.create(cfo, "log", log_source, {"lines": 5}, "task-app-1", "specific.app!chan")
    feed = FeedSource.objects.create(name="board-feed", url="https://example.org/board")
    feed.groups.add(Group.objects.get(name="finance"))
    records.create(cfo, "feed", feed, {}, "task-feed-1", "specific.feed!chan")
    return hidden


def staff_of_ops(*codenames):
    """A staff user in group ops with these permissions."""
    staff = User.objects.create_user("auditor", password="x", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    staff.groups.add(Group.objects.get(name="ops"))
    return staff


def test_staff_with_view_stream_see_only_the_streams_of_sources_they_may_view(client, payroll):
    client.force_login(staff_of_ops("view_stream"))
    listing = client.get("/admin/webapp/stream/").content.decode()
    assert "task-app-1" in listing or "app" in listing
    for secret in ("payroll", "board-feed"):
        assert secret not in listing
    searched = client.get("/admin/webapp/stream/?q=payroll").content.decode()
    assert f"log:{payroll.pk} payroll" not in searched and "0 results" in searched
    hidden = records.open_streams().get(task_id="task-payroll-1")
    page = client.get(f"/admin/webapp/stream/{hidden.pk}/change/")
    assert page.status_code in (302, 404)
    assert b"salary-of-ceo" not in page.content and b"payroll!chan" not in page.content
    mine = records.open_streams().get(task_id="task-app-1")
    assert client.get(f"/admin/webapp/stream/{mine.pk}/change/").status_code == 200


def test_superusers_see_every_stream(admin_client, payroll):
    listing = admin_client.get("/admin/webapp/stream/").content.decode()
    assert "payroll" in listing and "board-feed" in listing


def test_staff_healthz_lists_only_the_sources_they_may_view(client, payroll, redis_client):
    client.force_login(staff_of_ops())
    body = client.get("/healthz").json()
    names = {source["name"] for source in body["sources_without_worker"]}
    assert "app" in names
    assert "payroll" not in names and "board-feed" not in names
    assert "payroll-queue" not in str(body["sources_without_worker"])


def test_superusers_and_the_token_see_every_source_in_healthz(admin_client, client, payroll,
                                                              redis_client, settings):
    names = {s["name"] for s in admin_client.get("/healthz").json()["sources_without_worker"]}
    assert {"app", "payroll", "board-feed"} <= names
    settings.HEALTHZ_TOKEN = "t" * 32
    body = client.get("/healthz", HTTP_AUTHORIZATION="Bearer " + "t" * 32).json()
    assert {"app", "payroll", "board-feed"} <= {s["name"] for s in body["sources_without_worker"]}
