"""A log writing 100k lines/s for 10 s keeps the page responsive and the pane within its cap."""

import threading
import time

from playwright.sync_api import expect

from tests.browser.helpers import login, pane, start, watch_errors

RATE = 100_000
SECONDS = 10
CAP = 10_000

LONG_TASKS = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__longTasks.push(Math.round(entry.duration));
}).observe({ type: "longtask", buffered: true });
"""


def firehose(path, done):
    """Append RATE lines a second for SECONDS, in chunks every 10 ms; return via done[]."""
    began = time.monotonic()
    written = 0
    with open(path, "a") as handle:
        while (elapsed := time.monotonic() - began) < SECONDS:
            target = min(RATE * SECONDS, int(elapsed * RATE) + 1000)
            if target > written:
                handle.write("".join(
                    f"{n:07d} 2024-05-01T10:00:00.000Z INFO firehose request served in 3ms\n"
                    for n in range(written, target)))
                handle.flush()
                written = target
            time.sleep(0.01)
    done.append(written)


def test_firehose_keeps_every_task_under_200ms_and_the_pane_capped(system, browser, tmp_path):
    log = tmp_path / "firehose.log"
    log.write_text("")
    source = system.add_log("firehose", log)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(LONG_TASKS)
    page = context.new_page()
    errors = watch_errors(page)
    try:
        login(page, system.web.base_url, "admin", system.admin_password)
        first = pane(page)
        start(first, f"tailf:{source}", lines=0)
        done = []
        writer = threading.Thread(target=firehose, args=(log, done))
        writer.start()
        writer.join(SECONDS + 30)
        written = done[0]
        assert written >= RATE * SECONDS * 0.9

        # Everything still arrives in the end (the newest line), the pane holds at most the cap.
        output = first.locator(".output")
        expect(output.locator(".line").last).to_contain_text(f"{written - 1:07d}",
                                                                timeout=30000)
        rows = output.locator(".line, .notice").count()
        assert 5000 < output.locator(".line").count() <= rows <= CAP
        held = int(first.locator(".held").inner_text().split()[0].replace(",", ""))
        assert held <= CAP

        # The page answers at once: the filter applies to what is held.
        first.locator(".filter").fill(f"{written - 1:07d}")
        expect(output.locator(".line")).to_have_count(1)
        long_tasks = page.evaluate("window.__longTasks")
        assert max(long_tasks, default=0) < 200, long_tasks
        assert not errors, errors
    finally:
        context.close()
