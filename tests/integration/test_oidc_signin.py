"""Single sign-on through a real OpenID Connect provider (npm's oidc-provider, in a node
process): first sign-in creates the user, the groups claim drives access at every sign-in,
sign-out ends the provider's session; and what must be refused: a provider that is down, a
tampered `state`, ID tokens with a wrong signature, for another audience or issuer, expired,
without the nonce."""

import asyncio
import contextlib
import json
import time
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests import oidcprovider
from tests.harness import started_installation
from tests.integration.conftest import Client, in_ci, open_stream
from tests.polling import PollClient
from webapp import embedded

pytestmark = pytest.mark.sqlite_only

if not oidcprovider.available():
    if in_ci():
        pytest.fail("node and tests/oidc/node_modules are needed: .ci/run runs npm ci there",
                    pytrace=False)
    pytest.skip("node or oidc-provider (npm ci in tests/oidc) is missing",
                allow_module_level=True)


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    """The real provider; its port is chosen first, so that Tailboard's env can name it."""
    with oidcprovider.NodeProvider(tmp_path_factory.mktemp("oidc-provider")) as node:
        yield node


@pytest.fixture(scope="module")
def installation(tmp_path_factory, provider):
    """Tailboard signing in with the provider; Django groups `ops` and `dev` exist."""
    with started_installation(tmp_path_factory.mktemp("oidc-site"),
                              **provider.env()) as harness:
        provider.start([harness.web.base_url])
        harness.shell("from django.contrib.auth.models import Group\n"
                      "for name in ('ops', 'dev'):\n"
                      "    Group.objects.get_or_create(name=name)\n")
        yield harness


@pytest.fixture(scope="module")
def forging(installation):
    """A Daphne of the same installation signing in with the forging provider."""
    with oidcprovider.ForgingProvider() as forger:
        web = installation.start_daphne("web-forging", **forger.env(OIDC_TIMEOUT="2"))
        forger.web = web
        try:
            yield forger
        finally:
            installation.stop(web)


def user_state(harness, username):
    """Return [sorted group names, has a usable password, email] of a Django user, or None."""
    out = harness.shell(
        "import json\nfrom django.contrib.auth.models import User\n"
        f"u = User.objects.filter(username={username!r}).first()\n"
        "print(json.dumps(None if u is None else [sorted(u.groups.values_list('name', "
        "flat=True)), u.has_usable_password(), u.email]))\n")
    return json.loads(out.strip().splitlines()[-1])


def to_callback(client, base, login, password):
    """Walk from Tailboard's "Sign in with" to the provider's redirect back; return its URL."""
    response = client.get(base + "/oidc/signin/", follow_redirects=True)
    assert "Sign in to the test provider" in response.text, response.text[:500]
    response = client.post(str(response.url), data={"login": login, "password": password})
    while response.is_redirect:
        target = str(response.next_request.url)
        if target.startswith(base + "/oidc/callback/"):
            return target
        response = client.get(target)
    raise AssertionError(f"the provider did not send the browser back: {response.text[:500]}")


def sign_in(harness, login, password):
    """Sign in like a browser; return (the httpx client, the cookie header for WebSockets)."""
    client = httpx.Client(timeout=30)
    base = harness.web.base_url
    response = client.get(to_callback(client, base, login, password), follow_redirects=False)
    assert response.status_code == 302, response.text[:1000]
    assert "sessionid" in client.cookies, "signed in"
    return client, f"sessionid={client.cookies['sessionid']}"


def test_the_login_page_offers_the_provider(installation):
    page = httpx.get(installation.web.base_url + "/accounts/login/?next=/x").text
    assert "Sign in with Test SSO" in page and 'href="/oidc/signin/?next=/x"' in page


def test_the_admin_login_sends_to_the_page_that_offers_the_provider(installation):
    response = httpx.get(installation.web.base_url + "/admin/")
    assert response.status_code == 302
    response = httpx.get(installation.web.base_url + response.headers["location"])
    assert response.status_code == 302
    assert response.headers["location"] == "/accounts/login/?next=/admin/"


