"""The admin's Streams list, at 390 and 1440 px: a state is one line, and no word of a source,
worker or ending (paths among them) is split across lines (a line may end after a hyphen, a
slash or other punctuation)."""

import pytest

from tests.browser.helpers import watch_errors

# A word split across lines has more than one client rect for its own text range.
SPLIT_WORDS = """(selector) => {
  const split = [];
  for (const cell of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const re = /[^\\s\\-\\/@.:;_]+/g;  // breaking after - / @ . : ; _ is fine
      for (let m = re.exec(node.data); m; m = re.exec(node.data)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        if (tops.size > 1) split.push(m[0]);
      }
    }
  }
  return split;
}"""


@pytest.fixture(scope="module")
def streams(system, tmp_path_factory):
    """Ended stream records with long names, workers and reasons holding paths."""
    folder = tmp_path_factory.mktemp("admin-words")
    path = folder / "payments-service-production-eu-west.log"
    path.write_text("")
    source = system.add_log("payments-service-production-eu-west", path)
    system.shell(
        "from django.contrib.auth.models import User\n"
        "from tailf.models import LogSource\n"
        "from webapp.models import Ending\n"
        "from webapp.streams import records\n"
        f"source = LogSource.objects.get(pk={source})\n"
        "user = User.objects.get(username='admin')\n"
        "for n in range(3):\n"
        "    s = records.create(user, 'log', source, {}, f'words-{n}', f'chan-{n}')\n"
        "    records.set_worker(s.pk, 'celery-worker-number-two@tailboard-logs-host-eu-west-1')\n"
        f"    records.end(s.pk, Ending.ERROR, '{path} does not exist; /var/log/nginx/access.log "
        "was rotated', 42)\n")
    return source


@pytest.mark.parametrize("width", [390, 1440])
def test_streams_list_keeps_states_and_words_whole(system, streams, browser, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(system.web.base_url + "/admin/login/?next=/admin/webapp/stream/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", system.admin_password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_selector("#result_list")
    assert "Tailboard administration" in page.locator("#site-name").inner_text()
    states = page.locator("#result_list td.field-state")
    assert states.count() >= 3
    for cell in states.all():
        height = cell.evaluate("el => { const r = document.createRange(); "
                               "r.selectNodeContents(el); return r.getClientRects().length; }")
        assert height == 1, cell.inner_text()
    split = page.evaluate(SPLIT_WORDS, "#result_list td.field-source, #result_list td.field-worker,"
                                       " #result_list td.field-how_ended, #result_list td.field-state")
    assert split == []
    context.close()
    assert not errors, errors
