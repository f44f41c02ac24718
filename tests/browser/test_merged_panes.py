"""A pane that follows several sources: two logs and a feed merged, tagged, toggled, linked."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import RUNNING, append, login, pane

FEED = ('<?xml version="1.0"?><rss version="2.0"><channel><title>Deploys</title>'
        "<item><guid>d1</guid><title>Deploy #1 rolled out</title>"
        "<link>https://example.com/d/1</link><pubDate>Tue, 01 Oct 2024 12:00:00 GMT</pubDate>"
        "</item></channel></rss>")


@pytest.fixture(scope="module")
def sources(system, tmp_path_factory):
    """Two log sources and a viewer allowed to see both."""
    folder = tmp_path_factory.mktemp("merged")
    logs = [folder / "api.log", folder / "worker.log"]
    for path in logs:
        path.write_text("")
    ids = [system.add_log(path.stem, path, "--group", "mergers") for path in logs]
    password = system.create_user("merger", groups=["mergers"])
    return {"logs": logs, "ids": ids, "password": password}


def test_two_logs_and_a_feed_merge_into_one_pane_with_tags_toggles_and_a_link(
        system, sources, page, feed_server):
    feed_server.raw = FEED.encode()
    system.add_feed("deploys", feed_server.url, "--interval", "5", "--group", "mergers")
    api, worker = sources["logs"]
    api_src, worker_src = (f"tailf:{i}" for i in sources["ids"])
    login(page, system.web.base_url, "merger", sources["password"])
    first = pane(page)
    # A fresh page chooses no source for the user: the picker is open and has the focus.
    picker = first.locator(".picker-input")
    expect(picker).to_be_focused()
    expect(picker).to_have_attribute("aria-expanded", "true")
    expect(first.locator(".start")).to_be_disabled()
    assert first.locator(".source").evaluate("el => el.selectedIndex") == -1

    for name in ("api", "worker", "deploys"):
        picker.fill(name)
        picker.press("Enter")
    expect(first.locator(".source-row")).to_have_count(3)
    expect(first.locator(".source")).to_have_value(api_src)
    first.locator(".lines").fill("0")
    first.locator(".start").click()
    statuses = first.locator(".source-row .status")
    expect(statuses).to_have_text([RUNNING, RUNNING, RUNNING], timeout=15000)

    append(api, "api one")
    expect(first.locator(".output .line")).to_have_text([re.compile("api one$")])
    append(worker, "worker one")
    append(api, "api two")
    lines = first.locator(".output .line")
    expect(lines).to_have_count(3)
    for text, tag in (("api one", "api"), ("worker one", "worker"), ("api two", "api")):
        expect(lines.filter(has_text=text).locator(".src-tag")).to_have_text(tag)
    entry = first.locator(".entry")
    expect(entry).to_have_count(1, timeout=15000)
    expect(entry.locator(".src-tag")).to_have_text("deploys")

    # Each source has a stable colour: its tag and its toggle share it.
    api_tag = lines.filter(has_text="api one").locator(".src-tag")
    toggles = first.locator(".source-toggle")
    expect(toggles).to_have_text(["api", "worker", "deploys"])
    colour = api_tag.evaluate("el => getComputedStyle(el).backgroundColor")
    assert toggles.nth(0).evaluate("el => getComputedStyle(el).borderLeftColor") == colour
    assert lines.filter(has_text="worker one").locator(".src-tag").evaluate(
        "el => getComputedStyle(el).backgroundColor") != colour

    # The toggle hides one source's lines (and shows them again).
    toggles.nth(0).click()
    expect(toggles.nth(0)).to_have_attribute("aria-pressed", "false")
    expect(lines).to_have_count(1)
    expect(lines).to_contain_text(["worker one"])
    append(api, "api three")
    append(worker, "worker two")
    expect(lines).to_have_count(2)

    # The link records the three sources and the hidden one; it reopens the same merged pane.
    link = page.url
    assert link.count("src%3D") == 3 and "hide%3D" in link
    copy = page.context.new_page()
    copy.goto(link)
    reopened = pane(copy)
    expect(reopened.locator(".source-row .status")).to_have_text([RUNNING] * 3, timeout=15000)
    expect(reopened.locator(".source-toggle")).to_have_text(["api", "worker", "deploys"])
    expect(reopened.locator(".source-toggle").nth(0)).to_have_attribute("aria-pressed", "false")
    copy.close()

    toggles.nth(0).click()
    expect(lines).to_have_count(5)

    # A warning (amber) on one source shows on its own row only.
    page.evaluate("""() => window.tailboard.panes[0].members[1].handlers().status(
        {type: 'status', state: 'running', warning: 'worker.log does not exist'})""")
    expect(first.locator(".source-row").nth(1).locator(".status")).to_have_attribute(
        "data-state", "warning")
    expect(first.locator(".source-row").nth(0).locator(".status")).to_have_attribute(
        "data-state", "running")

    # Removing a source stops its stream; the others go on.
    first.locator(".source-remove").nth(1).click()
    expect(first.locator(".source-row")).to_have_count(2)
    append(worker, "worker after removal")
    append(api, "api after removal")
    expect(lines.last).to_contain_text("api after removal")
    expect(first.locator(".output")).not_to_contain_text("worker after removal")
    first.locator(".stop").click()
    expect(statuses).to_have_text([re.compile("^Stopped")] * 2, timeout=5000)


def test_old_one_source_links_still_open_one_pane(system, sources, page):
    api_src = f"tailf:{sources['ids'][0]}"
    login(page, system.web.base_url, "merger", sources["password"])
    page.goto(f"{system.web.base_url}/#p=src%3D{api_src.replace(':', '%253A')}%26lines%3D0%26run%3D1")
    first = pane(page)
    expect(first.locator(".status")).to_have_text(RUNNING, timeout=15000)
    expect(first.locator(".source-toggle")).to_be_hidden()
    append(sources["logs"][0], "single")
    expect(first.locator(".output .line").last).to_have_text("single")
    assert first.locator(".src-tag").count() == 0
