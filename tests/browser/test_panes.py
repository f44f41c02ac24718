"""Panes side by side, reading features, feeds, refusals and languages, in Debian's Chromium."""

import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import RUNNING, append, login, pane, start, watch_errors


@pytest.fixture(scope="module")
def viewer(system, tmp_path_factory):
    """Two log sources and a viewer allowed to see both."""
    folder = tmp_path_factory.mktemp("logs")
    logs = [folder / "alpha.log", folder / "beta.log"]
    for path in logs:
        path.write_text("")
    ids = [system.add_log(path.stem, path, "--group", "viewers") for path in logs]
    password = system.create_user("viewer", groups=["viewers"])
    return {"logs": logs, "ids": ids, "password": password}


def test_two_panes_stream_at_once_and_stop_leaves_the_other_running(system, viewer, page):
    alpha, beta = viewer["logs"]
    login(page, system.web.base_url, "viewer", viewer["password"])
    start(pane(page, 0), f"tailf:{viewer['ids'][0]}", lines=0)
    page.click("#add-pane")
    expect(page.locator(".pane")).to_have_count(2)
    second = pane(page, 1)
    assert second.locator(".source").evaluate("el => el.selectedIndex") == -1  # starts empty
    start(second, f"tailf:{viewer['ids'][1]}", lines=0)

    append(alpha, "alpha one")
    append(beta, "beta one")
    expect(pane(page, 0).locator(".line")).to_have_text(["alpha one"])
    expect(second.locator(".line")).to_have_text(["beta one"])

    # The page URL records both panes: a copy of the link reopens them, running.
    link = page.url
    assert link.count("p=") == 2 and "run%3D1" in link
    copy = page.context.new_page()
    copy.goto(link)
    expect(copy.locator(".pane")).to_have_count(2)
    expect(copy.locator(".pane .status")).to_have_text([RUNNING, RUNNING], timeout=15000)
    copy.close()

    pane(page, 0).locator(".stop").click()
    expect(pane(page, 0).locator(".status")).to_have_text(re.compile("^Stopped"), timeout=5000)
    append(alpha, "alpha two")
    append(beta, "beta two")
    expect(second.locator(".line")).to_have_text(["beta one", "beta two"])
    expect(second.locator(".status")).to_have_text(RUNNING)
    page.wait_for_timeout(300)
    expect(pane(page, 0).locator(".line")).to_have_text(["alpha one"])
    assert "run%3D1" not in page.url.split("&p=")[0]


