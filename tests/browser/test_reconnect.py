"""A pane whose worker dies reconnects by itself, with backoff, and picks up where it was."""

import re
import signal

from playwright.sync_api import expect

from tests.browser.helpers import append, login, pane, start


def test_pane_reconnects_by_itself_when_its_worker_is_restarted(lossy, page, tmp_path):
    log = tmp_path / "app.log"
    log.write_text("")
    source = lossy.add_log("app", log)
    login(page, lossy.web.base_url, "admin", lossy.admin_password)
    first = pane(page)
    start(first, f"tailf:{source}", lines=0)
    status = first.locator(".status")
    expect(status).to_have_text(re.compile(r"^Running on w1@"))
    lines = first.locator(".output .line")
    append(log, "before the crash")
    expect(lines).to_have_text(["before the crash"])

    lossy.stop(lossy.worker, signal.SIGKILL)
    expect(status).to_have_attribute("data-state", "reconnecting", timeout=10000)
    expect(status).to_contain_text("worker lost")
    expect(first.locator(".retry")).to_be_visible()
    append(log, "during the outage")
    lossy.start_worker(name="w2")

    expect(status).to_have_text(re.compile(r"^Running on w2@"), timeout=45000)
    append(log, "after the restart")
    # The resume backlog fills the gap without repeating what the pane already showed.
    expect(lines).to_have_text(["before the crash", "during the outage", "after the restart"])
    expect(first.locator(".notice-info")).to_contain_text(["reconnected"])
    expect(first.locator(".stop")).to_be_enabled()

    first.locator(".stop").click()
    expect(status).to_have_attribute("data-state", "stopped", timeout=5000)
    page.wait_for_timeout(1500)
    expect(status).to_have_attribute("data-state", "stopped")
