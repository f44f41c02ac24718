"""Password sign-in through a real OpenLDAP directory (Debian's slapd): users created on first
sign-in, groups following the directory at every sign-in, a removed member's running stream
ended, refused members, and a directory that never answers."""

import asyncio
import subprocess
import sys
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests import directory
from tests.harness import ROOT, started_installation
from tests.integration.conftest import Client, in_ci, open_stream

pytestmark = pytest.mark.sqlite_only

if not directory.available():
    if in_ci():
        pytest.fail("slapd and ldap-utils are needed: .ci/run installs them", pytrace=False)
    pytest.skip("slapd and ldap-utils are not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    """A real slapd seeded with a few people and groups."""
    with directory.Directory(tmp_path_factory.mktemp("ldap")) as server:
        server.add_user("carol", "carol-directory-pw", groups=["disabled"])
        yield server


@pytest.fixture(scope="module")
def installation(tmp_path_factory, slapd):
    """Tailboard pointed at the directory; Django groups `ops` and `dev` exist."""
    with started_installation(tmp_path_factory.mktemp("ldap-site"), **slapd.env(
            LDAP_DENY_GROUP=slapd.group_dn("disabled"))) as harness:
        harness.shell("from django.contrib.auth.models import Group\n"
                      "for name in ('ops', 'dev', 'local-only'):\n"
                      "    Group.objects.get_or_create(name=name)\n")
        yield harness


def user_state(harness, username):
    """Return (exists, sorted group names, has a usable password, email) of a Django user."""
    out = harness.shell(
        "import json\nfrom django.contrib.auth.models import User\n"
        f"u = User.objects.filter(username={username!r}).first()\n"
        "print(json.dumps(None if u is None else [sorted(u.groups.values_list('name', "
        "flat=True)), u.has_usable_password(), u.email]))\n")
    return __import__("json").loads(out.strip().splitlines()[-1])


def sign_in(base, username, password):
    """Post the login form; return (response, session cookie or None)."""
    with httpx.Client(base_url=base, timeout=30) as client:
        client.get("/accounts/login/")
        response = client.post("/accounts/login/", data={
            "username": username, "password": password,
            "csrfmiddlewaretoken": client.cookies["csrftoken"]},
            headers={"Referer": base + "/accounts/login/"})
        session = client.cookies.get("sessionid")
        return response, (f"sessionid={session}" if session else None)


def test_directory_password_signs_in_and_brings_only_existing_groups(installation, slapd):
    slapd.add_user("alice", "alice-directory-pw", groups=["ops", "dev", "not-in-django"])
    assert user_state(installation, "alice") is None
    response, cookie = sign_in(installation.web.base_url, "alice", "alice-directory-pw")
    assert cookie, response.text[:500]
    groups, usable_password, email = user_state(installation, "alice")
    assert groups == ["dev", "ops"]  # "not-in-django" is no Django group: left out
    assert usable_password is False and email == "alice@tailboard.test"


def test_a_wrong_directory_password_is_refused(installation, slapd):
    slapd.add_user("dave", "dave-directory-pw", groups=["ops"])
    response, cookie = sign_in(installation.web.base_url, "dave", "not-daves-password")
    assert cookie is None and response.status_code == 200
    assert "didn&#x27;t match" in response.text or "didn't match" in response.text
    assert user_state(installation, "dave") is None


def test_a_local_group_the_directory_does_not_list_is_removed_at_sign_in(installation, slapd):
    slapd.add_user("erin", "erin-directory-pw", groups=["dev"])
    sign_in(installation.web.base_url, "erin", "erin-directory-pw")
    installation.shell("from django.contrib.auth.models import User, Group\n"
                       "User.objects.get(username='erin').groups.add("
                       "Group.objects.get(name='local-only'))\n")
    assert user_state(installation, "erin")[0] == ["dev", "local-only"]
    sign_in(installation.web.base_url, "erin", "erin-directory-pw")
    assert user_state(installation, "erin")[0] == ["dev"]


def test_a_member_of_the_deny_group_cannot_sign_in(installation, slapd):
    response, cookie = sign_in(installation.web.base_url, "carol", "carol-directory-pw")
    assert cookie is None and response.status_code == 200
    assert user_state(installation, "carol") is None


async def test_removed_from_a_group_in_the_directory_ends_the_stream_after_next_sign_in(
        installation, slapd, tmp_path):
    slapd.add_user("frank", "frank-directory-pw", groups=["ops"])
    log = tmp_path / "ops.log"
    log.write_text("first\n")
    source = installation.add_log("ops-log", log, "--group", "ops")
    _, first = await asyncio.to_thread(sign_in, installation.web.base_url, "frank",
                                       "frank-directory-pw")
    assert first
    async with open_stream(installation, f"/ws/tailf/{source}/?lines=1", cookie=first) as socket:
        client = Client(socket)
        await client.status("running")
        await asyncio.to_thread(slapd.remove_member, "ops", "frank")
        _, second = await asyncio.to_thread(sign_in, installation.web.base_url, "frank",
                                            "frank-directory-pw")
        assert second and second != first
        signed_in = time.monotonic()
        error = await client.status("error", timeout=10)
        took = time.monotonic() - signed_in
        with pytest.raises(ConnectionClosed):
            while True:
                await client.next(10)
    assert socket.close_code == 4403 and error["code"] == 4403
    assert took <= 3 + 1.5, took  # STREAM_LEASE_SECONDS is 3 in the harness
    assert user_state(installation, "frank")[0] == []
    # ... and a new stream on that source is refused.
    async with open_stream(installation, f"/ws/tailf/{source}/?lines=1", cookie=second) as socket:
        refused = await Client(socket).next()
        await socket.wait_closed()
    assert refused["code"] == 4403 and socket.close_code == 4403


def test_a_directory_that_never_answers_gives_a_clear_message_and_local_admin_still_works(
        installation):
    with directory.SilentServer() as silent:
        web = installation.start_daphne("web-hung-ldap", LDAP_SERVER_URI=silent.uri,
                                        LDAP_TIMEOUT="2")
        try:
            started = time.monotonic()
            response, cookie = sign_in(web.base_url, "alice", "alice-directory-pw")
            took = time.monotonic() - started
            assert cookie is None and response.status_code == 200
            assert "company directory did not answer" in response.text
            assert took < 15, took
            assert silent.accepted, "Tailboard did try the directory"
            _, admin = sign_in(web.base_url, "admin", installation.admin_password)
            assert admin, "a local superuser still signs in while the directory hangs"
        finally:
            installation.stop(web)
    log = (installation.workdir / "web-hung-ldap.log").read_text()
    assert f"LDAP directory {silent.uri} failed" in log
    assert directory.SERVICE_PASSWORD not in log


def test_a_directory_entry_never_signs_in_as_a_local_account_of_the_same_name(installation,
                                                                             slapd):
    local_password = installation.create_user("grace", password="grace-local-" + "p" * 8,
                                              superuser=True, groups=["local-only"])
    slapd.add_user("grace", "grace-directory-pw", groups=["ops"])
    response, cookie = sign_in(installation.web.base_url, "grace", "grace-directory-pw")
    assert cookie is None and response.status_code == 200
    assert user_state(installation, "grace")[:2] == [["local-only"], True]
    _, cookie = sign_in(installation.web.base_url, "grace", local_password)
    assert cookie, "the local password still works"
    assert "a local account (with a Django password) has that name" in (
        installation.workdir / "web.log").read_text()


async def test_directory_sync_ends_the_streams_of_someone_deleted_or_disabled_in_the_directory(
        installation, slapd, tmp_path):
    slapd.add_user("hank", "hank-directory-pw", groups=["ops"])
    slapd.add_user("ivy", "ivy-directory-pw", groups=["ops", "dev"])
    log = tmp_path / "ops.log"
    log.write_text("first\n")
    source = installation.add_log("ops-sync-log", log, "--group", "ops")
    cookies = {}
    for name in ("hank", "ivy"):
        _, cookies[name] = await asyncio.to_thread(sign_in, installation.web.base_url, name,
                                                   f"{name}-directory-pw")
    async with open_stream(installation, f"/ws/tailf/{source}/?lines=1",
                           cookie=cookies["hank"]) as hank, \
            open_stream(installation, f"/ws/tailf/{source}/?lines=1",
                        cookie=cookies["ivy"]) as ivy:
        clients = [Client(hank), Client(ivy)]
        for client in clients:
            await client.status("running")
        await asyncio.to_thread(slapd.delete_user, "hank")
        await asyncio.to_thread(slapd.add_member, "disabled", "ivy")
        out = await asyncio.to_thread(installation.manage, "directory", "sync")
        synced = time.monotonic()
        for client in clients:
            error = await client.status("error", timeout=10)
            assert error["code"] == 4403
        took = time.monotonic() - synced
    assert took <= 3 + 1.5, took
    assert "hank: not in the directory: every group removed" in out
    assert "ivy: refused by LDAP_REQUIRE_GROUP/LDAP_DENY_GROUP: every group removed" in out
    assert "grace" not in out, "a local account is not the directory's"
    assert user_state(installation, "hank")[0] == [] and user_state(installation, "ivy")[0] == []


def test_directory_sync_stops_when_the_directory_does_not_answer(installation):
    with directory.SilentServer() as silent:
        result = subprocess.run(
            [sys.executable, "manage.py", "directory", "sync"], cwd=ROOT, timeout=60,
            env={**installation.env, "LDAP_SERVER_URI": silent.uri, "LDAP_TIMEOUT": "1"},
            capture_output=True, text=True)
    assert result.returncode != 0
    assert f"the directory {silent.uri} failed" in result.stderr
    assert "nothing more was changed" in result.stderr
    assert user_state(installation, "alice")[0] == ["dev", "ops"], "nobody was changed"
