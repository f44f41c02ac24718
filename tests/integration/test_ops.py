"""Ops control on the real system: `manage.py streams`, the admin's stop action and history,
limits that say so (4429), and /healthz."""

import asyncio
import json
import re
import subprocess
import sys

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.harness import ROOT, STAFF_HEALTHZ, started_installation
from tests.integration.conftest import Client, open_stream

PER_USER = 2
TOTAL = 3


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    """A module-local installation with small stream limits and a viewer in group ops."""
    with started_installation(tmp_path_factory.mktemp("ops"), workers=[{"concurrency": 4}],
                      STREAM_MAX_PER_USER=PER_USER, STREAM_MAX_TOTAL=TOTAL) as harness:
        harness.viewer_password = harness.create_user("viewer", groups=["ops"])
        harness.viewer_cookie = harness.login(harness.web.base_url, "viewer",
                                              harness.viewer_password)
        yield harness


@pytest.fixture
def log_source(installation, tmp_path):
    """A log source the ops group may view; returns its id."""
    log = tmp_path / "ops.log"
    log.write_text("")
    return installation.add_log(f"ops-{tmp_path.name}", log, "--group", "ops")


def manage(harness, *args):
    """Run `manage.py ARGS` in the installation; return the finished process."""
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=harness.env,
                          capture_output=True, text=True, timeout=60)


def record(harness, task_id):
    """Return how the stream record of a task ended (its Ending value)."""
    out = harness.shell(
        "from webapp.models import Stream\n"
        f"print('ending=' + Stream.objects.get(task_id={task_id!r}).ending)")
    return next(line for line in out.splitlines() if line.startswith("ending="))[7:]


async def expect_admin_stop(client, harness, task_id):
    """The viewer is told 'stopped by an administrator', the socket closes 1000, the task ends."""
    stopped = await client.status("stopped", timeout=10)
    assert stopped["message"] == "stopped by an administrator"
    with pytest.raises(ConnectionClosed):
        await client.next(timeout=5)
    assert client.socket.close_code == 1000
    assert await asyncio.to_thread(harness.wait_for, lambda: harness.task_end(task_id), 3)
    assert await asyncio.to_thread(
        harness.wait_for, lambda: task_id not in harness.active_task_ids(harness.worker), 3)
    assert record(harness, task_id) == "admin_stop"


async def test_streams_lists_open_streams_with_user_source_worker_and_task(installation,
                                                                          log_source):
    harness = installation
    async with open_stream(harness, f"/ws/tailf/{log_source}/?lines=0") as socket:
        client = Client(socket)
        queued = await client.status("queued")
        await client.status("running")
        listing = await asyncio.to_thread(manage, harness, "streams")
        assert listing.returncode == 0, listing.stderr
        header, *rows = listing.stdout.strip().splitlines()
        assert re.split(r"\s{2,}", header) == ["id", "user", "source", "started", "worker",
                                               "task id"]
        row = next(r for r in rows if queued["task_id"] in r)
        assert row.split()[0] == str(queued["stream"])
        assert row.split()[1] == "admin"
        assert f"log:{log_source} " in row and harness.worker.hostname in row
        as_json = await asyncio.to_thread(manage, harness, "streams", "--json")
        entry = next(e for e in json.loads(as_json.stdout) if e["task_id"] == queued["task_id"])
        assert entry["worker"] == harness.worker.hostname and entry["user"] == "admin"
        await client.send({"action": "stop"})
        await client.status("stopped")
    after = await asyncio.to_thread(manage, harness, "streams")
    assert queued["task_id"] not in after.stdout


async def test_streams_stop_reaches_the_viewer_as_stopped_by_an_administrator(installation,
                                                                             log_source):
    harness = installation
    async with open_stream(harness, f"/ws/tailf/{log_source}/?lines=0") as socket:
        client = Client(socket)
        queued = await client.status("queued")
        await client.status("running")
        stop = asyncio.create_task(asyncio.to_thread(
            manage, harness, "streams", "stop", str(queued["stream"])))
        await expect_admin_stop(client, harness, queued["task_id"])
        done = await stop
    assert done.returncode == 0, done.stderr
    assert f"stream {queued['stream']} stopped" in done.stdout
    assert "viewer was told" in done.stdout


async def test_lines_sent_are_listed_while_open_and_kept_in_the_history(installation, tmp_path):
    harness = installation
    log = tmp_path / "counted.log"
    log.write_text("".join(f"backlog {n}\n" for n in range(5)))
    source = harness.add_log(f"counted-{tmp_path.name}", log, "--group", "ops")
    async with open_stream(harness, f"/ws/tailf/{source}/?lines=5") as socket:
        client = Client(socket)
        queued = await client.status("queued")
        await client.lines([f"backlog {n}" for n in range(5)])
        with log.open("a") as out:
            out.write("".join(f"new {n}\n" for n in range(7)))
        await client.lines([f"new {n}" for n in range(7)])

        def listed():
            done = manage(harness, "streams", "--json")
            entry = next(e for e in json.loads(done.stdout) if e["task_id"] == queued["task_id"])
            return entry["lines_sent"] == 12

        assert await asyncio.to_thread(harness.wait_for, listed, 10)
        await client.send({"action": "stop"})
        await client.status("stopped")

    def kept():
        out = harness.shell("from webapp.models import Stream\n"
                            f"print(Stream.objects.get(task_id={queued['task_id']!r}).lines_sent)")
        return out.strip().splitlines()[-1] == "12"

    # The count is written at most about 1 s after the last line went out.
    assert await asyncio.to_thread(harness.wait_for, kept, 10)


