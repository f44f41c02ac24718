"""Client-side filter and highlight patterns run in linear time: hostile links never freeze a tab."""

import json
import time
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import RUNNING, RendererWatchdog, append, login, pane

EVIL = "/(a+)+$/"  # exponential on a backtracking engine: 34 `a` + `!` took > 15 s before
HOSTILE_HIGHLIGHTS = "/(a+)+$/, /(x+x+)+y/, /(\\w+\\s?)+z/i"


@pytest.fixture(scope="module")
def viewer(system, tmp_path_factory):
    """One log source and a viewer allowed to see it."""
    path = tmp_path_factory.mktemp("patterns") / "evil.log"
    path.write_text("")
    source = system.add_log(path.stem, path, "--group", "pattern-viewers")
    password = system.create_user("patterns", groups=["pattern-viewers"])
    return {"log": path, "id": source, "password": password}


def shared_link(base, source, **options):
    """A dashboard link with one running pane, as a user would share it."""
    pane_spec = urlencode({"src": f"tailf:{source}", "lines": "0", **options, "run": "1"})
    return f"{base}/#{urlencode({'p': pane_spec})}"


def answer_time(page):
    """Seconds the page takes to evaluate 1+1 (a frozen main thread shows up here)."""
    began = time.monotonic()
    assert page.evaluate("1+1") == 2
    return time.monotonic() - began


def start_heartbeat(page):
    """Record the longest gap between 20 ms timer ticks from now on (main-thread stalls)."""
    page.evaluate("""() => {
        window.__beat = { last: performance.now(), worst: 0 };
        window.__beatTimer = setInterval(() => {
            const now = performance.now();
            window.__beat.worst = Math.max(window.__beat.worst, now - window.__beat.last);
            window.__beat.last = now;
        }, 20);
    }""")


def worst_stall_ms(page):
    """The longest main-thread stall since start_heartbeat, in milliseconds."""
    return page.evaluate("() => { clearInterval(window.__beatTimer); return window.__beat.worst; }")


def run_in_page(page, function, arg, timeout=15000):
    """Run an async page function on arg; fail after `timeout` ms even if it froze the page."""
    page.evaluate(f"""() => {{
        window.__outcome = undefined;
        setTimeout(() => ({function})({json.dumps(arg)}).then(
            (value) => {{ window.__outcome = {{ value }}; }},
            (error) => {{ window.__outcome = {{ error: String(error) }}; }}), 0);
    }}""")
    page.wait_for_function("() => window.__outcome !== undefined", timeout=timeout)
    outcome = page.evaluate("() => window.__outcome")
    assert "error" not in outcome, outcome
    return outcome["value"]


def test_hostile_shared_link_does_not_freeze_the_page(system, viewer, page):
    with RendererWatchdog(90):
        hostile_link_stays_responsive(system, viewer, page)


def hostile_link_stays_responsive(system, viewer, page):
    """The steps of the test above (a frozen page fails through the watchdog)."""
    login(page, system.web.base_url, "patterns", viewer["password"])
    page.goto(shared_link(system.web.base_url, viewer["id"], filter=EVIL, hl=HOSTILE_HIGHLIGHTS))
    first = pane(page)
    expect(first.locator(".status")).to_have_text(RUNNING, timeout=15000)
    expect(first.locator(".filter")).to_have_value(EVIL)
    expect(first.locator(".filter")).to_have_attribute("aria-invalid", "false")
    expect(first.locator(".pane-problem")).to_be_hidden()

    start_heartbeat(page)
    shown = ["a" * 34, "x" * 30000 + "a" * 30000, "b" * 1000 + "a", "sentinel aaa"]
    append(viewer["log"], "a" * 34 + "!", shown[0], "a" * 60000 + "!", shown[1],
           "x" * 60000 + "!", shown[2], "ab " * 20000 + "!", shown[3])
    lines = first.locator(".output .line")
    expect(lines).to_have_text(shown, timeout=15000)
    assert answer_time(page) < 2
    stall = worst_stall_ms(page)
    assert stall < 2000, f"main thread stalled {stall:.0f} ms"

    # Highlights keep their positions: the whole a-run of each shown line, nothing else.
    expect(lines.nth(0).locator("mark.hl-0")).to_have_text(["a" * 34])
    expect(lines.nth(1).locator("mark.hl-0")).to_have_text(["a" * 30000])
    assert lines.nth(1).locator("mark").count() == 1
    expect(lines.nth(3).locator("mark.hl-0")).to_have_text(["aaa"])
    # /(\w+\s?)+z/i would match nothing here; the typed-in /(\w+\s?)+$/ marks whole lines.
    first.locator(".highlight").fill("/(\\w+\\s?)+$/")
    expect(lines.nth(2).locator("mark.hl-0")).to_have_text(["b" * 1000 + "a"])
    assert answer_time(page) < 2


