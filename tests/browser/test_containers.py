"""A container source in Chromium, podman writing the logs: two pods in one pane with their
standard error shown apart, and a reconnect after a lost worker that resumes each container
where it was (a restart and lines written meanwhile): nothing lost, nothing repeated."""

import re
import signal

from playwright.sync_api import expect

from tests.browser.helpers import login, pane


def messages(rows):
    """The message of each row (after the runtime's timestamp)."""
    return [re.sub(r"^.*?\d{4}-\d\d-\d\dT\S+\s+", "", text.replace("\n", " "))
            for text in rows.all_inner_texts()]


def test_two_pods_with_stderr_apart_and_a_reconnect_that_resumes_each(lossy, page, tmp_path,
                                                                        podman):
    pods = tmp_path / "pods"
    podman.run(str(pods / "shop_web-1_u1/app/0.log"), "echo web hello; echo web oops >&2")
    podman.run(str(pods / "shop_db-1_u2/pg/0.log"), "echo db ready")
    source = lossy.add_container("shop", "--pods-dir", str(pods), "--namespace", "shop",
                                 "--pod", "*")
    login(page, lossy.web.base_url, "admin", lossy.admin_password)
    first = pane(page)
    picker = first.locator(".picker-input")
    picker.click()  # the picker finds it by its kind and shows the pods it follows
    picker.fill("container")
    expect(first.locator(".picker-list")).to_contain_text("shop/*/*")
    picker.press("Escape")
    first.locator(".source").select_option(f"container:{source}")
    first.locator(".container-lines").fill("50")
    first.locator(".start").click()
    status = first.locator(".status")
    expect(status).to_have_text(re.compile(r"^Running on w1@"), timeout=15000)
    rows = first.locator(".output .line")
    expect(rows).to_have_count(3)
    assert sorted(messages(rows)) == ["db ready", "web hello", "web oops"]
    stderr = first.locator(".output .line.stderr")
    expect(stderr).to_have_count(1)
    expect(stderr).to_contain_text("web oops")
    expect(stderr.locator(".stream-tag")).to_have_text("stderr")
    expect(first.locator(".output .line:not(.stderr) .stream-tag")).to_have_count(0)
    expect(first.locator(".output .line .file-tag")).to_have_count(3)

    lossy.stop(lossy.worker, signal.SIGKILL)
    expect(status).to_have_attribute("data-state", "reconnecting", timeout=10000)
    podman.run(str(pods / "shop_web-1_u1/app/1.log"), "echo web restarted; echo web err2 >&2")
    podman.run(str(pods / "shop_db-1_u2/pg/0.log"), "echo db during the outage")
    lossy.start_worker(name="w2")
    expect(status).to_have_text(re.compile(r"^Running on w2@"), timeout=45000)
    podman.run(str(pods / "shop_db-1_u2/pg/0.log"), "echo db after the restart")
    expect(rows).to_have_count(7, timeout=15000)
    shown = messages(rows)
    assert shown[:3] == messages(rows)[:3] and sorted(shown[:3]) == ["db ready", "web hello",
                                                                      "web oops"]
    assert sorted(shown[3:6]) == ["db during the outage", "web err2", "web restarted"]
    assert shown[6] == "db after the restart"
    assert shown.index("web restarted") < shown.index("web err2")
    expect(stderr).to_have_count(2)
    expect(first.locator(".notice-info")).to_contain_text(["reconnected"])
