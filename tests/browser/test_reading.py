"""Reading a pane: match counts, the lines around a clicked line, times, JSON/logfmt fields."""

import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import append, login, pane, start


@pytest.fixture(scope="module")
def reader(system, tmp_path_factory):
    """One log source and a viewer."""
    path = tmp_path_factory.mktemp("reading") / "app.log"
    path.write_text("")
    source = system.add_log("app", path, "--group", "readers")
    password = system.create_user("reader", groups=["readers"])
    return {"path": path, "src": f"tailf:{source}", "password": password}


def test_match_counts_and_the_lines_around_a_clicked_line(system, reader, page):
    login(page, system.web.base_url, "reader", reader["password"])
    first = pane(page)
    start(first, reader["src"], lines=0)
    append(reader["path"], *[f"row {i} {'disk' if i % 5 == 0 else 'ok'}" for i in range(20)])
    lines = first.locator(".output .line")
    expect(lines).to_have_count(20)

    first.locator(".filter").fill("disk")
    expect(lines).to_have_count(4)
    expect(first.locator(".filter-count")).to_have_text("4 of 20")
    first.locator(".highlight").fill("/row 1\\d/")
    expect(first.locator(".highlight-count")).to_have_text("10 of 20")
    append(reader["path"], "row 20 disk", "row 21 ok")
    expect(first.locator(".filter-count")).to_have_text("5 of 22")
    expect(first.locator(".highlight-count")).to_have_text("10 of 22")

    # A click on a line shows the lines around it from the buffer, though the filter hides them.
    lines.filter(has_text="row 10 disk").click()
    before = first.locator(".ctx-before .ctx-line")
    after = first.locator(".ctx-after .ctx-line")
    expect(before).to_have_text(["row 5 disk", "row 6 ok", "row 7 ok", "row 8 ok", "row 9 ok"])
    expect(after).to_have_text(["row 11 ok", "row 12 ok", "row 13 ok", "row 14 ok", "row 15 disk"])
    expect(first.locator(".ctx-hidden")).to_have_count(8)
    expect(lines).to_have_count(5)
    # A second click folds them again; a selection of text does not expand anything.
    lines.filter(has_text="row 10 disk").click()
    expect(first.locator(".ctx-block")).to_have_count(0)
    first.locator(".filter").fill("")
    expect(first.locator(".filter-count")).to_have_text("")

    # Times: as sent, in local time, relative to now (receive time for lines without one).
    append(reader["path"], "2024-05-01T10:00:00Z WARN stamped")
    stamped = lines.filter(has_text="stamped")
    expect(stamped.locator(".ts")).to_have_text("2024-05-01T10:00:00Z")
    time_button = first.locator(".time-mode")
    time_button.click()
    expect(time_button).to_have_text("Time: local")
    local = page.evaluate("""() => new Intl.DateTimeFormat('en', {month: 'short', day: 'numeric',
        hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false})
        .format(new Date('2024-05-01T10:00:00Z'))""")
    expect(stamped.locator("time.ts")).to_have_text(local)
    expect(stamped.locator("time.ts")).to_have_attribute("datetime", "2024-05-01T10:00:00.000Z")
    expect(lines.filter(has_text="row 21 ok").locator("time.ts-received")).to_have_text(
        re.compile(r"^\d\d:\d\d:\d\d$"))
    time_button.click()
    expect(time_button).to_have_text("Time: relative")
    expect(lines.filter(has_text="row 21 ok").locator("time.ts")).to_have_text(
        re.compile(r"^(now|\d+ sec\. ago)$"))
    expect(stamped.locator("time.ts")).to_have_text(re.compile(r"ago$"))
    assert "time%3Drelative" in page.url
    time_button.click()
    expect(stamped.locator(".ts")).to_have_text("2024-05-01T10:00:00Z")


