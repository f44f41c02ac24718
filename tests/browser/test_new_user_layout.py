"""What a new user sees first, at 390 and 1440 px, in English and Chinese, measured in the page
(getBoundingClientRect, scrollWidth) rather than by screenshots: status rows of a merged pane
on a phone, the history search bar, field captions and placeholders of two panes side by
side, a select with a long option, a new pane that starts empty, search context shown once,
the picker and meter in Chinese, and the alerts bell without an emoji font."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import RUNNING, login, pane, watch_errors

LANGUAGES = ["en", "zh-hans"]
LONG_NAME = "payments-reconciliation-service-production-eu-west-1-primary"


@pytest.fixture(scope="module")
def sources(system, tmp_path_factory):
    folder = tmp_path_factory.mktemp("layout")
    paths = {name: folder / f"{name}.log" for name in ("web", "db", "long")}
    for path in paths.values():
        path.write_text("a\nhit one\nhit two\nb\nc\nd\nhit three\ne\n")
    ids = {"web": system.add_log("layout-web", paths["web"]),
           "db": system.add_log("layout-db", paths["db"]),
           "long": system.add_log(LONG_NAME, paths["long"])}
    return ids


@pytest.fixture
def open_page(system, browser):
    """Factory: a logged-in admin page at `width` px in `language`; closed after the test."""
    made = []

    def make(width, language, height=900):
        context = browser.new_context(viewport={"width": width, "height": height})
        context.add_cookies([{"name": "django_language", "value": language,
                              "url": system.web.base_url}])
        page = context.new_page()
        made.append((context, watch_errors(page)))
        login(page, system.web.base_url, "admin", system.admin_password)
        return page

    yield make
    for context, errors in made:
        context.close()
        assert not errors, errors


def show(page, system, *panes):
    """Open these panes (lists of query strings) from a link and wait for the page."""
    hash_ = "&".join("p=" + spec.replace("=", "%3D").replace("&", "%26") for spec in panes)
    page.goto(system.web.base_url + "/#" + hash_)
    page.reload()
    expect(page.locator(".pane")).to_have_count(len(panes))


LINES_OF = """(el) => { const r = document.createRange(); r.selectNodeContents(el);
  return new Set([...r.getClientRects()].map((q) => Math.round(q.top))).size; }"""

NO_OVERFLOW = """(width) => [...document.querySelectorAll('body *')]
  .filter((el) => el.getClientRects().length && !el.closest('.output, [hidden]'))
  .filter((el) => el.getBoundingClientRect().right > width + 0.5)
  .map((el) => el.className || el.tagName)"""


@pytest.mark.parametrize("language", LANGUAGES)
def test_phone_status_rows_of_a_merged_pane_stay_readable(system, sources, open_page, language):
    page = open_page(390, language)
    srcs = "&".join(f"src=tailf:{sources[name]}" for name in ("web", "db", "long"))
    show(page, system, f"{srcs}&lines=0&run=1")
    rows = pane(page).locator(".source-row")
    expect(rows).to_have_count(3)
    for status in rows.locator(".status").all():
        expect(status).to_have_attribute("data-state", "running", timeout=15000)
    for part in rows.locator(".badge, .message").all():
        box = part.bounding_box()
        # One character per line was 0-40 px wide and up to 220 px tall.
        assert box["width"] >= 90, (part.inner_text(), box)
        assert part.evaluate(LINES_OF) <= 2, (part.inner_text(), box)
    assert page.evaluate(NO_OVERFLOW, 390) == []


@pytest.mark.parametrize("width", [376, 390])
@pytest.mark.parametrize("language", LANGUAGES)
def test_phone_history_search_bar_fits_the_screen(system, sources, open_page, language, width):
    page = open_page(width, language)
    show(page, system, f"src=tailf:{sources['web']}")
    first = pane(page)
    first.locator(".search-pattern").fill("hit")
    first.locator(".start").click()
    bar = first.locator(".search-bar")
    expect(bar).to_have_attribute("data-done", "true", timeout=15000)
    sizes = bar.evaluate("(el) => [el.scrollWidth, el.clientWidth, "
                         "el.getBoundingClientRect().right]")
    assert sizes[0] <= sizes[1] and sizes[2] <= width, sizes
    assert page.evaluate(NO_OVERFLOW, width) == []


PLACEHOLDERS = """() => {
  const canvas = document.createElement('canvas').getContext('2d');
  return [...document.querySelectorAll('.pane input[placeholder]')]
    .filter((input) => input.getClientRects().length && input.placeholder)
    .map((input) => {
      const style = getComputedStyle(input);
      canvas.font = style.font;
      const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
      return [input.className, Math.ceil(canvas.measureText(input.placeholder).width), Math.floor(room)];
    });
}"""


@pytest.mark.parametrize("width", [390, 1440])
@pytest.mark.parametrize("language", LANGUAGES)
def test_two_panes_keep_captions_whole_placeholders_and_a_steady_select(system, sources,
                                                                       open_page, language,
                                                                       width):
    page = open_page(width, language)
    show(page, system, f"src=tailf:{sources['web']}", f"src=tailf:{sources['long']}")
    captions = page.evaluate("""() => [...document.querySelectorAll('.pane-form .field .cap')]
        .filter((cap) => cap.closest('.field').getClientRects().length)
        .map((cap) => [cap.textContent, cap.getBoundingClientRect().width,
                       getComputedStyle(cap).position])""")
    assert captions, "no captions"
    for text, cap_width, position in captions:
        assert position != "absolute" and cap_width >= 10, (text, cap_width, position)
    cut = [(name, need, room) for name, need, room in page.evaluate(PLACEHOLDERS) if need > room]
    assert cut == []
    selects = [box["width"] for box in
               (s.bounding_box() for s in page.locator(".pane select.source").all())]
    assert abs(selects[0] - selects[1]) <= 1, selects  # the long option does not widen it
    assert page.evaluate(NO_OVERFLOW, width) == []


@pytest.mark.parametrize("width", [390, 1440])
def test_add_pane_starts_empty_and_one_pick_makes_a_one_source_pane(system, sources,
                                                                    open_page, width):
    page = open_page(width, "en")
    show(page, system, f"src=tailf:{sources['web']}")
    page.click("#add-pane")
    expect(page.locator(".pane")).to_have_count(2)
    second = pane(page, 1)
    assert second.locator(".source").evaluate("el => el.selectedIndex") == -1
    expect(second.locator(".picker-input")).to_be_focused()
    box = second.locator(".picker-input")
    box.fill("layout-db")
    box.press("Enter")
    box.press("Escape")
    second.locator(".lines").fill("0")
    second.locator(".start").click()
    expect(second.locator(".source-row")).to_have_count(1)
    expect(second.locator(".status")).to_have_text(RUNNING, timeout=15000)
    assert "layout-db" in second.locator(".status").inner_text() or \
        second.locator(".source option:checked").get_attribute("data-name") == "layout-db"


@pytest.mark.parametrize("width", [390, 1440])
def test_search_context_blocks_merge_and_a_match_is_never_context(system, sources, open_page,
                                                                  width):
    page = open_page(width, "en")
    show(page, system, f"src=tailf:{sources['web']}")
    first = pane(page)
    first.locator(".search-pattern").fill("^hit")
    first.locator(".context").fill("2")
    first.locator(".start").click()
    expect(first.locator(".search-bar")).to_have_attribute("data-done", "true", timeout=15000)
    rows = first.locator(".match .ctx, .match .match-line")
    expect(first.locator(".match-line")).to_have_count(3)
    shown = [re.sub(r"^\S*?(\d+)", r"\1 ", text).split(None, 1)
             for text in rows.all_inner_texts()]
    kinds = rows.evaluate_all("els => els.map((el) => el.classList.contains('ctx') ? 'ctx' : 'match')")
    numbers = [int(number) for number, *_ in shown]
    assert numbers == [1, 2, 3, 4, 5, 6, 7, 8]  # every line once, in order
    assert kinds == ["ctx", "match", "match", "ctx", "ctx", "ctx", "match", "ctx"]


@pytest.mark.parametrize("width", [390, 1440])
def test_chinese_picker_and_meter_speak_chinese(system, sources, open_page, feed_server, width):
    feed = system.add_feed(f"layout-feed-{width}", feed_server.url, "--interval", "60")
    page = open_page(width, "zh-hans")
    show(page, system, "src=")
    first = pane(page)
    first.locator(".picker-input").focus()
    kinds = set(first.locator(".picker-list .pk-kind").all_inner_texts())
    assert kinds == {"日志", "订阅源"}, kinds
    option = first.locator(f"#{first.locator('[role=option]', has_text=f'layout-feed-{width}').get_attribute('id')}")
    expect(option.locator(".pk-where")).to_have_text(f"{feed_server.url}，每 60 秒")
    expect(first.locator(".rate")).to_have_text("0/秒")
    assert feed


@pytest.mark.parametrize("width", [390, 1440])
def test_alerts_bell_needs_no_emoji_font(system, sources, open_page, width):
    page = open_page(width, "en")
    show(page, system, f"src=tailf:{sources['web']}")
    toggle = pane(page).locator(".alert-toggle")
    page.context.grant_permissions(["notifications"])
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    bell = toggle.evaluate("""(el) => { const s = getComputedStyle(el, '::before');
        return [s.content, s.maskImage || s.webkitMaskImage, parseFloat(s.width)]; }""")
    assert bell[0] in ('""', "none", "") and "bell.svg" in bell[1] and bell[2] >= 10, bell
    expect(toggle).to_contain_text("Alerts")
    response = page.request.get(system.web.base_url + "/static/tailboard/bell.svg")
    assert response.status == 200 and b"<svg" in response.body()
