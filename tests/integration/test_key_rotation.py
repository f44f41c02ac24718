"""A SECRET_KEY rotation on the real stack: with the old key in SECRET_KEY_FALLBACKS, a session
made before it still loads pages and streams (over a WebSocket, past lease renewals); without
it, that session is signed out for pages and streams alike."""

import asyncio
import threading

import httpx
import pytest

from tests.harness import SECRET, started_installation
from tests.integration.conftest import Client, open_stream
from tests.polling import PollClient

pytestmark = pytest.mark.sqlite_only

NEW_KEY = "rotated-secret-key-" + "r" * 40


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    """Signed in under the old key (the fixture's Daphne); a worker and two Daphnes with the
    new key, one listing the old key as a fallback."""
    rotated = {"SECRET_KEY": NEW_KEY, "SECRET_KEY_FALLBACKS": SECRET}
    with started_installation(tmp_path_factory.mktemp("key-rotation"),
                              workers=(rotated,)) as harness:
        harness.rotated = harness.start_daphne("web-rotated", **rotated)
        harness.bare = harness.start_daphne("web-new-key-only", SECRET_KEY=NEW_KEY)
        yield harness


def append(path, *lines):
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


def signed_in_before(installation, username):
    """A session cookie made under the old key (the fixture's own Daphne)."""
    password = installation.create_user(username, groups=["ops"])
    return installation.login(installation.web.base_url, username, password)


def page(web, cookie):
    return httpx.get(web.base_url + "/", headers={"Cookie": cookie})


async def test_a_tab_open_before_the_rotation_streams_on(installation, tmp_path):
    cookie = signed_in_before(installation, "tab")
    log = tmp_path / "app.log"
    log.write_text("")
    source = installation.add_log("rotation", log, "--group", "ops")
    async with open_stream(installation, f"/ws/tailf/{source}/?lines=0", cookie=cookie,
                           web=installation.rotated) as socket:
        client = Client(socket)
        await client.status("running")
        append(log, "before a renewal")
        await client.lines(["before a renewal"])
        await asyncio.sleep(4)  # past a lease renewal, which checks the session again
        append(log, "after a renewal")
        await client.lines(["after a renewal"])
        assert not [m for m in client.messages if m["type"] == "status"
                    and m["state"] in ("error", "stopped")]


def test_a_page_load_from_before_the_rotation_works_and_renews_the_cookie(installation):
    cookie = signed_in_before(installation, "pages")
    response = page(installation.rotated, cookie)
    assert response.status_code == 200
    renewed = response.cookies.get("sessionid")
    assert renewed and renewed != cookie.partition("=")[2]  # Django's cycle_key
    assert page(installation.rotated, f"sessionid={renewed}").status_code == 200


def test_a_long_polled_stream_from_before_the_rotation_streams_on(installation, tmp_path):
    cookie = signed_in_before(installation, "poller")
    log = tmp_path / "poll.log"
    log.write_text("")
    source = installation.add_log("rotation-poll", log, "--group", "ops")
    client = PollClient(installation.rotated.base_url, cookie)  # a browser: takes new cookies
    try:
        assert client.start(f"/streams/tailf/{source}/?lines=0").status_code == 201
        client.status("running")
        append(log, "polled before a renewal")
        client.until(lambda m: m["type"] == "lines" and "polled before a renewal" in m["lines"])
        # Written past a lease renewal (which checks the session again); polled meanwhile.
        later = threading.Timer(4, append, (log, "polled after a renewal"))
        later.start()
        client.until(lambda m: m["type"] == "lines" and "polled after a renewal" in m["lines"])
        later.join()
        assert client.closed is None
    finally:
        client.close()


async def test_without_the_old_key_that_session_is_signed_out(installation, tmp_path):
    cookie = signed_in_before(installation, "late")
    response = page(installation.bare, cookie)
    assert response.status_code == 302 and "/accounts/login/" in response.headers["location"]
    source = installation.add_log("rotation-bare", tmp_path / "bare.log", "--group", "ops")
    async with open_stream(installation, f"/ws/tailf/{source}/", cookie=cookie,
                           web=installation.bare) as socket:
        message = await Client(socket).next()
        await socket.wait_closed()
    assert (message["state"], socket.close_code) == ("error", 4401)