def test_patterns_re2_refuses_show_a_clear_error(system, viewer, page):
    login(page, system.web.base_url, "patterns", viewer["password"])
    first = pane(page)
    first.locator(".source").select_option(f"tailf:{viewer['id']}")
    first.locator(".lines").fill("0")
    first.locator(".start").click()
    expect(first.locator(".status")).to_have_text(RUNNING, timeout=15000)
    append(viewer["log"], "aa bb", "ab cd")
    lines = first.locator(".output .line")
    expect(lines).to_have_count(2)

    filter_box = first.locator(".filter")
    problem = first.locator(".pane-problem")
    filter_box.fill("/(a)\\1/")
    expect(filter_box).to_have_attribute("aria-invalid", "true")
    expect(problem).to_contain_text("Filter is not a valid regular expression")
    expect(problem).to_contain_text("\\1: backreferences are not supported")
    expect(problem).to_contain_text("RE2 syntax")
    expect(lines).to_have_count(2)
    filter_box.fill("/a(?=b)/")
    expect(problem).to_contain_text("(?=: lookahead is not supported")
    filter_box.fill("/(aa|cd)$/")
    expect(filter_box).to_have_attribute("aria-invalid", "false")
    expect(problem).to_be_hidden()
    expect(lines).to_have_text(["ab cd"])
    filter_box.fill("")

    highlight = first.locator(".highlight")
    highlight.fill("/(?<=a)b/, bb")
    expect(highlight).to_have_attribute("aria-invalid", "true")
    expect(problem).to_contain_text("Highlight rule ignored: /(?<=a)b/: (?<=: lookbehind is not supported")
    expect(first.locator("mark.hl-0")).to_have_text(["bb"])
    highlight.fill("/x{1001}/")
    expect(problem).to_contain_text("invalid repeat count")
    highlight.fill("/\\w{400}/")
    expect(problem).to_contain_text("pattern is too large")
    highlight.fill("")
    expect(problem).to_be_hidden()


MATCHERS = """async ([cases, rules]) => {
    const m = await import('/static/tailboard/matchers.js');
    const filters = cases.map(([term, line]) => {
        const f = m.compileFilter(term);
        return f === null ? null : f.error ? { error: f.error } : f.test(line);
    });
    const marks = rules.map(([text, line]) => {
        const { rules, errors } = m.compileHighlights(text);
        // What is marked, whatever the machine's speed: the 8 ms budget has its own test.
        return { errors, segments: m.highlightSegments(line, rules, 10000) };
    });
    return { filters, marks };
}"""


