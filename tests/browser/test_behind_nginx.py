"""The dashboard through Debian's nginx with the site file docs/deploy.md recommends
(docs/nginx/tailboard.conf): log in, stream a log over the proxied WebSocket, Stop."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import RUNNING, append, login, pane


@pytest.fixture(scope="module")
def proxied_web(system):
    """A Daphne run as docs/deploy.md runs it behind nginx (TRUSTED_PROXY_COUNT=1)."""
    web = system.start_daphne("web-proxied", TRUSTED_PROXY_COUNT="1")
    yield web
    system.stop(web)


def test_the_dashboard_streams_and_stops_through_the_documented_nginx(
        system, proxied_web, nginx, page, tmp_path):
    proxy = nginx([proxied_web.base_url])
    log = tmp_path / "proxied.log"
    log.write_text("before 1\nbefore 2\n")
    source = system.add_log("proxied-log", log, "--group", "proxied")
    password = system.create_user("proxied-user", groups=["proxied"])
    login(page, proxy.url, "proxied-user", password)

    first = pane(page)
    status = first.locator(".status")
    first.locator(".source").select_option(f"tailf:{source}")
    first.locator(".lines").fill("1")
    first.locator(".start").click()
    expect(status).to_have_text(RUNNING, timeout=15000)
    output = first.locator(".output")
    expect(output.locator(".line")).to_have_text(["before 2"])
    append(log, *(f"through nginx {n}" for n in range(50)))
    expect(output.locator(".line").last).to_have_text("through nginx 49", timeout=5000)
    expect(output.locator(".line")).to_have_count(51)

    task_id = status.get_attribute("data-task-id")
    assert task_id
    first.locator(".stop").click()
    expect(status).to_have_text(re.compile(r"^Stopped"), timeout=5000)
    assert system.wait_for(lambda: system.task_end(task_id), 2)
    assert system.wait_for(lambda: task_id not in system.active_task_ids(system.worker), 2)
    # nginx logs the upgraded request once its connection ends, a moment after the client's.
    upgrades = system.wait_for(lambda: [line for line in proxy.access_log()
                                        if f"/ws/tailf/{source}/" in line], 5)
    assert upgrades and all('" 101 ' in line for line in upgrades)
