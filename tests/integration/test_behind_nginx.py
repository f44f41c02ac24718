"""Tailboard behind Debian's nginx with the site file docs/deploy.md recommends
(docs/nginx/tailboard.conf, served as is but for its addresses): login throttling counts the
address nginx saw, whatever a client writes in X-Forwarded-For, and streams work through it.

Each client connects from an address of its own on 127.0.0.0/8 (127.0.0.1 is nginx's own, the
address Daphne sees), so the tests tell "the client nginx saw" from "the proxy".
"""

import asyncio
import json
import ssl
import types

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.integration.conftest import Client, open_stream
from tests.nginx import without_upgrade
from webapp import embedded

LIMIT = 5  # LOGIN_FAILURE_LIMIT's default
SPOOFS = 30
APPEND = ("proxy_set_header X-Forwarded-For $remote_addr;",
          "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;")


def appending(config):
    """The site file with nginx appending to the client's X-Forwarded-For (the old advice)."""
    assert config.count(APPEND[0]) == 1
    return config.replace(*APPEND)


@pytest.fixture(scope="module")
def proxied_webs(system):
    """Daphnes as docs/deploy.md runs them behind nginx (TRUSTED_PROXY_COUNT=1), one without and
    one with Daphne's own `--proxy-headers` (which must change nothing)."""
    plain = system.start_daphne("web-proxied", TRUSTED_PROXY_COUNT="1")
    headers = system.start_daphne("web-proxy-headers", ["--proxy-headers"],
                                  TRUSTED_PROXY_COUNT="1")
    yield {"plain": plain, "proxy-headers": headers}
    system.stop_all([plain, headers])


def login_attempt(base, username, password, source, forwarded_for=None):
    """Post the login form from the client address `source`; return (status, logged in)."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=base, timeout=10, transport=transport) as client:
        extra = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        client.get("/accounts/login/", headers=extra)
        response = client.post("/accounts/login/", headers=extra, data={
            "username": username, "password": password,
            "csrfmiddlewaretoken": client.cookies["csrftoken"]})
        return response.status_code, "sessionid" in client.cookies


def attempts_of(system, username):
    """Return django-axes' failure records of a username: [(address, failures)]."""
    out = system.shell(
        "import json\nfrom axes.models import AccessAttempt\n"
        f"print(json.dumps(sorted(AccessAttempt.objects.filter(username={username!r})"
        ".values_list('ip_address', 'failures_since_start'))))")
    return [tuple(row) for row in json.loads(out.strip().splitlines()[-1])]


def spoofing_run(system, base, username, source):
    """Send SPOOFS wrong passwords, each with another client-chosen X-Forwarded-For; return the
    statuses."""
    return [login_attempt(base, username, "wrong password", source,
                          f"198.51.100.{n}, 127.0.0.1")[0] for n in range(1, SPOOFS + 1)]


@pytest.mark.parametrize("web, edit, source", [
    ("plain", None, "127.0.0.7"),
    ("proxy-headers", None, "127.0.0.8"),
    ("proxy-headers", appending, "127.0.0.9"),
], ids=["as-documented", "daphne-proxy-headers", "nginx-appending"])
def test_forged_forwarded_for_through_nginx_is_counted_as_the_address_nginx_saw(
        system, proxied_webs, nginx, web, edit, source):
    proxy = nginx([proxied_webs[web].base_url], edit=edit)
    username = f"spoofed-{source.rsplit('.', 1)[1]}"
    password = system.create_user(username)

    statuses = spoofing_run(system, proxy.url, username, source)

    assert statuses == [200] * (LIMIT - 1) + [429] * (SPOOFS - LIMIT + 1)
    assert attempts_of(system, username) == [(source, SPOOFS)]
    assert login_attempt(proxy.url, username, password, source) == (429, False)
    # Another client of the same proxy is not locked out by the first one's failures.
    assert login_attempt(proxy.url, username, password, "127.0.0.20") == (302, True)
    def posts():
        return [line.split(" ", 1)[0] for line in proxy.access_log()
                if "POST /accounts/" in line]

    # nginx logs a request once its response is out: the last line may lag the client a little.
    system.wait_for(lambda: len(posts()) >= SPOOFS + 2, 5)
    assert posts() == [source] * (SPOOFS + 1) + ["127.0.0.20"]


def test_forged_forwarded_for_without_a_proxy_changes_nothing(system):
    username = "spoofed-direct"
    password = system.create_user(username)

    statuses = spoofing_run(system, system.web.base_url, username, "127.0.0.11")

    assert statuses == [200] * (LIMIT - 1) + [429] * (SPOOFS - LIMIT + 1)
    assert attempts_of(system, username) == [("127.0.0.11", SPOOFS)]
    assert login_attempt(system.web.base_url, username, password, "127.0.0.12") == (302, True)


