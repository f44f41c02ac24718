"""A degraded stream's warning badge, and the per-file tags and toggles of a glob source, in
Debian's Chromium."""

import os
import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import RUNNING, append, login, pane, start

HOSTILE = "<img src=x onerror=alert(1)>.log"


def warn_colour(page):
    """The theme's amber (--warn) as the browser computes it."""
    return page.evaluate("""() => {
        const probe = document.createElement('span');
        probe.style.color = 'var(--warn)';
        document.body.appendChild(probe);
        const colour = getComputedStyle(probe).color;
        probe.remove();
        return colour;
    }""")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder under the log roots (the system's temp dir)."""
    return tmp_path_factory.mktemp("warnlogs")


def test_missing_file_turns_the_badge_amber_with_the_reason_until_it_appears(
        system, folder, page):
    missing = folder / "later.log"
    source = system.add_log("later", missing)
    login(page, system.web.base_url, "admin", system.admin_password)
    first = pane(page)
    first.locator(".source").select_option(f"tailf:{source}")
    first.locator(".start").click()
    status = first.locator(".status")
    expect(status).to_have_attribute("data-state", "warning", timeout=15000)
    badge = first.locator(".badge")
    expect(badge).to_have_text(re.compile(r"^Warning on w\d@tailboard-test"))
    expect(first.locator(".status .message")).to_have_text(f"{missing} does not exist")
    expect(badge).to_have_attribute("title", f"{missing} does not exist")
    assert badge.evaluate("el => getComputedStyle(el).color") == warn_colour(page)
    # The reason stays in the badge's status line, whatever notices scroll by.
    page.evaluate("() => { const h = window.tailboard.panes[0].handlers();"
                  " for (let i = 0; i < 50; i++) h.notice('noise ' + i); }")
    expect(first.locator(".status .message")).to_have_text(f"{missing} does not exist")

    append(missing, "first line")
    expect(status).to_have_text(RUNNING, timeout=15000)
    expect(status).to_have_attribute("data-state", "running")
    expect(badge).not_to_have_attribute("title", re.compile("."))
    expect(first.locator(".output .line")).to_have_text(["first line"])
    first.locator(".stop").click()
    expect(status).to_have_text(re.compile("^Stopped"), timeout=5000)


def test_symlink_out_of_the_log_roots_warns_and_is_not_read(system, folder, page):
    link = folder / "sneaky.log"
    source = system.add_log("sneaky", link)  # refused when it already points out
    os.symlink("/etc/hostname", link)
    login(page, system.web.base_url, "admin", system.admin_password)
    first = pane(page)
    first.locator(".source").select_option(f"tailf:{source}")
    first.locator(".lines").fill("10")
    first.locator(".start").click()
    expect(first.locator(".status")).to_have_attribute("data-state", "warning", timeout=15000)
    expect(first.locator(".status .message")).to_contain_text("outside")
    page.wait_for_timeout(500)
    expect(first.locator(".output .line")).to_have_count(0)


def test_glob_source_tags_lines_with_their_file_and_the_toggle_hides_one_file(
        system, tmp_path, page):
    logs = tmp_path / "multi"
    logs.mkdir()
    one, two = logs / "one.log", logs / HOSTILE
    one.write_text("")
    two.write_text("")
    source = system.add_log("multi", f"{logs}/*.log")
    login(page, system.web.base_url, "admin", system.admin_password)
    first = pane(page)
    start(first, f"tailf:{source}", lines=0)
    append(one, "from one 1")
    expect(first.locator(".output .line")).to_have_count(1)
    append(two, "from two 1")
    expect(first.locator(".output .line")).to_have_count(2)
    append(one, "from one 2")
    lines = first.locator(".output .line")
    expect(lines).to_have_count(3)
    expect(first.locator(".output .line .file-tag")).to_have_text(["one.log", HOSTILE, "one.log"])
    expect(first.locator(".output .line .file-tag").first).to_have_attribute("title", str(one))
    # The hostile name is text, never markup.
    assert first.locator(".output img").count() == 0
    # A stable colour per file: the same class on each of its lines and on its toggle.
    tags = first.locator(".output .line .file-tag")
    classes = [tags.nth(i).get_attribute("class") for i in range(3)]
    assert classes[0] == classes[2]

    toggles = first.locator(".files-bar .file-toggle")
    expect(toggles).to_have_text(["one.log", HOSTILE])
    expect(toggles.first).to_have_class(re.compile(classes[0].split()[-1]))
    toggles.first.click()
    expect(toggles.first).to_have_attribute("aria-pressed", "false")
    expect(lines).to_have_count(1)
    expect(lines).to_have_text([re.compile("from two 1$")])
    append(one, "from one 3")
    append(two, "from two 2")
    expect(lines).to_have_count(2)
    expect(lines.last).to_have_text(re.compile("from two 2$"))
    toggles.first.click()
    expect(lines).to_have_count(5)
    expect(lines.last).to_have_text(re.compile("from two 2$"))
    first.locator(".stop").click()