def test_filter_and_highlight(system, viewer, page):
    alpha = viewer["logs"][0]
    login(page, system.web.base_url, "viewer", viewer["password"])
    first = pane(page)
    start(first, f"tailf:{viewer['ids'][0]}", lines=0)
    append(alpha, "2024-05-01T10:00:00Z ERROR disk full on db-1", "INFO all good",
           "WARN disk at 91% on db-2", "DEBUG needle in a haystack")
    lines = first.locator(".output .line")
    expect(lines).to_have_count(4)
    with page.expect_download() as download:
        first.locator(".download").click()
    assert download.value.suggested_filename.startswith("alpha-")
    with open(download.value.path()) as handle:
        assert handle.read().splitlines() == [
            "2024-05-01T10:00:00Z ERROR disk full on db-1", "INFO all good",
            "WARN disk at 91% on db-2", "DEBUG needle in a haystack"]
    expect(first.locator(".lvl-error")).to_have_count(1)
    expect(first.locator(".lvl-warn")).to_have_count(1)
    expect(first.locator(".lvl-info")).to_have_count(1)
    expect(first.locator(".lvl-debug")).to_have_count(1)

    first.locator(".output").click()
    page.keyboard.press("/")
    filter_box = first.locator(".filter")
    expect(filter_box).to_be_focused()
    page.keyboard.type("disk")
    expect(lines).to_have_text(["2024-05-01T10:00:00Z ERROR disk full on db-1",
                                "WARN disk at 91% on db-2"])
    filter_box.fill("/db-[2-9]$/")
    expect(lines).to_have_text(["WARN disk at 91% on db-2"])
    filter_box.fill("/db-(/")
    expect(filter_box).to_have_attribute("aria-invalid", "true")
    expect(first.locator(".pane-problem")).to_contain_text("not a valid regular expression")
    expect(lines).to_have_count(1)
    filter_box.fill("")
    expect(first.locator(".pane-problem")).to_be_hidden()
    expect(lines).to_have_count(4)

    first.locator(".highlight").fill("disk, /db-\\d/")
    expect(first.locator("mark.hl-0")).to_have_text(["disk", "disk"])
    expect(first.locator("mark.hl-1")).to_have_text(["db-1", "db-2"])
    append(alpha, "later: disk ok")
    expect(first.locator("mark.hl-0")).to_have_count(3)
    assert "filter" not in page.url and "hl%3D" in page.url

    # `dropped` and notices are shown inline, apart from log lines, whatever the filter.
    first.locator(".filter").fill("nothing matches this")
    page.evaluate("() => { const h = window.tailboard.panes[0].handlers();"
                  " h.dropped(1234); h.notice('file truncated'); }")
    expect(first.locator(".notice-dropped")).to_have_text("— 1,234 lines dropped: this viewer fell behind")
    expect(first.locator(".notice-notice")).to_have_text("— file truncated")
    expect(lines).to_have_count(0)
    first.locator(".filter").fill("")

    first.locator(".wrap").click()
    expect(first.locator(".output")).to_have_class(re.compile(r"\bnowrap\b"))
    first.locator(".clear").click()
    expect(lines).to_have_count(0)


def test_follow_pauses_on_scroll_up_and_resumes(system, viewer, page):
    beta = viewer["logs"][1]
    login(page, system.web.base_url, "viewer", viewer["password"])
    first = pane(page)
    start(first, f"tailf:{viewer['ids'][1]}", lines=0)
    append(beta, *[f"row {i}" for i in range(300)])
    output = first.locator(".output")
    expect(output.locator(".line").last).to_have_text("row 299")
    follow = first.locator(".follow")
    expect(follow).to_have_attribute("aria-pressed", "true")

    output.hover()
    page.mouse.wheel(0, -600)
    expect(follow).to_have_attribute("aria-pressed", "false")
    append(beta, *[f"new {i}" for i in range(5)])
    new_lines = first.locator(".new-lines")
    expect(new_lines).to_have_text("5 new lines ↓")
    expect(output.locator(".line").last).to_have_text("row 299")

    output.focus()
    page.keyboard.press("End")
    expect(follow).to_have_attribute("aria-pressed", "true")
    expect(new_lines).to_be_hidden()
    expect(output.locator(".line").last).to_have_text("new 4")
    expect(output.locator(".line")).to_have_count(305)
    at_bottom = output.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight < 30")
    assert at_bottom

    # Space toggles follow when focus is not in a text box; the button resumes too.
    page.keyboard.press(" ")
    expect(follow).to_have_attribute("aria-pressed", "false")
    append(beta, "while paused")
    expect(new_lines).to_have_text("1 new lines ↓")
    new_lines.click()
    expect(output.locator(".line").last).to_have_text("while paused")
    expect(follow).to_have_attribute("aria-pressed", "true")