def test_matchers_keep_smart_case_flags_and_positions(system, page):
    page.goto(system.web.base_url + "/accounts/login/")
    cases = [
        ("disk", "DISK full"), ("Disk", "disk full"), ("Disk", "Disk full"), ("  ", "x"),
        ("/db-[2-9]$/", "on db-2"), ("/db-[2-9]$/", "db-2 down"), ("/DB-\\d/", "db-1"),
        ("/DB-\\d/i", "db-1"), ("/^b/", "a\nb"), ("/^b/m", "a\nb"), ("/a.b/", "a\nb"),
        ("/a.b/s", "a\nb"), ("/\\u0041\\u{1F600}\\x41/u", "A😀A"), ("/\\uD83D\\uDE00/", "😀"),
        ("/a\\/b/", "a/b"), ("/(?<year>\\d{4})-\\d\\d/g", "2024-05"), ("/db-(/", "db-("),
        ("/" + "a" * 1001 + "/", "a"), ("/(a+)+$/", "a" * 34 + "!"), ("/(a+)+$/", "a" * 34),
    ]
    rules = [
        ("disk, /db-\\d/", "ERROR disk full on db-1, DISK ok"),
        ("/a,b/i , ab", "xAB,ab a,b"),
        ("/b/", "😀b😀b"),
        ("/x*/", "aaxx"),
        ("i̇", "xİx"),
        (",".join(f"r{i}x" for i in range(40)), "r0x r39x"),
        ("/a+$/", "a" * 70000),
        ("x", "x" * 200),
    ]
    result = run_in_page(page, MATCHERS, [cases, rules])
    filters = result["filters"]
    assert filters[:4] == [True, False, True, None]
    assert filters[4:8] == [True, False, False, True]
    assert filters[8:12] == [False, True, False, True]
    assert filters[12:16] == [True, True, True, True]
    assert filters[16]["error"] == "missing closing ): `db-(`"
    assert "pattern is too long" in filters[17]["error"]
    assert filters[18:] == [False, True]

    marks = result["marks"]
    assert marks[0] == {"errors": [], "segments": [
        ["ERROR ", None], ["disk", 0], [" full on ", None], ["db-1", 1], [", ", None],
        ["DISK", 0], [" ok", None]]}
    assert marks[1]["segments"] == [["x", None], ["AB", 1], [",", None], ["ab", 1], [" ", None],
                                    ["a,b", 0]]
    assert marks[2]["segments"] == [["😀", None], ["b", 0], ["😀", None], ["b", 0]]
    assert marks[3]["segments"] == [["aa", None], ["xx", 0]]
    assert marks[4]["segments"] == [["x", None], ["İ", 0], ["x", None]]
    assert marks[5]["errors"] == ["only the first 32 rules are used"]
    assert marks[5]["segments"] == [["r0x", 0], [" r39x", None]]
    assert marks[6]["segments"] == [["a" * 70000, 0]]
    assert len(marks[7]["segments"]) == 64 + 1  # at most 64 marks per rule, then the rest


def test_matching_hostile_long_lines_is_quick(system, page):
    page.goto(system.web.base_url + "/accounts/login/")
    timings = run_in_page(page, """async () => {
        const m = await import('/static/tailboard/matchers.js');
        const line = 'a'.repeat(65536);
        const out = {};
        for (const term of ['/(a+)+$/', '/(a|aa)*b/', '/a*b|a/', '/(?:a*b)?/', '/(x+x+)+y/']) {
            const began = performance.now();
            const filter = m.compileFilter(term);
            filter.test(line + '!');
            const { rules } = m.compileHighlights(term);
            m.highlightSegments(line + '!', rules);
            m.highlightSegments(line, rules);
            out[term] = performance.now() - began;
        }
        return out;
    }""", None)
    assert all(ms < 500 for ms in timings.values()), timings


def test_the_watchdog_turns_a_frozen_page_into_a_failure(system, browser):
    context = browser.new_context()
    frozen = context.new_page()
    frozen.goto(system.web.base_url + "/accounts/login/")
    watchdog = RendererWatchdog(3)
    with pytest.raises(Exception):  # noqa: B017 - whatever Playwright raises for a killed page
        with watchdog:
            frozen.evaluate("() => { while (true) {} }")
    assert watchdog.fired
    context.close()
