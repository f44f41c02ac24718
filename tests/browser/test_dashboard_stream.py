"""A person logs in, picks the log, presses Start, sees a new line, presses Stop."""

import re

from playwright.sync_api import expect

from tests.browser.helpers import RUNNING, append, login, pane


def test_user_streams_a_log_line_as_text_and_stops(system, page, tmp_path):
    log = tmp_path / "browser.log"
    log.write_text("before 1\nbefore 2\n")
    source = system.add_log("browser-log", log, "--group", "ops")
    system.add_log("hidden-log", tmp_path / "hidden.log", "--group", "other")
    password = system.create_user("opsuser", groups=["ops"])
    login(page, system.web.base_url, "opsuser", password)

    first = pane(page)
    status = first.locator(".status")
    expect(status).to_have_text("Idle")
    options = first.locator(".source option")
    expect(options).to_have_count(1)
    first.locator(".source").select_option(f"tailf:{source}")
    first.locator(".lines").fill("1")
    first.locator(".start").click()
    expect(status).to_have_text(RUNNING, timeout=15000)
    output = first.locator(".output")
    expect(output.locator(".line")).to_have_text(["before 2"])

    hostile = "x <script>window.pwned=1</script><img src=x onerror=window.pwned=2>"
    append(log, hostile)
    expect(output.locator(".line").last).to_have_text(hostile, timeout=5000)
    assert output.locator("script, img").count() == 0
    assert page.evaluate("window.pwned") is None

    task_id = status.get_attribute("data-task-id")
    assert task_id
    first.locator(".stop").click()
    expect(status).to_have_text(re.compile(r"^Stopped"), timeout=5000)
    assert system.wait_for(lambda: system.task_end(task_id), 2)
    assert system.wait_for(lambda: task_id not in system.active_task_ids(system.worker), 2)