def test_feed_pane_shows_entries_as_text_with_safe_links(system, page, feed_server):
    feed_server.raw = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Deploys</title>'
        "<item><guid>d1</guid><title>Deploy &lt;b&gt;#1&lt;/b&gt;</title>"
        "<link>https://example.com/d/1</link><pubDate>Tue, 01 Oct 2024 12:00:00 GMT</pubDate>"
        "<description>&lt;p&gt;Rolled &lt;script&gt;x()&lt;/script&gt;out&lt;/p&gt;</description>"
        "</item><item><guid>d2</guid><title>Sneaky</title><link>javascript:alert(1)</link>"
        "<pubDate>Tue, 01 Oct 2024 13:00:00 GMT</pubDate></item></channel></rss>").encode()
    feed = system.add_feed("deploys", feed_server.url, "--interval", "5")
    page.context.clear_cookies()
    login(page, system.web.base_url, "admin", system.admin_password)
    first = pane(page)
    start(first, f"feeds:{feed}")
    entries = first.locator(".entry")
    expect(entries).to_have_count(2)
    expect(entries.locator(".entry-title")).to_have_text(["Deploy #1", "Sneaky"])
    expect(entries.nth(0).locator("a.entry-title")).to_have_attribute(
        "href", "https://example.com/d/1")
    assert entries.nth(1).locator("a").count() == 0
    expect(entries.nth(0).locator(".entry-summary")).to_have_text("Rolled out")
    expect(entries.nth(0).locator(".entry-source")).to_have_text("Deploys")
    expect(entries.nth(0).locator("time")).to_have_attribute("datetime", "2024-10-01T12:00:00Z")
    assert entries.locator("script, b, p script").count() == 0
    expect(first.locator(".held")).to_have_text("2 entries")

    # An entry the feed changed is marked "updated"; the time is shown in the viewer's zone.
    marked = page.evaluate("""async () => {
        const { entryNode, localTime } = await import('/static/tailboard/entries.js');
        const node = entryNode({ title: 'T', link: 'ftp://x', published: '2024-10-01T12:00:00Z',
                                 summary: 'S', source: 'src', updated: true },
                               (el, text) => { el.textContent = text; });
        return [node.querySelector('.entry-updated')?.textContent, node.querySelector('a'),
                localTime('2024-10-01T12:00:00Z')];
    }""")
    assert marked[0] == "updated" and marked[1] is None and marked[2]


def test_refused_stream_shows_the_reason_and_does_not_reconnect(system, viewer, page):
    login(page, system.web.base_url, "viewer", viewer["password"])
    first = pane(page)
    first.locator(".source").select_option(f"tailf:{viewer['ids'][0]}")
    first.locator(".grep").fill("(unclosed")
    first.locator(".start").click()
    status = first.locator(".status")
    expect(status).to_have_attribute("data-state", "error", timeout=10000)
    expect(status).to_contain_text("Refused")
    expect(status).to_contain_text("not a valid regular expression")
    page.wait_for_timeout(1500)
    expect(status).to_have_attribute("data-state", "error")
    expect(first.locator(".start")).to_be_enabled()


def test_backoff_is_exponential_with_jitter_between_1_and_30_seconds(system, page):
    login(page, system.web.base_url, "admin", system.admin_password)
    delays = page.evaluate("""async () => {
        const { backoffSeconds } = await import('/static/tailboard/stream.js');
        const out = [];
        for (let attempt = 0; attempt < 8; attempt += 1) {
            out.push([backoffSeconds(attempt, () => 0), backoffSeconds(attempt, () => 0.999)]);
        }
        return out;
    }""")
    lows = [low for low, _ in delays]
    highs = [high for _, high in delays]
    assert all(1 <= low <= high <= 30 for low, high in delays)
    assert highs[0] < 1.01 and 15 <= lows[-1] and highs[-1] <= 30
    assert lows == sorted(lows) and highs[3] > highs[1] > highs[0]


