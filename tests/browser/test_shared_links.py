"""A shared dashboard link may start plain tails; a search of the log history and desktop
notifications wait for a click of whoever opens it, in Debian's Chromium."""

import re
import time
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import RUNNING, login, pane


def link(base, source, **options):
    """A dashboard link with one pane on this log source, as a user would share it."""
    spec = urlencode({"src": f"tailf:{source}", "lines": "0", **options})
    return f"{base}/#{urlencode({'p': spec})}"


@pytest.fixture(scope="module")
def shared(system, tmp_path_factory):
    """A log with two needles and a viewer."""
    path = tmp_path_factory.mktemp("shared") / "app.log"
    path.write_text("one needle\ntwo\nthree needle\n")
    source = system.add_log("shared", path, "--group", "sharers")
    password = system.create_user("sharer", groups=["sharers"])
    return {"path": path, "id": source, "password": password}


def sockets_of(page):
    """The WebSocket URLs the page opens from now on."""
    opened = []
    page.on("websocket", lambda socket: opened.append(socket.url))
    return opened


def test_a_link_with_a_search_waits_for_a_click(system, shared, page):
    login(page, system.web.base_url, "sharer", shared["password"])
    opened = sockets_of(page)
    page.goto(link(system.web.base_url, shared["id"], search="needle", run="1"))
    first = pane(page)
    hint = first.locator(".link-hint[data-offer=search]")
    expect(hint).to_contain_text("search of the log history")
    expect(first.locator(".kind-options[data-kind=tailf] input[name=search]")).to_have_value(
        "needle")
    time.sleep(1.5)  # the scenario: 1.5 s in which a pane that ran by itself would connect
    assert opened == []
    expect(first.locator(".status")).not_to_have_text(re.compile("^(Running|Searching)"))
    hint.locator("button").click()
    expect(first.locator(".search-bar")).to_have_attribute("data-done", "true", timeout=15000)
    expect(first.locator(".search-summary")).to_contain_text("2 matches")
    expect(hint).to_have_count(0)
    assert len(opened) == 1 and "search=needle" in opened[0]


def test_a_link_with_a_plain_tail_or_a_view_around_starts_it(system, shared, page):
    login(page, system.web.base_url, "sharer", shared["password"])
    page.goto(link(system.web.base_url, shared["id"], run="1"))
    expect(pane(page).locator(".status")).to_have_text(RUNNING, timeout=15000)
    expect(pane(page).locator(".link-hint")).to_have_count(0)
    page.goto(link(system.web.base_url, shared["id"], around="3", file="app.log",
                   search="", run="1"))
    page.reload()
    expect(pane(page).locator(".numbered.target")).to_have_text(re.compile("three needle"),
                                                                 timeout=15000)


def test_a_link_with_alerts_does_not_turn_notifications_on(system, shared, browser):
    context = browser.new_context()
    context.grant_permissions(["notifications"], origin=system.web.base_url)
    page = context.new_page()
    try:
        login(page, system.web.base_url, "sharer", shared["password"])
        page.goto(link(system.web.base_url, shared["id"], hl="needle", alert="1", run="1"))
        first = pane(page)
        expect(first.locator(".status")).to_have_text(RUNNING, timeout=15000)  # a plain tail
        toggle = first.locator(".alert-toggle")
        expect(toggle).to_have_attribute("aria-pressed", "false")
        assert page.evaluate("window.tailboard.panes[0].alerts.enabled") is False
        hint = first.locator(".link-hint[data-offer=alerts]")
        expect(hint).to_contain_text("desktop notifications")
        assert "alert%3D1" not in page.url
        hint.locator("button").click()
        expect(toggle).to_have_attribute("aria-pressed", "true")
        expect(hint).to_have_count(0)
        assert "alert%3D1" in page.url
    finally:
        context.close()