async def test_a_stream_through_nginx_delivers_lines_and_stops(system, proxied_webs, nginx,
                                                              tmp_path):
    proxy = nginx([proxied_webs["plain"].base_url])
    log = tmp_path / "proxied.log"
    log.write_text("before 1\nbefore 2\n")
    source = await asyncio.to_thread(system.add_log, "proxied", log)
    cookie = await asyncio.to_thread(system.login, proxy.url, "admin", system.admin_password)
    front = types.SimpleNamespace(base_url=proxy.url)
    async with open_stream(system, f"/ws/tailf/{source}/?lines=2", cookie=cookie,
                           web=front) as socket:
        client = Client(socket)
        task_id = (await client.status("queued"))["task_id"]
        assert (await client.until(lambda m: m["type"] == "lines"))["lines"] == [
            "before 1", "before 2"]
        await client.status("running")
        with open(log, "a") as handle:
            handle.write("".join(f"through nginx {n}\n" for n in range(200)))
        await client.lines([f"through nginx {n}" for n in range(200)])
        await client.send({"action": "stop"})
        assert (await client.status("stopped"))["message"]
        await socket.wait_closed()
        assert socket.close_code == 1000
    assert await asyncio.to_thread(system.wait_for, lambda: system.task_end(task_id), 5)
    assert await asyncio.to_thread(
        system.wait_for, lambda: task_id not in system.active_task_ids(system.worker), 5)
    # nginx logs the upgraded request once its connection ends, a moment after the client's.
    upgrades = system.wait_for(lambda: [line for line in proxy.access_log()
                                        if f"/ws/tailf/{source}/" in line], 5)
    assert upgrades and all('" 101 ' in line for line in upgrades)


async def test_without_the_upgrade_headers_no_websocket_opens_through_nginx(system, proxied_webs,
                                                                           nginx):
    proxy = nginx([proxied_webs["plain"].base_url], edit=without_upgrade)
    cookie = await asyncio.to_thread(system.login, proxy.url, "admin", system.admin_password)
    front = types.SimpleNamespace(base_url=proxy.url)
    with pytest.raises(InvalidStatus):
        async with open_stream(system, "/ws/tailf/1/", cookie=cookie, web=front):
            pass


def test_daphne_with_proxy_headers_but_no_trusted_proxy_says_so_in_its_log(system, proxied_webs):
    warning = "Daphne runs with --proxy-headers and TRUSTED_PROXY_COUNT is 0"
    misconfigured = system.start_daphne("web-misconfigured", ["--proxy-headers"])
    try:
        assert warning in misconfigured.log_path.read_text()
    finally:
        system.stop(misconfigured)
    assert warning not in proxied_webs["proxy-headers"].log_path.read_text()
    assert warning not in system.web.log_path.read_text()


async def test_production_settings_behind_nginx_with_tls_log_in_and_stream(system, nginx,
                                                                           tmp_path):
    """docs/deploy.md section 6 as written: production settings (secure cookies, X-Forwarded-Proto
    trusted), CSRF_TRUSTED_ORIGINS naming the site, TRUSTED_PROXY_COUNT=1, nginx with TLS."""
    port = embedded.free_port()
    origin = f"https://127.0.0.1:{port}"
    web = await asyncio.to_thread(
        system.start_daphne, "web-production", TAILBOARD_ENV="production",
        CSRF_TRUSTED_ORIGINS=origin, TRUSTED_PROXY_COUNT="1")
    try:
        proxy = nginx([web.base_url], tls=True, port=port)
        trust = ssl.create_default_context(cafile=str(proxy.certificate))
        password = await asyncio.to_thread(system.create_user, "tls-viewer", groups=["tls"])
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.30", verify=trust)
        async with httpx.AsyncClient(base_url=proxy.url, transport=transport,
                                     timeout=10) as client:
            page = await client.get("/accounts/login/")
            assert "secure" in page.headers["set-cookie"].lower()
            refused = await client.post(
                "/accounts/login/", headers={"Referer": origin + "/accounts/login/",
                                             "X-Forwarded-For": "198.51.100.1"},
                data={"username": "tls-viewer", "password": "wrong",
                      "csrfmiddlewaretoken": client.cookies["csrftoken"]})
            assert refused.status_code == 200
            assert await asyncio.to_thread(attempts_of, system, "tls-viewer") == [
                ("127.0.0.30", 1)]
            logged_in = await client.post(
                "/accounts/login/", headers={"Referer": origin + "/accounts/login/"},
                data={"username": "tls-viewer", "password": password,
                      "csrfmiddlewaretoken": client.cookies["csrftoken"]})
            assert logged_in.status_code == 302
            cookie = f"sessionid={client.cookies['sessionid']}"
        log = tmp_path / "tls.log"
        log.write_text("over tls\n")
        source = await asyncio.to_thread(system.add_log, "tls-log", log, "--group", "tls")
        async with connect(f"wss://127.0.0.1:{port}/ws/tailf/{source}/?lines=1", ssl=trust,
                           additional_headers={"Origin": origin, "Cookie": cookie},
                           open_timeout=10) as socket:
            client = Client(socket)
            assert (await client.until(lambda m: m["type"] == "lines"))["lines"] == ["over tls"]
            await client.send({"action": "stop"})
            await client.status("stopped")
    finally:
        await asyncio.to_thread(system.stop, web)