def test_json_and_logfmt_lines_show_fields_and_filter_by_field(system, reader, page):
    login(page, system.web.base_url, "reader", reader["password"])
    first = pane(page)
    start(first, reader["src"], lines=0)
    append(reader["path"],
           json.dumps({"level": "error", "msg": "payment failed", "user": "u1", "ms": 812}),
           json.dumps({"severity": "WARNING", "message": "slow", "user": "u2", "nested": {"a": 1}}),
           '2024-05-01T10:00:00Z lvl=info msg="user logged in" user=u1 path=/login',
           "level=debug msg=tick user=U3",
           "plain text user=u1 here",
           '{"not": json',
           "{}")
    lines = first.locator(".output .line")
    expect(lines).to_have_count(7)
    structured = first.locator(".output .line.structured")
    expect(structured).to_have_count(4)
    first_json = lines.nth(0)
    expect(first_json).to_have_class(re.compile(r"\blvl-error\b"))
    expect(first_json.locator(".msg")).to_have_text("payment failed")
    expect(first_json.locator(".kv .k")).to_have_text(["level", "user", "ms"])
    expect(first_json.locator(".kv .v")).to_have_text(["error", "u1", "812"])
    expect(lines.nth(1)).to_have_class(re.compile(r"\blvl-warn\b"))
    expect(lines.nth(1).locator(".kv").last).to_have_text('nested={"a":1}')
    expect(lines.nth(2)).to_have_class(re.compile(r"\blvl-info\b"))
    expect(lines.nth(2).locator(".ts")).to_have_text("2024-05-01T10:00:00Z")
    expect(lines.nth(2).locator(".msg")).to_have_text("user logged in")
    expect(lines.nth(3)).to_have_class(re.compile(r"\blvl-debug\b"))
    expect(lines.nth(5)).to_have_text('{"not": json')
    expect(lines.nth(5).locator(".kv")).to_have_count(0)

    box = first.locator(".filter")
    box.fill("user=u1")
    # Fields of structured lines; plain lines are looked at as text.
    expect(lines).to_have_text([re.compile("payment failed"), re.compile("user logged in"),
                                "plain text user=u1 here"])
    expect(first.locator(".filter-count")).to_have_text("3 of 7")
    box.fill("user=u1 level=error")
    expect(lines).to_have_count(1)
    box.fill("user=U3")
    expect(lines).to_have_count(1)
    box.fill("user=u3")
    expect(lines).to_have_count(1)
    box.fill("user!=u1 lvl=info")
    expect(lines).to_have_count(0)
    box.fill('msg="user logged in"')
    expect(lines).to_have_count(1)
    box.fill("user=u1 payment")
    expect(lines).to_have_text([re.compile("payment failed")])
    box.fill("user=u1 /(/")
    expect(box).to_have_attribute("aria-invalid", "true")
    box.fill("/user=u[12]/")
    # A /regex/ is matched against the raw text only (the logfmt line and the plain one).
    expect(lines).to_have_text([re.compile("user logged in"), "plain text user=u1 here"])
    box.fill("")
    expect(lines).to_have_count(7)

    # Hostile input: a huge JSON line and deep nesting are shown as text or fields, never markup.
    append(reader["path"], json.dumps({"msg": "<img src=x onerror=window.pwned=1>", "k": "v"}),
           "{" * 5000, json.dumps({"level": "error", "big": "x" * 40000}))
    expect(lines).to_have_count(10)
    assert first.locator(".output img").count() == 0
    assert page.evaluate("window.pwned") is None
    result = page.evaluate("""async () => {
        const f = await import('/static/tailboard/fields.js');
        return {
            logfmt: f.parseLogfmt('a=1 b="two words" c= d="q\\\\"x"'),
            bare: f.parseLogfmt('GET /x?a=1 200'),
            one: f.parseLogfmt('a=1'),
            unclosed: f.parseLogfmt('a="x b=2'),
            pino: f.fieldLevel(f.parseFields('{"level":50,"msg":"x"}')),
            terms: f.splitFieldTerms('disk key="a b" x!=1 /re/'),
            regexOnly: f.splitFieldTerms('/a=b/'),
        };
    }""")
    assert result["logfmt"] == [["a", "1"], ["b", "two words"], ["c", ""], ["d", 'q"x']]
    assert result["bare"] is None and result["one"] is None and result["unclosed"] is None
    assert result["pino"] == "error"
    assert result["terms"] == {"terms": [{"key": "key", "negate": False, "value": "a b"},
                                         {"key": "x", "negate": True, "value": "1"}],
                               "rest": "disk /re/"}
    assert result["regexOnly"] == {"terms": [], "rest": "/a=b/"}


def test_a_level_named_like_an_object_property_gives_no_level_class(system, reader, page):
    login(page, system.web.base_url, "reader", reader["password"])
    first = pane(page)
    start(first, reader["src"], lines=0)
    append(reader["path"],
           "level=constructor msg=one",
           json.dumps({"level": "constructor", "msg": "two"}),
           json.dumps({"severity": "toString", "msg": "three"}),
           "lvl=hasOwnProperty four",
           "severity: valueOf five",
           json.dumps({"level": "__proto__", "msg": "six"}),
           "level=warn msg=seven")
    lines = first.locator(".output .line")
    expect(lines).to_have_count(7)
    classes = lines.evaluate_all("rows => rows.map(row => row.className)")
    assert all("function" not in c and "lvl-" not in c for c in classes[:6]), classes
    expect(lines.nth(6)).to_have_class(re.compile(r"\blvl-warn\b"))
