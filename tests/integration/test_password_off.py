"""AUTH_PASSWORD=0 on the real stack: local passwords no longer sign anyone in (login form or
admin), sessions made with them end, and only the emergency superuser named in
AUTH_EMERGENCY_SUPERUSERS (made with `createsuperuser`) still signs in with a password."""

import httpx
import pytest

from tests.harness import started_installation
from webapp import embedded

pytestmark = pytest.mark.sqlite_only


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    """Passwords on for the fixture's own admin; `password_off` is a Daphne with them off."""
    with started_installation(tmp_path_factory.mktemp("password-off")) as harness:
        harness.manage("createsuperuser", "--noinput", "--username", "breakglass",
                       "--email", "ops@tailboard.test")
        harness.shell("from django.contrib.auth.models import User\n"
                      "u = User.objects.get(username='breakglass')\n"
                      "u.set_password('breakglass-' + 'e' * 12)\nu.save()\n")
        harness.local_password = harness.create_user("lou", groups=["ops"])
        issuer = f"http://127.0.0.1:{embedded.free_port()}"  # never reached by these tests
        harness.password_off = harness.start_daphne(
            "web-password-off", AUTH_PASSWORD="0", AUTH_EMERGENCY_SUPERUSERS="breakglass",
            OIDC_ISSUER=issuer, OIDC_CLIENT_ID="tailboard", OIDC_CLIENT_SECRET="s" * 20,
            OIDC_PROVIDER_NAME="Company SSO")
        yield harness


def sign_in(base, username, password, path="/accounts/login/"):
    """Post a login form; return (response, signed in?)."""
    with httpx.Client(base_url=base, timeout=20) as client:
        client.get("/accounts/login/")  # the CSRF cookie (the admin's login page redirects)
        response = client.post(path, data={
            "username": username, "password": password, "next": "/",
            "csrfmiddlewaretoken": client.cookies["csrftoken"]},
            headers={"Referer": base + path})
        return response, "sessionid" in client.cookies


def test_the_login_page_offers_only_the_provider(installation):
    page = httpx.get(installation.password_off.base_url + "/accounts/login/").text
    assert "Sign in with Company SSO" in page
    assert 'name="password"' not in page and "or with a username and password" not in page


def test_a_local_password_no_longer_signs_in(installation):
    base = installation.password_off.base_url
    assert sign_in(base, "lou", installation.local_password)[1] is False
    assert sign_in(base, "admin", installation.admin_password)[1] is False
    assert sign_in(base, "admin", installation.admin_password, "/admin/login/")[1] is False
    # The same passwords still work where AUTH_PASSWORD is 1 (the fixture's own Daphne).
    assert sign_in(installation.web.base_url, "lou", installation.local_password)[1] is True


def test_a_session_made_with_a_local_password_is_signed_out(installation):
    response = httpx.get(installation.password_off.base_url + "/",
                         headers={"Cookie": installation.admin_cookie})
    assert response.status_code == 302 and "/accounts/login/" in response.headers["location"]


def test_the_emergency_superuser_still_signs_in(installation):
    base = installation.password_off.base_url
    page = httpx.get(base + "/accounts/login/?password=1").text
    assert 'name="password"' in page
    response, signed_in = sign_in(base, "breakglass", "breakglass-" + "e" * 12)
    assert signed_in and response.status_code == 302
    log = (installation.workdir / "web-password-off.log").read_text()
    assert "emergency sign-in with a local password by superuser breakglass" in log
    assert "breakglass-" + "e" * 12 not in log