def test_resume_backlog_matching_rules_and_pane_links(system, page):
    login(page, system.web.base_url, "admin", system.admin_password)
    result = page.evaluate("""async () => {
        const { unseenLines } = await import('/static/tailboard/logview.js');
        const { splitRules } = await import('/static/tailboard/matchers.js');
        const { encodePanes, decodePanes } = await import('/static/tailboard/app.js');
        const specs = [{ src: 'tailf:3', lines: '5', grep: 'a&b=c', entries: '10', filter: '/x y/',
                         hl: 'p, q', wrap: false, run: true, cap: 500 },
                       { src: 'feeds:1', lines: '50', grep: '', entries: '7', filter: '', hl: '',
                         wrap: true, run: false, cap: 10000 }];
        return {
            overlap: unseenLines(['a', 'b', 'c'], ['b', 'c', 'd', 'e']),
            within: unseenLines(['c', 'd'], ['a', 'b', 'c', 'd', 'e']),
            gap: unseenLines(['x'], ['a', 'b']),
            nothingHeld: unseenLines([], ['a']),
            rules: splitRules('disk, /a,b/i , two words,,/x|y/'),
            links: decodePanes('#' + encodePanes(specs)),
        };
    }""")
    assert result["overlap"] == {"lines": ["d", "e"], "gap": False}
    assert result["within"] == {"lines": ["e"], "gap": False}
    assert result["gap"] == {"lines": ["a", "b"], "gap": True}
    assert result["nothingHeld"] == {"lines": ["a"], "gap": False}
    assert result["rules"] == ["disk", "/a,b/i", "two words", "/x|y/"]
    first, second = result["links"]
    assert first.items() >= {"src": "tailf:3", "lines": "5", "grep": "a&b=c", "entries": "10",
                             "filter": "/x y/", "hl": "p, q", "wrap": False, "run": True,
                             "cap": 500}.items()
    assert {first[key] for key in ("search", "rotated", "follow", "around", "file")} == {""}
    assert second["src"] == "feeds:1" and second["entries"] == "7" and second["run"] is False


def test_page_is_in_simplified_chinese_for_a_chinese_browser(system, viewer, browser):
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    errors = watch_errors(page)
    try:
        page.goto(system.web.base_url + "/accounts/login/")
        expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
        expect(page.locator("h1")).to_have_text("登录")
        expect(page.locator("label[for=id_username]")).to_have_text("用户名")
        page.fill("#id_username", "admin")
        page.fill("#id_password", system.admin_password)
        page.click("button[type=submit]")
        first = pane(page)
        expect(first.locator(".start")).to_have_text("开始")
        expect(first.locator(".field-source .cap")).to_have_text("来源")
        expect(first.locator(".status")).to_have_text("空闲")
        expect(page.locator("#add-pane")).to_have_text("添加窗格")
        strings = json.loads(page.evaluate("""() => JSON.stringify([...document.querySelector(
            '#tb-strings').content.querySelectorAll('data')].map(d => d.textContent))"""))
        assert "正在运行于 {host}" in strings
        assert not errors, errors
    finally:
        context.close()


def test_every_control_is_labelled_and_status_changes_are_announced(system, viewer, page):
    login(page, system.web.base_url, "admin", system.admin_password)
    page.click("#add-pane")
    expect(page.locator(".pane")).to_have_count(2)
    unlabelled = page.evaluate("""() => [...document.querySelectorAll(
        'input:not([type=hidden]), select, button, canvas, .output')]
        .filter((el) => !el.closest('[hidden]'))
        .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                        && !el.textContent.trim())
        .map((el) => el.outerHTML.slice(0, 100))""")
    assert unlabelled == []
    for status in page.locator(".pane .status").all():
        expect(status).to_have_attribute("aria-live", "polite")
        expect(status).to_have_attribute("role", "status")
    expect(page.locator(".pane").nth(1)).to_have_attribute("aria-label", re.compile(r"^Pane 2: "))


def test_theme_toggle_is_remembered(system, page):
    login(page, system.web.base_url, "admin", system.admin_password)
    root = page.locator("html")
    expect(root).to_have_attribute("data-theme", re.compile("^(dark|light)$"))
    before = root.get_attribute("data-theme")
    after = "dark" if before == "light" else "light"
    page.click("#theme-toggle")
    expect(root).to_have_attribute("data-theme", after)
    page.reload()
    expect(root).to_have_attribute("data-theme", after)
    page.goto(system.web.base_url + "/accounts/login/")
    expect(root).to_have_attribute("data-theme", after)
