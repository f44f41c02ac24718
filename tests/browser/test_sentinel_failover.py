"""A dashboard pane rides out a Redis failover: its master is SIGKILLed behind Sentinel, the pane
says so and retries by itself, and it runs again within 10 s of the promotion, losing no line."""

import re
import time

import pytest
from playwright.sync_api import expect

from tests import sentinel
from tests.browser.helpers import append, login, pane, start
from tests.harness import started_installation

RESUME_MS = 10_000  # docs/reliability.md: pages resume within 10 s of the new master


@pytest.fixture(scope="module")
def failing_over(tmp_path_factory):
    """An installation whose Redis is a master, a replica and three sentinels."""
    reason = sentinel.available()
    if reason:
        pytest.skip(reason)
    with started_installation(tmp_path_factory.mktemp("sentinel-page"), sentinel=True,
                              workers=[{"name": "w1", "concurrency": 3}]) as harness:
        yield harness


def test_a_pane_resumes_within_10_s_of_the_new_master(failing_over, page, tmp_path):
    harness = failing_over
    log = tmp_path / "app.log"
    log.write_text("")
    source = harness.add_log("app", log)
    login(page, harness.web.base_url, "admin", harness.admin_password)
    first = pane(page)
    start(first, f"tailf:{source}", lines=0)
    status = first.locator(".status")
    expect(status).to_have_text(re.compile(r"^Running on w1@"), timeout=20000)
    lines = first.locator(".output .line")
    append(log, "before the failover")
    expect(lines).to_have_text(["before the failover"])

    old_port = harness.sentinel.kill_master()
    killed = time.monotonic()
    expect(status).to_have_attribute("data-state", re.compile("reconnecting|connecting"),
                                      timeout=10000)
    append(log, "during the failover")
    harness.sentinel.wait_promotion(old_port)
    promoted = time.monotonic()
    expect(status).to_have_text(re.compile(r"^Running on w1@"), timeout=RESUME_MS)
    resumed = time.monotonic()
    append(log, "after the failover")
    # The resume backlog fills the gap without repeating what the pane already showed.
    expect(lines).to_have_text(["before the failover", "during the failover",
                                "after the failover"])
    print(f"pane: promoted {promoted - killed:.1f} s after the kill, running again "
          f"{resumed - promoted:.1f} s after the promotion")
    first.locator(".stop").click()
    expect(status).to_have_attribute("data-state", "stopped", timeout=5000)
