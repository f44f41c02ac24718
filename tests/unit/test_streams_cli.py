"""`manage.py streams` and `streams stop ID` (docs/reliability.md), without services."""

import json
import re
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from tailf.models import LogSource
from webapp.models import Ending
from webapp.streams import control, leases, records

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis(monkeypatch, redis_client):
    """The real Redis (flushed per test) with Celery revokes and consumer stops recorded."""
    monkeypatch.setattr(control, "revoke_task", lambda task_id: None)
    monkeypatch.setattr(control, "tell_consumer", lambda *args: True)
    return redis_client


def hold(client, task_id):
    """Give a task a live lease, as its consumer would."""
    client.set(leases.lease_key(task_id), "chan", ex=60)


@pytest.fixture
def streams(db, redis):
    """Two open streams with live leases (one with a worker) and one ended stream."""
    user = User.objects.create_user("alice")
    source = LogSource.objects.create(name="nginx", path="/var/log/nginx/access.log")
    running = records.create(user, "log", source, {}, "task-running", "chan-1")
    records.set_worker(running.pk, "w1@web1")
    waiting = records.create(user, "log", source, {}, "task-waiting", "chan-2")
    ended = records.create(user, "log", source, {}, "task-ended", "chan-3")
    records.end(ended.pk, Ending.VIEWER_STOP)
    hold(redis, "task-running")
    hold(redis, "task-waiting")
    return running, waiting, ended


def run(*args):
    """Run `streams ARGS`; return stdout."""
    out = StringIO()
    call_command("streams", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_lists_open_streams_with_the_spec_columns(streams):
    running, waiting, _ = streams
    header, *rows = run().strip().splitlines()
    assert re.split(r"\s{2,}", header) == ["id", "user", "source", "started", "worker",
                                           "task id"]
    assert len(rows) == 2
    first = rows[0].split()
    assert first[0] == str(running.pk) and first[1] == "alice"
    assert f"log:{running.source_id}" in rows[0] and "nginx" in rows[0]
    assert "w1@web1" in rows[0] and rows[0].endswith("task-running")
    assert "(waiting on tailf)" in rows[1] and rows[1].endswith("task-waiting")


def test_json_listing_has_one_object_per_open_stream(streams):
    items = json.loads(run("--json"))
    assert [item["task_id"] for item in items] == ["task-running", "task-waiting"]
    assert set(items[0]) >= {"id", "user", "source", "started", "worker", "task_id"}


def test_json_listing_says_how_many_lines_each_stream_has_sent(streams, redis):
    redis.set(leases.sent_key("task-running"), 812)
    items = {item["task_id"]: item for item in json.loads(run("--json"))}
    assert items["task-running"]["lines_sent"] == 812
    assert items["task-waiting"]["lines_sent"] == 0


def test_streams_whose_lease_lapsed_are_closed_not_listed(streams, redis):
    redis.delete(leases.lease_key("task-waiting"))
    output = run()
    assert "task-running" in output and "task-waiting" not in output
    assert records.open_streams().count() == 1


def test_empty_listing_says_so(db, redis):
    assert run().strip() == "no open streams"


def test_stop_ends_the_stream_and_says_what_happened(streams, monkeypatch):
    running, _, _ = streams
    monkeypatch.setattr(control, "CONSUMER_WAIT_SECONDS", 0.1)
    output = run("stop", str(running.pk))
    assert output.startswith(f"stream {running.pk} stopped (task task-running)")
    running.refresh_from_db()
    assert running.ended is not None and running.ending == Ending.ADMIN_STOP


@pytest.mark.parametrize("which", ["ended", "missing"])
def test_stop_of_a_stream_that_is_not_open_is_an_error(streams, which):
    stream_id = streams[2].pk if which == "ended" else 999999
    with pytest.raises(CommandError, match=f"no open stream with id {stream_id}"):
        run("stop", str(stream_id))


@pytest.fixture
def ended(db):
    """Four ended streams (newest last) and one open one; no Redis needed for history."""
    user = User.objects.create_user("bob")
    source = LogSource.objects.create(name="app", path="/var/log/app.log")
    made = []
    for n, (ending, detail, lines) in enumerate([
            (Ending.VIEWER_STOP, "", 10), (Ending.WORKER_LOST, "worker w1@h silent 8 s", 20),
            (Ending.ADMIN_STOP, "", 30), (Ending.TOO_SLOW, "4408 after 48 MiB", 40)]):
        stream = records.create(user, "log", source, {}, f"task-{n}", f"chan-{n}")
        records.end(stream.pk, ending, detail, lines)
        made.append(stream)
    records.create(user, "log", source, {}, "task-open", "chan-open")
    return made


def test_history_lists_ended_streams_newest_first_with_their_typed_ending(ended):
    lines = run("history").splitlines()
    assert lines[0].split() == ["id", "user", "source", "started", "duration", "lines",
                                "ending", "detail"]
    assert [line.split()[0] for line in lines[1:]] == [str(s.pk) for s in reversed(ended)]
    assert "too_slow" in lines[1] and "4408 after 48 MiB" in lines[1] and " 40 " in lines[1]
    assert "worker_lost" in lines[3] and "worker w1@h silent 8 s" in lines[3]
    assert "task-open" not in run("history", "--json")


def test_history_filters_by_ending_and_limits(ended):
    only = json.loads(run("history", "--ending", "worker_lost", "--json"))
    assert [(i["id"], i["ending"], i["end_reason"], i["lines_sent"]) for i in only] == [
        (ended[1].pk, "worker_lost", "worker w1@h silent 8 s", 20)]
    newest = json.loads(run("history", "--limit", "2", "--json"))
    assert [i["id"] for i in newest] == [ended[3].pk, ended[2].pk]
    assert set(newest[0]) >= {"id", "user", "source", "started", "ended", "worker", "task_id",
                              "lines_sent", "ending", "end_reason"}


def test_history_without_matches_says_so(ended):
    assert run("history", "--ending", "max_duration").strip() == \
        "no ended streams with ending max_duration"


@pytest.mark.parametrize("args", [("--ending", "exploded"), ("--limit", "0"),
                                  ("--limit", "x")])
def test_history_refuses_unknown_endings_and_bad_limits(ended, args):
    with pytest.raises(CommandError):
        run("history", *args)


def test_history_table_neutralises_terminal_escapes_in_details(ended):
    records.end(records.create(User.objects.get(username="bob"), "log",
                               LogSource.objects.get(name="app"), {}, "t-esc", "c").pk,
                Ending.ERROR, "bad \x1b[2J\x1b]0;pwned\x07 name\nnext")
    output = run("history", "--limit", "1")
    assert "\x1b" not in output and "\x07" not in output
    assert "bad \\x1b[2J\\x1b]0;pwned\\x07 name\\x0anext" in output
    assert len(output.strip().splitlines()) == 2
