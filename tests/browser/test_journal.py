"""A journal source in Chromium: levels from priorities, and a reconnect after a lost worker
that resumes after the last entry shown (after=CURSOR): nothing lost, nothing repeated."""

import re
import signal

from playwright.sync_api import expect

from tests import journalfiles as jf
from tests.browser.helpers import login, pane, start

pytestmark = jf.needed

BASE = 1765033445_000000


def test_a_journal_pane_shows_levels_and_resumes_after_its_cursor(lossy, page, tmp_path):
    folder = tmp_path / "journal"
    folder.mkdir()
    path = str(folder / "system.journal")
    jf.write(path, [jf.entry("boot done", usec=BASE, unit="web.service", priority=6),
                    jf.entry("disk almost full", usec=BASE + 1, unit="web.service", priority=4),
                    jf.entry("cannot bind", usec=BASE + 2, unit="web.service", priority=3),
                    jf.entry("not mine", usec=BASE + 3, unit="db.service", priority=3)])
    source = lossy.add_journal("web-journal", "--directory", str(folder), "--unit",
                               "web.service")
    login(page, lossy.web.base_url, "admin", lossy.admin_password)
    first = pane(page)
    picker = first.locator(".picker-input")
    picker.click()  # the picker finds it by its kind and shows its unit
    picker.fill("journal")
    expect(first.locator(".picker-list")).to_contain_text("web.service")
    picker.press("Escape")
    first.locator(".source").select_option(f"journal:{source}")
    first.locator(".journal-lines").fill("10")
    start(first)
    rows = first.locator(".output .line")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("web1 app[100]: boot done")
    expect(rows.nth(1)).to_have_class(re.compile(r"\blvl-warn\b"))
    expect(rows.nth(2)).to_have_class(re.compile(r"\blvl-error\b"))

    status = first.locator(".status")
    lossy.stop(lossy.worker, signal.SIGKILL)
    expect(status).to_have_attribute("data-state", "reconnecting", timeout=10000)
    jf.write(path, [jf.entry(f"during the outage {n}", usec=BASE + 10 + n,
                             unit="web.service") for n in range(3)])
    jf.archive(path)
    jf.write(path, [jf.entry("after a rotation", usec=BASE + 20, unit="web.service")])
    lossy.start_worker(name="w2")
    expect(status).to_have_text(re.compile(r"^Running on w2@"), timeout=45000)
    jf.write(path, [jf.entry("after the restart", usec=BASE + 30, unit="web.service")])
    expect(rows).to_have_count(8, timeout=15000)
    texts = [text.split(": ", 1)[1] for text in rows.all_inner_texts()]
    assert texts == ["boot done", "disk almost full", "cannot bind",
                     "during the outage 0", "during the outage 1", "during the outage 2",
                     "after a rotation", "after the restart"]
    expect(first.locator(".notice-info")).to_contain_text(["reconnected"])
