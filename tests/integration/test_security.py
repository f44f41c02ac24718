"""Security on the real system: Origin checks, default-deny across both kinds of source,
malformed ids, query parameters that never become paths, CSP and login throttling."""

import asyncio
import os
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.integration.conftest import Client, open_stream


def ws_url(system, path):
    """The WebSocket URL of a path on the system's Daphne."""
    return "ws" + system.web.base_url[4:] + path


def stream_count(system, username):
    """Return how many stream records a user has."""
    return int(system.shell(
        "from webapp.models import Stream\n"
        f"print(Stream.objects.filter(username={username!r}).count())").strip().splitlines()[-1])


@pytest.fixture(scope="module")
def outsider(system):
    """A user in group `others` only; returns its session cookie."""
    password = system.create_user("outsider", groups=["others"])
    return system.login(system.web.base_url, "outsider", password)


async def refusal(system, path, cookie):
    """Open a stream and return (status message, close code) of its refusal."""
    async with open_stream(system, path, cookie=cookie) as socket:
        message = await Client(socket).next()
        await socket.wait_closed()
        return message, socket.close_code


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1.evil.example",
                                    "null", "same host, another port"])
async def test_cross_origin_websocket_is_refused(system, origin):
    if origin == "same host, another port":
        port = int(system.web.base_url.rsplit(":", 1)[1])
        origin = f"http://127.0.0.1:{port + 1}"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(system, "/ws/tailf/1/"), open_timeout=10,
                           additional_headers={"Origin": origin,
                                               "Cookie": system.admin_cookie}):
            pass
    assert refused.value.response.status_code == 403


async def test_websocket_without_origin_is_refused(system):
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(system, "/ws/tailf/1/"), open_timeout=10,
                           additional_headers={"Cookie": system.admin_cookie}):
            pass
    assert refused.value.response.status_code == 403


async def test_user_outside_the_groups_gets_4403_for_both_kinds_and_nothing_starts(
        system, outsider, tmp_path, feed_server):
    logs = {system.add_log(f"secret-log-{n}", tmp_path / f"secret{n}.log", "--group", "ops")
            for n in range(2)}
    feeds = {system.add_feed("secret-feed", feed_server.url, "--group", "ops")}
    assert logs - feeds, "some log id must have no feed of the same id"
    for source_id in sorted(logs | feeds):
        for kind, ids in (("tailf", logs), ("feeds", feeds)):
            message, code = await refusal(system, f"/ws/{kind}/{source_id}/", outsider)
            expected = 4403 if source_id in ids else 4404
            assert (message["state"], message["code"], code) == ("error", expected, expected)
            assert "task_id" not in message and "secret" not in message["message"]
    assert stream_count(system, "outsider") == 0


@pytest.mark.parametrize("raw_id", ["abc", "-1", "0", "1.0", "0x1", "1e3", "..",
                                    "99999999999999999999", "9223372036854775808"])
async def test_malformed_ids_are_refused_with_4404_and_start_nothing(system, outsider, raw_id):
    for kind in ("tailf", "feeds"):
        message, code = await refusal(system, f"/ws/{kind}/{raw_id}/", system.admin_cookie)
        assert (message["state"], message["code"], code) == ("error", 4404, 4404)
        assert "task_id" not in message


async def test_no_query_parameter_becomes_a_path(system, tmp_path):
    real = tmp_path / "real.log"
    real.write_text("real line\n")
    decoy = tmp_path / "decoy.log"
    decoy.write_text("decoy line\n")
    source = system.add_log("param-test", real)
    query = f"lines=5&path={decoy}&source={decoy}&filename={decoy}&name={decoy}"
    async with open_stream(system, f"/ws/tailf/{source}/?{query}") as socket:
        client = Client(socket)
        task_id = (await client.status("queued"))["task_id"]
        backlog = await client.until(lambda m: m["type"] == "lines")
        assert backlog["lines"] == ["real line"]
        await client.status("running")
        replies = system.celery.control.inspect(destination=[system.worker.hostname],
                                                timeout=2).active()
        task = next(t for tasks in replies.values() for t in tasks if t["id"] == task_id)
        assert set(task["kwargs"]["options"]) == {"lines", "grep"}
        assert str(decoy) not in repr(task["kwargs"])
        opened = {os.readlink(fd) for fd in Path(f"/proc/{task['worker_pid']}/fd").iterdir()
                  if fd.is_symlink()}
        assert str(real) in opened and str(decoy) not in opened
        with open(decoy, "a") as handle:
            handle.write("decoy appended\n")
        with open(real, "a") as handle:
            handle.write("real appended\n")
        seen = await client.lines(["real appended"])
        assert not [line for line in seen if "decoy" in line]


async def test_pages_carry_a_csp_without_inline_script(system):
    async with httpx.AsyncClient(base_url=system.web.base_url, timeout=10) as client:
        for path in ("/accounts/login/", "/admin/login/", "/healthz"):
            response = await client.get(path)
            policy = response.headers["content-security-policy"]
            directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
            assert directives["script-src"] == "'self'", path
            assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
            assert directives["object-src"] == "'none'"
            assert directives["frame-ancestors"] == "'none'"


async def test_repeated_failed_logins_lock_that_username_out(system):
    password = await asyncio.to_thread(system.create_user, "target")
    await asyncio.to_thread(system.create_user, "bystander", "pw-bystander-123456")

    async def attempt(username, secret):
        async with httpx.AsyncClient(base_url=system.web.base_url, timeout=10) as client:
            await client.get("/accounts/login/")
            response = await client.post("/accounts/login/", data={
                "username": username, "password": secret,
                "csrfmiddlewaretoken": client.cookies["csrftoken"]})
            return response.status_code, "sessionid" in client.cookies

    limit = 5  # LOGIN_FAILURE_LIMIT's default
    for _ in range(limit - 1):
        assert await attempt("target", "wrong password") == (200, False)
    assert await attempt("target", "wrong password") == (429, False)
    assert await attempt("target", password) == (429, False)
    assert await attempt("bystander", "pw-bystander-123456") == (302, True)