def test_first_sign_in_creates_the_user_with_the_groups_of_the_claim(installation, provider):
    provider.set_account("olga", "olga-provider-pw", groups=["ops", "not-in-django"])
    assert user_state(installation, "olga") is None
    client, _ = sign_in(installation, "olga", "olga-provider-pw")
    with contextlib.closing(client):
        dashboard = client.get(installation.web.base_url + "/")
    assert dashboard.status_code == 200 and "olga" in dashboard.text
    assert user_state(installation, "olga") == [["ops"], False, "olga@tailboard.test"]
    log = (installation.workdir / "web.log").read_text()
    assert oidcprovider.CLIENT_SECRET not in log


def test_the_authorization_request_uses_pkce_s256(installation):
    with httpx.Client(timeout=10) as client:
        response = client.get(installation.web.base_url + "/oidc/signin/")
    query = parse_qs(urlparse(response.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["response_type"] == ["code"] and query["nonce"] and query["state"]
    assert "client_secret" not in response.headers["location"]


async def test_a_group_removed_in_the_claim_ends_the_stream_at_the_next_sign_in(
        installation, provider, tmp_path):
    provider.set_account("pavel", "pavel-provider-pw", groups=["ops", "dev"])
    log = tmp_path / "ops.log"
    log.write_text("first\n")
    source = installation.add_log("oidc-ops-log", log, "--group", "ops")
    first_client, first = await asyncio.to_thread(sign_in, installation, "pavel",
                                                  "pavel-provider-pw")
    first_client.close()
    async with open_stream(installation, f"/ws/tailf/{source}/?lines=1", cookie=first) as socket:
        client = Client(socket)
        await client.status("running")
        provider.set_account("pavel", "pavel-provider-pw", groups=["dev"])
        second_client, second = await asyncio.to_thread(sign_in, installation, "pavel",
                                                        "pavel-provider-pw")
        second_client.close()
        signed_in = time.monotonic()
        error = await client.status("error", timeout=10)
        took = time.monotonic() - signed_in
        with pytest.raises(ConnectionClosed):
            while True:
                await client.next(10)
    assert socket.close_code == 4403 and error["code"] == 4403
    assert took <= 3 + 1.5, took  # STREAM_LEASE_SECONDS is 3 in the harness
    assert user_state(installation, "pavel")[0] == ["dev"]


@pytest.fixture(scope="module")
def refreshing(installation):
    """A Daphne of the same installation that refreshes OIDC sessions every 3 s."""
    web = installation.start_daphne("web-refreshing", OIDC_REFRESH_SECONDS="3")
    try:
        yield web
    finally:
        installation.stop(web)


async def watch_until_the_provider_changes(installation, provider, refreshing, tmp_path, login,
                                           change):
    """Sign `login` in (groups ops), watch an ops log on the refreshing Daphne through one
    refresh, then `change()` at the provider; return (close code, error status, seconds
    from the change to the error, the session cookie)."""
    provider.set_account(login, login + "-provider-pw", groups=["ops"])
    log = tmp_path / "ops.log"
    log.write_text("first\n")
    source = installation.add_log(f"oidc-refresh-{login}", log, "--group", "ops")
    http, cookie = await asyncio.to_thread(sign_in, installation, login, login + "-provider-pw")
    http.close()
    async with open_stream(installation, f"/ws/tailf/{source}/?lines=1", cookie=cookie,
                           web=refreshing) as socket:
        client = Client(socket)
        await client.status("running")
        await asyncio.sleep(3 + 1.5)  # one refresh (OIDC_REFRESH_SECONDS) went by: still on
        with log.open("a") as out:
            out.write("after a refresh\n")
        await client.lines(["after a refresh"])
        change()
        changed = time.monotonic()
        error = await client.status("error", timeout=15)
        took = time.monotonic() - changed
        with pytest.raises(ConnectionClosed):
            while True:
                await client.next(10)
    return socket.close_code, error, took, cookie


async def test_a_group_removed_at_the_provider_ends_the_stream_at_the_next_refresh(
        installation, provider, refreshing, tmp_path):
    code, error, took, _ = await watch_until_the_provider_changes(
        installation, provider, refreshing, tmp_path, "sasha",
        lambda: provider.set_account("sasha", "sasha-provider-pw", groups=["dev"]))
    assert code == 4403 and error["code"] == 4403, error
    # OIDC_REFRESH_SECONDS (3) + a renewal round (STREAM_LEASE_SECONDS 3 / 3) + slack:
    assert took <= 3 + 1 + 2, took
    assert user_state(installation, "sasha")[0] == ["dev"]
    web_log = (installation.workdir / "web-refreshing.log").read_text()
    assert "sasha groups from Test SSO: added ['dev'], removed ['ops']" in web_log
    assert oidcprovider.CLIENT_SECRET not in web_log and "refresh_token" not in web_log


async def test_a_user_disabled_at_the_provider_is_signed_out_at_the_next_refresh(
        installation, provider, refreshing, tmp_path):
    code, error, took, cookie = await watch_until_the_provider_changes(
        installation, provider, refreshing, tmp_path, "tomas",
        lambda: provider.remove_account("tomas"))
    assert code == 4403 and error["code"] == 4403, error
    assert took <= 3 + 1 + 2, took
    response = httpx.get(installation.web.base_url + "/", headers={"Cookie": cookie})
    assert response.status_code == 302, "the session was signed out"
    web_log = (installation.workdir / "web-refreshing.log").read_text()
    assert "signed tomas out of one session: Test SSO refused the refresh (400 invalid_grant)" \
        in web_log
    assert oidcprovider.CLIENT_SECRET not in web_log


def test_a_long_polled_stream_also_ends_at_the_next_refresh(installation, provider, refreshing,
                                                            tmp_path):
    provider.set_account("uma", "uma-provider-pw", groups=["ops"])
    log = tmp_path / "ops.log"
    log.write_text("first\n")
    source = installation.add_log("oidc-refresh-poll", log, "--group", "ops")
    http, cookie = sign_in(installation, "uma", "uma-provider-pw")
    http.close()
    poller = PollClient(refreshing.base_url, cookie)
    with contextlib.closing(poller):
        assert poller.start(f"/streams/tailf/{source}/?lines=1").status_code == 201
        poller.status("running")
        provider.set_account("uma", "uma-provider-pw", groups=["dev"])
        changed = time.monotonic()
        error = poller.status("error", timeout=20)
        took = time.monotonic() - changed
    assert error["code"] == 4403 and poller.closed, (error, poller.closed)
    assert took <= 3 + 1 + 2, took
    assert user_state(installation, "uma")[0] == ["dev"]


def test_sign_out_also_ends_the_provider_session(installation, provider):
    provider.set_account("quinn", "quinn-provider-pw", groups=["dev"])
    client, _ = sign_in(installation, "quinn", "quinn-provider-pw")
    base = installation.web.base_url
    with contextlib.closing(client):
        client.get(base + "/")
        response = client.post(base + "/accounts/logout/",
                               data={"csrfmiddlewaretoken": client.cookies["csrftoken"]},
                               headers={"Referer": base + "/"})
        assert response.status_code == 302
        target = urlparse(response.headers["location"])
        query = parse_qs(target.query)
        assert f"{target.scheme}://{target.netloc}" == provider.issuer
        assert query["post_logout_redirect_uri"] == [base + "/accounts/login/"]
        assert query["id_token_hint"][0].count(".") == 2
        assert client.get(base + "/").status_code == 302, "signed out here"
        page = client.get(response.headers["location"])
        assert "Sign out of the test provider" in page.text
        # The provider's confirmation form, as a browser submits it:
        form = page.text.split('<form', 1)[1]
        action = form.split('action="', 1)[1].split('"', 1)[0]
        fields = dict(part.split('" value="', 1) for part in
                      [f.split('name="', 1)[1].split('"', 2)[0] + '" value="' +
                       f.split('value="', 1)[1].split('"', 1)[0]
                       for f in form.split("<input")[1:]])
        done = client.post(provider.issuer + action if action.startswith("/") else action,
                           data={**fields, "logout": "yes"})
        assert done.is_redirect and done.headers["location"].startswith(base + "/accounts/login/")
        # The provider's session is over: signing in again asks for the password.
        again = client.get(base + "/oidc/signin/", follow_redirects=True)
        assert "Sign in to the test provider" in again.text


def test_a_tampered_state_is_refused(installation, provider):
    provider.set_account("rita", "rita-provider-pw", groups=["ops"])
    with httpx.Client(timeout=30) as client:
        callback = to_callback(client, installation.web.base_url, "rita", "rita-provider-pw")
        query = parse_qs(urlparse(callback).query)
        tampered = callback.split("?")[0] + "?" + urlencode(
            {"code": query["code"][0], "state": query["state"][0][:-2] + "xx"})
        response = client.get(tampered)
    assert response.status_code == 400
    assert "could not be verified" in response.text and "Sign in with Test SSO" in response.text
    assert "sessionid" not in client.cookies or user_state(installation, "rita") is None
    assert user_state(installation, "rita") is None


def test_a_provider_that_is_down_gives_a_clear_page(installation):
    closed_port = embedded.free_port()
    web = installation.start_daphne("web-provider-down", OIDC_TIMEOUT="2",
                                    OIDC_ISSUER=f"http://127.0.0.1:{closed_port}")
    try:
        response = httpx.get(web.base_url + "/oidc/signin/", timeout=20)
        assert response.status_code == 503
        assert "Test SSO did not answer" in response.text
        assert "Username" in response.text, "the page still offers the password form"
    finally:
        installation.stop(web)
    log = (installation.workdir / "web-provider-down.log").read_text()
    assert "sign-in with Test SSO failed: the provider did not answer" in log
    assert f"127.0.0.1:{closed_port}/.well-known/openid-configuration" in log


def forged_sign_in(forging):
    """Sign in through the forging provider; return the callback's response."""
    with httpx.Client(timeout=30) as client:
        return client.get(forging.web.base_url + "/oidc/signin/", follow_redirects=True)


def test_the_forging_provider_signs_in_when_its_token_is_right(installation, forging):
    forging.mode = "good"
    response = forged_sign_in(forging)
    assert response.status_code == 200 and str(response.url).endswith("/"), response.text[:500]
    assert user_state(installation, "mallory")[0] == ["ops"]
    installation.shell("from django.contrib.auth.models import User\n"
                       "User.objects.filter(username='mallory').delete()\n")


@pytest.mark.parametrize("mode, reason", [
    ("wrong-key", "signature does not match the provider's keys"),
    ("other-audience", "is for another client"),
    ("other-issuer", "comes from another issuer"),
    ("expired", "has expired"),
    ("no-nonce", "Nonce verification failed"),
])
def test_a_forged_id_token_is_refused(installation, forging, mode, reason):
    forging.mode = mode
    log_path = installation.workdir / "web-forging.log"
    before = log_path.stat().st_size
    response = forged_sign_in(forging)
    assert response.status_code == 400, response.text[:500]
    assert "could not be verified" in response.text
    assert user_state(installation, "mallory") is None
    log = log_path.read_text()[before:]
    assert "sign-in with Forging SSO refused" in log and reason in log
    assert "Traceback" not in log


def test_a_token_endpoint_that_refuses_or_hangs_gives_a_clear_page(installation, forging):
    log_path = installation.workdir / "web-forging.log"
    forging.mode = "token-refused"
    response = forged_sign_in(forging)
    assert response.status_code == 400 and "Forging SSO refused the sign-in" in response.text
    forging.mode = "token-hang"
    before = log_path.stat().st_size
    started = time.monotonic()
    response = forged_sign_in(forging)
    took = time.monotonic() - started
    assert response.status_code == 503 and "Forging SSO did not answer" in response.text
    assert 2 <= took < 10, took  # OIDC_TIMEOUT=2
    assert "the provider did not answer" in log_path.read_text()[before:]
    assert user_state(installation, "mallory") is None


def test_failed_callbacks_never_lock_out_sign_in_with_the_provider(installation, forging):
    forging.mode = "good"
    installation.shell("from django.contrib.auth.models import User\n"
                       "User.objects.create_user('mallory', password='local-' + 'm' * 12)\n")
    try:
        codes = [forged_sign_in(forging).status_code for _ in range(7)]  # LOGIN_FAILURE_LIMIT 5
    finally:
        installation.shell("from django.contrib.auth.models import User\n"
                           "User.objects.filter(username='mallory').delete()\n")
    assert codes == [403] * 7, codes  # a local account of that name: refused, never 429
    response = forged_sign_in(forging)
    assert response.status_code == 200 and str(response.url).endswith("/")
    installation.shell("from django.contrib.auth.models import User\n"
                       "User.objects.filter(username='mallory').delete()\n")
