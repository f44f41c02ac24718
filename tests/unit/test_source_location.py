"""What a source reads (a log's path, a feed's URL, its queue) is changed only by superusers
and holders of webapp.change_source_location, in the admin, through Django's test client."""

import pytest
from django.contrib.auth.models import Group, Permission, User

from feeds.models import FeedSource
from tailf.models import LogSource
from webapp.streams.kinds import Kind, get

pytestmark = pytest.mark.django_db(transaction=True)


def staff(*codenames):
    """A staff user in group ops with these permissions."""
    user = User.objects.create_user("editor", password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    user.groups.add(Group.objects.get(name="ops"))
    return user


def log_form(source, **changes):
    """The admin change form of a log source, as posted, with these changes."""
    form = {"name": source.name, "path": source.path, "queue": source.queue,
            "encoding": source.encoding, "rotate_wait": "", "enabled": "on",
            "groups": [str(g.pk) for g in source.groups.all()]}
    form.update(changes)
    return form


@pytest.fixture
def roots(settings, tmp_path):
    """LOG_ROOTS is a temporary folder with the source's log and a secret under it."""
    settings.LOG_ROOTS = [str(tmp_path)]
    (tmp_path / "app.log").write_text("a\n")
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "payroll.log").write_text("salaries\n")
    return tmp_path


def test_staff_with_change_logsource_cannot_point_a_source_at_another_file(client, log_source,
                                                                           roots):
    log_source.path = str(roots / "app.log")
    log_source.save()
    client.force_login(staff("view_logsource", "change_logsource"))
    url = f"/admin/tailf/logsource/{log_source.pk}/change/"
    page = client.get(url).content.decode()
    assert 'name="path"' not in page and 'name="queue"' not in page
    assert str(roots / "app.log") in page  # shown, read-only
    client.post(url, log_form(log_source, name="renamed", path=str(roots / "secret/payroll.log"),
                              queue="elsewhere"))
    log_source.refresh_from_db()
    assert log_source.name == "renamed"  # other fields stay editable
    assert log_source.path == str(roots / "app.log") and log_source.queue == "tailf"


def test_the_location_permission_lets_staff_change_the_path(client, log_source, roots):
    client.force_login(staff("view_logsource", "change_logsource", "change_source_location"))
    url = f"/admin/tailf/logsource/{log_source.pk}/change/"
    assert 'name="path"' in client.get(url).content.decode()
    client.post(url, log_form(log_source, path=str(roots / "secret/payroll.log")))
    log_source.refresh_from_db()
    assert log_source.path == str(roots / "secret/payroll.log")


def test_superusers_change_the_path(admin_client, log_source, roots):
    url = f"/admin/tailf/logsource/{log_source.pk}/change/"
    admin_client.post(url, log_form(log_source, path=str(roots / "app.log")))
    log_source.refresh_from_db()
    assert log_source.path == str(roots / "app.log")


def test_adding_a_source_needs_the_location_permission(client, viewer, roots):
    form = {"name": "new", "path": str(roots / "secret/payroll.log"), "queue": "tailf",
            "encoding": "utf-8", "rotate_wait": "", "enabled": "on",
            "groups": [str(Group.objects.get(name="ops").pk)]}
    client.force_login(staff("view_logsource", "add_logsource", "change_logsource"))
    assert client.get("/admin/tailf/logsource/add/").status_code == 403
    assert client.post("/admin/tailf/logsource/add/", form).status_code == 403
    assert not LogSource.objects.filter(name="new").exists()
    User.objects.get(username="editor").user_permissions.add(
        Permission.objects.get(codename="change_source_location"))
    client.force_login(User.objects.get(username="editor"))
    assert client.post("/admin/tailf/logsource/add/", form).status_code == 302
    assert LogSource.objects.get(name="new").path == form["path"]


def test_staff_cannot_change_a_feed_url(client, viewer):
    feed = FeedSource.objects.create(name="news", url="https://example.org/feed")
    feed.groups.add(Group.objects.get(name="ops"))
    client.force_login(staff("view_feedsource", "change_feedsource"))
    url = f"/admin/feeds/feedsource/{feed.pk}/change/"
    assert 'name="url"' not in client.get(url).content.decode()
    client.post(url, {"name": "news", "url": "http://127.0.0.1:9/internal", "interval": "60",
                      "queue": "feeds", "enabled": "on",
                      "groups": [str(Group.objects.get(name="ops").pk)]})
    feed.refresh_from_db()
    assert feed.url == "https://example.org/feed"


def test_a_kind_that_declares_no_location_fields_locks_all_its_own_fields():
    log = get("log")
    assert log.location == ("path", "queue")
    undeclared = Kind(slug="x", label="X", url="x", model="tailf.LogSource", run=None,
                      parse_options=None, describe=None)
    assert set(undeclared.location) == {"path", "queue", "encoding", "rotate_wait"}
