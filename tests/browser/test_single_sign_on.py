"""Someone signs in with the company's OpenID Connect provider (npm's oidc-provider, a real
node process) from Tailboard's login page, sees the sources of their groups, signs out (of
the provider too), and after the provider moves them to another group, sees that group's
sources at their next sign-in; a group removed at the provider ends an open stream at the
next session refresh, while they only watch it."""

import re

import pytest
from playwright.sync_api import expect

from tests import oidcprovider
from tests.browser.helpers import pane, start
from tests.harness import started_installation

if not oidcprovider.available():
    if __import__("os").environ.get("CI"):
        pytest.fail("node and tests/oidc/node_modules are needed: .ci/run runs npm ci there",
                    pytrace=False)
    pytest.skip("node or oidc-provider (npm ci in tests/oidc) is missing",
                allow_module_level=True)


@pytest.fixture(scope="module")
def sso(tmp_path_factory):
    """An installation signing in with a real provider, refreshing sessions with streams open
    every 3 s (OIDC_REFRESH_SECONDS); yields (harness, provider)."""
    with oidcprovider.NodeProvider(tmp_path_factory.mktemp("sso-provider")) as provider:
        with started_installation(tmp_path_factory.mktemp("sso-site"),
                                  **provider.env(OIDC_REFRESH_SECONDS="3")) as harness:
            provider.start([harness.web.base_url])
            yield harness, provider


def sign_in_with_provider(page, base, login, password):
    """From Tailboard's login page, through the provider's, back to the dashboard."""
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_role("link", name="Sign in with Test SSO").click()
    expect(page.locator("h1")).to_have_text("Sign in to the test provider")
    page.fill("#login", login)
    page.fill("#password", password)
    page.click("#submit")
    expect(page.locator("#panes[data-ready=true]")).to_be_attached(timeout=15000)
    expect(page).to_have_url(re.compile(re.escape(base) + r"/(#.*)?$"))


def source_names(page):
    """The names of the sources the first pane offers."""
    return sorted(page.locator(".pane").first.locator(".source option").all_text_contents())


def test_sign_in_with_the_provider_and_a_group_change_at_the_next_sign_in(sso, page, tmp_path):
    harness, provider = sso
    (tmp_path / "ops.log").write_text("ops line\n")
    (tmp_path / "dev.log").write_text("dev line\n")
    harness.add_log("sso-ops-log", tmp_path / "ops.log", "--group", "ops")
    harness.add_log("sso-dev-log", tmp_path / "dev.log", "--group", "dev")
    provider.set_account("sam", "sam-provider-pw", groups=["ops"])
    base = harness.web.base_url

    sign_in_with_provider(page, base, "sam", "sam-provider-pw")
    expect(page.locator(".pane").first.locator(".source option")).to_have_count(1)
    assert source_names(page) == ["sso-ops-log"]

    provider.set_account("sam", "sam-provider-pw", groups=["dev"])
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("h1")).to_have_text("Sign out of the test provider")
    page.get_by_role("button", name="Yes, sign me out").click()
    expect(page).to_have_url(base + "/accounts/login/")

    # The provider's session ended too: it asks for the password again.
    sign_in_with_provider(page, base, "sam", "sam-provider-pw")
    expect(page.locator(".pane").first.locator(".source option")).to_have_count(1)
    assert source_names(page) == ["sso-dev-log"]


def test_a_group_removed_at_the_provider_ends_the_open_stream_without_a_reload(sso, page,
                                                                             tmp_path):
    harness, provider = sso
    (tmp_path / "watched.log").write_text("watched line\n")
    source = harness.add_log("sso-watched-log", tmp_path / "watched.log", "--group", "ops")
    provider.set_account("vera", "vera-provider-pw", groups=["ops"])
    sign_in_with_provider(page, harness.web.base_url, "vera", "vera-provider-pw")
    first = pane(page)
    start(first, f"tailf:{source}", lines=1)
    page.evaluate("window.notReloaded = true")

    provider.set_account("vera", "vera-provider-pw", groups=[])
    # OIDC_REFRESH_SECONDS (3) + a renewal round (1 s) + slack:
    expect(first.locator(".status")).to_contain_text("you may no longer view sso-watched-log",
                                                     timeout=8000)
    assert page.evaluate("window.notReloaded") is True


def test_the_login_page_in_chinese_names_the_provider(sso, browser):
    harness, _ = sso
    context = browser.new_context(locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(harness.web.base_url + "/accounts/login/")
        expect(page.get_by_role("link", name="使用 Test SSO 登录")).to_be_visible()
        expect(page.locator(".login-or")).to_have_text("或使用用户名和密码")
    finally:
        context.close()
