"""`manage.py sources`: adding, listing and removing sources from the command line."""

import json
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command

from feeds.models import FeedSource
from tailf.models import LogSource

pytestmark = pytest.mark.django_db


def sources(*args):
    """Run `sources ARGS`; return (stdout, stderr)."""
    out, err = StringIO(), StringIO()
    call_command("sources", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def new_id(stdout):
    """Return the id printed alone on the last line."""
    last = stdout.rstrip("\n").splitlines()[-1]
    assert last.isdigit(), f"last line is not an id: {last!r}"
    return int(last)


def test_add_log_prints_new_id_alone_on_last_line():
    out, _ = sources("add-log", "syslog", "/var/log/syslog")
    source = LogSource.objects.get(pk=new_id(out))
    assert (source.name, source.path, source.queue) == ("syslog", "/var/log/syslog", "tailf")


def test_add_feed_prints_new_id_alone_on_last_line():
    out, _ = sources("add-feed", "news", "https://example.com/feed.xml")
    source = FeedSource.objects.get(pk=new_id(out))
    assert source.url == "https://example.com/feed.xml"
    assert (source.interval, source.queue) == (60, "feeds")


def test_add_options_set_interval_and_queue():
    out, _ = sources("add-feed", "news", "http://example.com/rss", "--interval", "5",
                     "--queue", "feeds-eu")
    source = FeedSource.objects.get(pk=new_id(out))
    assert (source.interval, source.queue) == (5, "feeds-eu")
    out, _ = sources("add-log", "app", "/var/log/app.log", "--queue", "host-a",
                     "--rotate-wait", "12")
    source = LogSource.objects.get(pk=new_id(out))
    assert (source.queue, source.rotate_wait) == ("host-a", 12)


@pytest.mark.parametrize("path", ["/etc/shadow", "/srv/app.log", "/var/logs/x.log",
                                  "/proc/self/environ"])
def test_add_log_refuses_paths_outside_the_log_roots_naming_them(path, settings):
    settings.LOG_ROOTS = ["/var/log"]
    with pytest.raises(CommandError, match="LOG_ROOTS"):
        sources("add-log", "bad", path)
    assert not LogSource.objects.exists()


def test_add_log_refuses_a_link_in_a_root_that_resolves_outside(tmp_path, settings):
    root = tmp_path / "logs"
    root.mkdir()
    (root / "app.log").symlink_to("/etc/passwd")
    settings.LOG_ROOTS = [str(root)]
    with pytest.raises(CommandError, match="LOG_ROOTS"):
        sources("add-log", "bad", str(root / "app.log"))
    assert not LogSource.objects.exists()


def test_add_log_accepts_a_glob_under_a_root_and_refuses_one_in_a_folder(settings):
    settings.LOG_ROOTS = ["/var/log"]
    out, _ = sources("add-log", "nginx", "/var/log/nginx/*.log")
    assert LogSource.objects.get(pk=new_id(out)).path == "/var/log/nginx/*.log"
    with pytest.raises(CommandError, match="last component"):
        sources("add-log", "bad", "/var/log/*/access.log")


def test_add_feed_rejects_interval_below_5():
    with pytest.raises(CommandError, match="interval"):
        sources("add-feed", "news", "https://example.com/feed.xml", "--interval", "4")
    assert not FeedSource.objects.exists()


@pytest.mark.parametrize("url", ["ftp://example.com/feed.xml", "file:///etc/passwd", "not a url"])
def test_add_feed_rejects_non_http_url(url):
    with pytest.raises(CommandError, match="url"):
        sources("add-feed", "news", url)
    assert not FeedSource.objects.exists()


@pytest.mark.parametrize("path", ["var/log/syslog", "/var/log/../etc/passwd", "/var/log/"])
def test_add_log_rejects_relative_path(path):
    with pytest.raises(CommandError, match="path"):
        sources("add-log", "syslog", path)
    assert not LogSource.objects.exists()


def test_add_rejects_bad_queue_name():
    with pytest.raises(CommandError, match="queue"):
        sources("add-log", "syslog", "/var/log/syslog", "--queue", "a b")


def test_add_rejects_duplicate_name():
    sources("add-log", "syslog", "/var/log/syslog")
    with pytest.raises(CommandError, match="name"):
        sources("add-log", "syslog", "/var/log/messages")
    assert LogSource.objects.count() == 1


def test_group_option_creates_missing_group_and_says_so():
    Group.objects.create(name="ops")
    out, err = sources("add-log", "syslog", "/var/log/syslog", "--group", "ops", "--group", "dev")
    source = LogSource.objects.get(pk=new_id(out))
    assert sorted(g.name for g in source.groups.all()) == ["dev", "ops"]
    assert "dev" in err and "ops" not in err


def test_group_option_grants_access():
    member = User.objects.create_user("alice")
    member.groups.add(Group.objects.create(name="ops"))
    outsider = User.objects.create_user("bob")
    out, _ = sources("add-feed", "news", "https://example.com/feed.xml", "--group", "ops")
    source = FeedSource.objects.get(pk=new_id(out))
    assert source.allows(member)
    assert not source.allows(outsider)
    assert list(FeedSource.objects.visible_to(member)) == [source]


def test_list_json_lists_both_kinds():
    log_id = new_id(sources("add-log", "syslog", "/var/log/syslog", "--group", "ops")[0])
    feed_id = new_id(sources("add-feed", "news", "https://example.com/feed.xml",
                             "--interval", "30")[0])
    out, _ = sources("list", "--json")
    assert json.loads(out) == [
        {"kind": "log", "id": log_id, "name": "syslog", "path": "/var/log/syslog",
         "queue": "tailf", "enabled": True, "groups": ["ops"]},
        {"kind": "feed", "id": feed_id, "name": "news", "url": "https://example.com/feed.xml",
         "interval": 30, "queue": "feeds", "enabled": True, "groups": []},
    ]


def test_list_table_shows_every_source():
    sources("add-log", "syslog", "/var/log/syslog")
    sources("add-feed", "news", "https://example.com/feed.xml")
    out, _ = sources("list")
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["KIND", "ID", "NAME"]
    assert [row.split()[0] for row in rows] == ["log", "feed"]
    assert "/var/log/syslog" in out and "https://example.com/feed.xml" in out


def test_remove_deletes_only_that_kind():
    log_id = new_id(sources("add-log", "syslog", "/var/log/syslog")[0])
    feed_id = new_id(sources("add-feed", "news", "https://example.com/feed.xml")[0])
    sources("remove", "log", str(log_id))
    assert not LogSource.objects.exists()
    assert FeedSource.objects.filter(pk=feed_id).exists()
    sources("remove", "feed", str(feed_id))
    assert not FeedSource.objects.exists()


def test_remove_unknown_id_is_an_error():
    with pytest.raises(CommandError, match="No log source with id 999"):
        sources("remove", "log", "999")
    with pytest.raises(CommandError, match="No feed source with id 999"):
        sources("remove", "feed", "999")


def test_remove_unknown_kind_is_an_error():
    with pytest.raises(CommandError):
        sources("remove", "stream", "1")


def test_log_and_feed_ids_are_separate_sequences():
    log_id = new_id(sources("add-log", "syslog", "/var/log/syslog")[0])
    FeedSource.objects.create(pk=log_id, name="news", url="https://example.com/feed.xml")
    listed = {(s["kind"], s["id"]) for s in json.loads(sources("list", "--json")[0])}
    assert listed == {("log", log_id), ("feed", log_id)}
    sources("remove", "feed", str(log_id))
    assert LogSource.objects.filter(pk=log_id).exists()
    with pytest.raises(CommandError, match="No feed source"):
        sources("remove", "feed", str(log_id))
    sources("remove", "log", str(log_id))
    assert not LogSource.objects.exists()


@pytest.mark.parametrize("encoding, says", [("utf-16", "lines cannot be split"),
                                            ("utf-32-le", "lines cannot be split"),
                                            ("no-such-codec", "Unknown encoding")])
def test_log_source_encodings_whose_lines_cannot_be_split_are_refused(db, encoding, says):
    from django.core.exceptions import ValidationError

    source = LogSource(name="wide", path="/var/log/wide.log", encoding=encoding)
    with pytest.raises(ValidationError) as refused:
        source.full_clean()
    assert says in str(refused.value)


def test_single_byte_newline_encodings_are_accepted(db):
    for encoding in ("utf-8", "latin-1", "cp1252", "shift_jis", "gb18030"):
        LogSource(name=f"enc-{encoding}", path="/var/log/x.log", encoding=encoding).full_clean()
