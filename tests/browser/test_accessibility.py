"""axe-core on the login page and on a dashboard with panes running: no serious or critical
violations, in both themes."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import RUNNING, append, login, pane, start, watch_errors

AXE = Path(__file__).resolve().parent.parent / "axe"  # package.json + package-lock.json


@pytest.fixture(scope="module")
def axe_script(tmp_path_factory):
    """axe-core's axe.min.js at the version pinned in tests/axe/package-lock.json, installed
    with `npm ci` into a folder of this test session."""
    npm = shutil.which("npm")
    if not npm:
        pytest.skip("npm is not installed")
    prefix = tmp_path_factory.mktemp("axe")
    for name in ("package.json", "package-lock.json"):
        shutil.copy(AXE / name, prefix / name)
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                          cwd=prefix, capture_output=True, text=True, timeout=300)
    script = prefix / "node_modules" / "axe-core" / "axe.min.js"
    if done.returncode != 0 or not script.exists():
        pytest.skip(f"npm could not install axe-core: {done.stderr[-500:]}")
    return script


def serious_violations(page):
    """Run axe on the page; return its serious and critical violations, summarised."""
    results = page.evaluate("""async () => {
        const result = await axe.run(document, { resultTypes: ['violations'] });
        return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => ({ id: v.id, impact: v.impact,
                           nodes: v.nodes.slice(0, 5).map((n) => [n.target.join(' '),
                                                                  n.failureSummary]) }));
    }""")
    return results


@pytest.fixture
def axe_page(browser, axe_script):
    """A page with axe-core injected before every document (the CSP allows no inline script)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(path=str(axe_script))
    page = context.new_page()
    errors = watch_errors(page)
    yield page
    context.close()
    assert not errors, errors


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_login_page_has_no_serious_violations(system, axe_page, theme):
    page = axe_page
    page.goto(system.web.base_url + "/accounts/login/")
    page.evaluate(f"localStorage.setItem('tailboard.theme', '{theme}')")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", theme)
    assert serious_violations(page) == []
    page.fill("#id_username", "nobody")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    expect(page.locator(".login .error")).to_be_visible()
    assert serious_violations(page) == []


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_dashboard_with_running_panes_has_no_serious_violations(system, axe_page, tmp_path,
                                                                 feed_server, theme):
    page = axe_page
    feed_server.raw = ('<?xml version="1.0"?><rss version="2.0"><channel><title>Ops</title>'
                       "<item><guid>a</guid><title>Deploy done</title>"
                       "<link>https://example.com/a</link></item></channel></rss>").encode()
    logs = [tmp_path / "web.log", tmp_path / "db.log"]
    for path in logs:
        path.write_text("")
    ids = [system.add_log(f"{path.stem}-{theme}", path) for path in logs]
    system.add_feed(f"ops-{theme}", feed_server.url, "--interval", "5")
    login(page, system.web.base_url, "admin", system.admin_password)
    page.evaluate(f"localStorage.setItem('tailboard.theme', '{theme}')")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", theme)
    # The fresh page, picker open.
    expect(pane(page).locator(".picker-panel")).to_be_visible()
    assert serious_violations(page) == []

    first = pane(page)
    start(first, f"tailf:{ids[0]}", lines=0)
    box = first.locator(".picker-input")
    for name in (f"db-{theme}", f"ops-{theme}"):
        box.fill(name)
        box.press("Enter")
    box.press("Escape")
    expect(first.locator(".source-row .status")).to_have_text([RUNNING] * 3, timeout=15000)
    page.click("#add-pane")
    start(pane(page, 1), f"tailf:{ids[1]}", lines=0)
    first.locator(".highlight").fill("disk")
    first.locator(".filter").fill("level=warn disk")
    first.locator(".filter").fill("")
    append(logs[0], "2024-05-01T10:00:00Z ERROR disk full", "2024-05-01T10:00:01Z WARN disk 91%",
           "2024-05-01T10:00:02Z INFO ok", "2024-05-01T10:00:03Z DEBUG tick",
           json.dumps({"level": "warn", "msg": "slow disk", "ms": 900}),
           "level=error msg=\"write failed\" disk=sdb")
    append(logs[1], "db line")
    expect(first.locator(".output .line")).to_have_count(7)
    expect(first.locator(".entry")).to_have_count(1, timeout=15000)
    first.locator(".output .line").nth(2).click()
    first.locator(".time-mode").click()
    assert serious_violations(page) == []
    first.locator(".time-mode").click()
    # A warning badge (amber) and a stopped pane.
    page.evaluate("""() => window.tailboard.panes[0].members[1].handlers().status(
        {type: 'status', state: 'running', warning: 'db.log does not exist'})""")
    pane(page, 1).locator(".stop").click()
    expect(pane(page, 1).locator(".status")).to_have_text(re.compile("^Stopped"), timeout=5000)
    assert serious_violations(page) == []
    # A heading names the page.
    expect(page.get_by_role("heading", level=1)).to_have_count(1)
    first.locator(".stop").click()
