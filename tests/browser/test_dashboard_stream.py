"""A person logs in, picks the log, presses Start, sees a new line, presses Stop."""

import re

from playwright.sync_api import expect


def login(page, base, username, password):
    """Log in through the login form."""
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    expect(page.locator("#status")).to_have_text("Idle")


def test_user_streams_a_log_line_as_text_and_stops(system, page, tmp_path):
    log = tmp_path / "browser.log"
    log.write_text("before 1\nbefore 2\n")
    source = system.add_log("browser-log", log, "--group", "ops")
    system.add_log("hidden-log", tmp_path / "hidden.log", "--group", "other")
    password = system.create_user("opsuser", groups=["ops"])
    login(page, system.web.base_url, "opsuser", password)

    options = page.locator("#source option")
    expect(options).to_have_count(1)
    page.select_option("#source", f"tailf:{source}")
    page.fill("#lines", "1")
    page.click("#start")
    status = page.locator("#status")
    expect(status).to_have_text(re.compile(r"^Running on w1@tailboard-test"), timeout=15000)
    expect(page.locator("#output .line")).to_have_text(["before 2"])

    hostile = "x <script>window.pwned=1</script><img src=x onerror=window.pwned=2>"
    with open(log, "a") as handle:
        handle.write(hostile + "\n")
    expect(page.locator("#output .line").last).to_have_text(hostile, timeout=5000)
    assert page.locator("#output script, #output img").count() == 0
    assert page.evaluate("window.pwned") is None

    task_id = status.get_attribute("data-task-id")
    assert task_id
    page.click("#stop")
    expect(status).to_have_text(re.compile(r"^Stopped"), timeout=5000)
    assert system.wait_for(lambda: system.task_end(task_id), 2)
    assert system.wait_for(lambda: task_id not in system.active_task_ids(system.worker), 2)
