"""Alerts: a desktop notification and a title count when a highlight matches out of sight."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import append, login, pane, start, watch_errors

SPY = """(() => {
  const Real = window.Notification;
  window.__notes = [];
  class Spy {
    constructor(title, options) { window.__notes.push({ title, body: options && options.body }); }
    static get permission() { return Real.permission; }
    static requestPermission() { window.__asked = true; return Real.requestPermission(); }
  }
  window.Notification = Spy;
})();"""


@pytest.fixture(scope="module")
def watched(system, tmp_path_factory):
    """One log source and a viewer."""
    path = tmp_path_factory.mktemp("alerts") / "alerts.log"
    path.write_text("")
    source = system.add_log("alerts", path, "--group", "watchers")
    password = system.create_user("watcher", groups=["watchers"])
    return {"path": path, "src": f"tailf:{source}", "password": password}


def test_highlight_in_a_hidden_pane_notifies_once_per_interval_and_counts_in_the_title(
        system, watched, browser):
    context = browser.new_context()
    context.grant_permissions(["notifications"], origin=system.web.base_url)
    context.add_init_script(SPY)
    page = context.new_page()
    errors = watch_errors(page)
    try:
        login(page, system.web.base_url, "watcher", watched["password"])
        first = pane(page)
        start(first, watched["src"], lines=0)
        first.locator(".highlight").fill("panic")
        first.locator(".alert-toggle").click()
        expect(first.locator(".alert-toggle")).to_have_attribute("aria-pressed", "true")
        assert page.evaluate("window.__asked") is None  # already granted: nothing to ask
        assert "alert%3D1" in page.url

        # A match in a pane in view is seen: no notification, no count.
        append(watched["path"], "panic: in view")
        expect(first.locator("mark.hl-0")).to_have_count(1)
        page.wait_for_timeout(300)
        assert page.evaluate("window.__notes") == []
        assert not page.title().startswith("(")

        # Scrolled away (paused): a match notifies, the title counts; more within 10 s only count.
        append(watched["path"], *[f"filler {i}" for i in range(200)])
        expect(first.locator(".output .line").last).to_have_text("filler 199")
        first.locator(".output").hover()
        page.mouse.wheel(0, -2000)
        expect(first.locator(".follow")).to_have_attribute("aria-pressed", "false")
        append(watched["path"], "kernel panic: out of sight")
        page.wait_for_function("window.__notes.length === 1")
        note = page.evaluate("window.__notes[0]")
        assert note["title"] == "1 highlighted in alerts"
        assert note["body"] == "kernel panic: out of sight"
        expect(page).to_have_title(re.compile(r"^\(1\) "))
        append(watched["path"], "panic again", "and panic thrice")
        expect(page).to_have_title(re.compile(r"^\(3\) "))
        page.wait_for_timeout(500)
        assert page.evaluate("window.__notes.length") == 1
        # A line that does not match changes nothing.
        append(watched["path"], "all quiet")
        page.wait_for_timeout(300)
        expect(page).to_have_title(re.compile(r"^\(3\) "))

        # Following again is looking at it: the count goes.
        first.locator(".follow").click()
        expect(page).to_have_title(re.compile(r"^Dashboard"))
        assert not errors, errors
    finally:
        context.close()


def test_opting_in_asks_for_the_permission_and_says_when_it_is_blocked(system, watched, page):
    login(page, system.web.base_url, "watcher", watched["password"])
    result = page.evaluate("""async () => {
        const { badgedTitle, NOTIFY_INTERVAL_MS } = await import('/static/tailboard/alerts.js');
        return [badgedTitle('Dashboard · Tailboard', 3), badgedTitle('(3) Dashboard', 0),
                badgedTitle('(3) Dashboard', 12), badgedTitle('X', 5000), NOTIFY_INTERVAL_MS];
    }""")
    assert result == ["(3) Dashboard · Tailboard", "Dashboard", "(12) Dashboard", "(999+) X", 10000]
    first = pane(page)
    first.locator(".picker-input").fill("alerts")
    first.locator(".picker-input").press("Enter")
    page.evaluate("""() => { window.__asked = 0;
        Object.defineProperty(Notification, 'permission', { get: () => 'default', configurable: true });
        Notification.requestPermission = async () => { window.__asked += 1; return 'denied'; }; }""")
    first.locator(".alert-toggle").click()
    expect(first.locator(".pane-problem")).to_contain_text("notifications are blocked")
    assert page.evaluate("window.__asked") == 1