def test_streams_stop_of_a_stream_that_is_not_open_fails(installation):
    done = manage(installation, "streams", "stop", "987654")
    assert done.returncode != 0
    assert "no open stream with id 987654" in done.stderr


async def test_admin_shows_open_streams_stops_them_and_keeps_the_history(installation,
                                                                        log_source):
    harness = installation
    base = harness.web.base_url
    async with httpx.AsyncClient(base_url=base, timeout=20) as admin:
        await admin.get("/admin/login/")
        await admin.post("/admin/login/?next=/admin/", data={
            "username": "admin", "password": harness.admin_password,
            "csrfmiddlewaretoken": admin.cookies["csrftoken"], "next": "/admin/"})
        async with open_stream(harness, f"/ws/tailf/{log_source}/?lines=0",
                               cookie=harness.viewer_cookie) as socket:
            client = Client(socket)
            queued = await client.status("queued")
            await client.status("running")
            # `running` is relayed before the worker is written to the record: poll for it.
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                page = await admin.get("/admin/webapp/stream/?state=open")
                assert page.status_code == 200
                html = page.text
                if (harness.worker.hostname in html
                        or asyncio.get_running_loop().time() > deadline):
                    break
                await asyncio.sleep(0.1)
            assert "viewer" in html and f"log:{log_source} ops-" in html
            assert harness.worker.hostname in html and "stop_selected" in html
            stop = await admin.post("/admin/webapp/stream/?state=open", data={
                "action": "stop_selected", "_selected_action": [str(queued["stream"])],
                "index": "0", "csrfmiddlewaretoken": admin.cookies["csrftoken"]})
            assert stop.status_code in (200, 302)
            await expect_admin_stop(client, harness, queued["task_id"])
        history = await admin.get("/admin/webapp/stream/?state=ended&ending=admin_stop")
        assert history.status_code == 200
        assert f'value="{queued["stream"]}"' in history.text
        assert "viewer" in history.text


async def test_limits_refuse_with_4429_and_say_which_limit(installation, log_source):
    harness = installation
    path = f"/ws/tailf/{log_source}/?lines=0"
    first = await open_stream(harness, path, cookie=harness.viewer_cookie)
    second = await open_stream(harness, path, cookie=harness.viewer_cookie)
    admins = []
    try:
        for socket in (first, second):
            await Client(socket).status("queued")
        async with open_stream(harness, path, cookie=harness.viewer_cookie) as socket:
            refused = await Client(socket).status("error")
            assert refused["code"] == 4429
            assert f"the limit is {PER_USER} per user" in refused["message"]
            await socket.wait_closed()
            assert socket.close_code == 4429
        admins.append(await open_stream(harness, path))
        await Client(admins[0]).status("queued")
        async with open_stream(harness, path) as socket:
            refused = await Client(socket).status("error")
            assert refused["code"] == 4429
            assert f"the server has {TOTAL} open, the limit is {TOTAL}" in refused["message"]
            await socket.wait_closed()
            assert socket.close_code == 4429
    finally:
        for socket in (first, second, *admins):
            await socket.close()


def test_healthz_reports_each_check_and_the_workers_per_queue(installation, tmp_path):
    harness = installation
    harness.add_log("orphan", tmp_path / "orphan.log", "--queue", "tailf.nobody")
    response = httpx.get(harness.web.base_url + "/healthz", headers=STAFF_HEALTHZ,
                         timeout=15)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "redis": "ok", "channel_layer": "ok",
                              "workers": "ok"}
    assert body["workers"]["tailf"] == [harness.worker.hostname]
    assert body["workers"]["feeds"] == [harness.worker.hostname]
    assert body["workers_online"]["tailf"] == 1
    assert [s["name"] for s in body["sources_without_worker"]] == ["orphan"]
    assert isinstance(body["open_streams"], int)


def test_healthz_tells_anonymous_callers_only_the_status(installation, tmp_path):
    harness = installation
    harness.add_log("secret-source", tmp_path / "secret.log", "--queue", "tailf.hidden",
                    "--group", "restricted")
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx.get(harness.web.base_url + "/healthz", headers=headers, timeout=15)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert "secret-source" not in response.text and "tailf" not in response.text
    staff = httpx.get(harness.web.base_url + "/healthz", headers=STAFF_HEALTHZ, timeout=15)
    assert "secret-source" in staff.text
