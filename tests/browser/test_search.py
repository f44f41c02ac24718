"""History search in a log pane: progress, matches with files, line numbers and context, jumping,
downloads, the page link, and the view around a match, in Debian's Chromium."""

import gzip
import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import login, pane


def numbered(prefix, count, needles):
    """Lines "prefix N" (1-based), with "needle" in the lines whose number is in `needles`."""
    return "".join(f"{prefix} {n}{' needle' if n in needles else ''}\n"
                   for n in range(1, count + 1))


@pytest.fixture(scope="module")
def app_log(system, tmp_path_factory):
    """A log with a rotated `.1` and a gzipped `.2.gz` sibling; 4 needles in all."""
    folder = tmp_path_factory.mktemp("searchlogs")
    live = folder / "app.log"
    live.write_text(numbered("live", 30, {7, 25}))
    (folder / "app.log.1").write_text(numbered("one", 20, {12}))
    with gzip.open(folder / "app.log.2.gz", "wt") as handle:
        handle.write(numbered("two", 10, {3}))
    return {"path": live, "id": system.add_log("app", live)}


def run_search(page, first, source, pattern, context="1", rotated=True):
    """Fill the search options of a pane and press Start."""
    first.locator(".source").select_option(source)
    first.locator(".kind-options[data-kind=tailf] input[name=search]").fill(pattern)
    first.locator(".kind-options[data-kind=tailf] input[name=context]").fill(context)
    first.locator(".kind-options[data-kind=tailf] input[name=rotated]").set_checked(rotated)
    first.locator(".start").click()


def test_search_shows_matches_of_rotated_files_jumps_and_opens_the_view_around(
        system, app_log, page):
    login(page, system.web.base_url, "admin", system.admin_password)
    first = pane(page)
    run_search(page, first, f"tailf:{app_log['id']}", "needle$")
    bar = first.locator(".search-bar")
    expect(bar).to_have_attribute("data-done", "true", timeout=15000)
    expect(first.locator(".search-summary")).to_contain_text("4 matches")
    expect(first.locator(".search-progress")).to_have_attribute("value", re.compile(r"^\d+$"))
    expect(first.locator(".status")).to_have_text(re.compile("^Stopped"), timeout=10000)

    rows = first.locator(".match-line")
    expect(rows).to_have_count(4)
    # Oldest file first, line numbers per file, each match tagged with its file.
    expect(first.locator(".match-line .file-tag")).to_have_text(
        ["app.log.2.gz", "app.log.1", "app.log", "app.log"])
    expect(first.locator(".match-line a.ln")).to_have_text(["3", "12", "7", "25"])
    expect(rows.nth(1)).to_contain_text("one 12 needle")
    # One dimmed context line on each side, numbered.
    context = first.locator(".match").nth(1).locator(".ctx")
    expect(context).to_have_text(["11one 11", "13one 13"])
    assert "search%3Dneedle" in page.url and "rotated%3D1" in page.url

    # Jump between matches: buttons and keys, wrapping around.
    first.locator(".match-next").click()
    expect(first.locator(".match-line.current a.ln")).to_have_text("3")
    page.keyboard.press("n")
    page.keyboard.press("n")
    expect(first.locator(".match-line.current a.ln")).to_have_text("7")
    expect(first.locator(".search-position")).to_have_text("match 3 of 4")
    page.keyboard.press("p")
    expect(first.locator(".match-line.current")).to_contain_text("one 12 needle")
    first.locator(".match-prev").click()
    first.locator(".match-prev").click()
    expect(first.locator(".match-line.current a.ln")).to_have_text("25")

    # Downloads: grep-like text and JSON.
    with page.expect_download() as download:
        first.locator(".download-text").click()
    assert download.value.suggested_filename.endswith(".txt")
    text = open(download.value.path()).read().splitlines()
    folder = str(app_log["path"].parent)
    assert f"{folder}/app.log.1:12:one 12 needle" in text
    assert f"{folder}/app.log.1-11-one 11" in text
    assert text.count("--") == 3
    with page.expect_download() as download:
        first.locator(".download-json").click()
    results = json.load(open(download.value.path()))
    assert [(r["file"].rsplit("/", 1)[1], r["line_no"]) for r in results] == [
        ("app.log.2.gz", 3), ("app.log.1", 12), ("app.log", 7), ("app.log", 25)]
    assert results[0]["before"] == ["two 2"] and results[0]["after"] == ["two 4"]

    # The link of a match opens the view around it in a new pane, the target marked.
    link = first.locator(".match-line a.ln").nth(1)
    href = link.get_attribute("href")
    assert "around%3D12" in href and "file%3Dapp.log.1" in href
    link.click()
    expect(page.locator(".pane")).to_have_count(2)
    second = pane(page, 1)
    expect(second.locator(".status")).to_have_text(re.compile("^Stopped"), timeout=15000)
    target = second.locator(".numbered.target")
    expect(target).to_have_count(1)
    expect(target).to_have_text("12one 12 needle")
    expect(target).to_have_attribute("aria-current", "true")
    expect(second.locator(".numbered .ln")).to_have_text([str(n) for n in range(1, 21)])
    expect(second.locator(".kind-options[data-kind=tailf] .around-chip")).to_have_text(re.compile("Around line 12 of app.log.1"))
    expect(target).to_be_in_viewport()

    # The page link reopens the search pane with its options.
    copy = page.context.new_page()
    copy.goto(page.url)
    reopened = pane(copy)
    expect(reopened.locator(".kind-options[data-kind=tailf] input[name=search]")).to_have_value("needle$")
    expect(reopened.locator(".kind-options[data-kind=tailf] input[name=rotated]")).to_be_checked()
    expect(reopened.locator(".kind-options[data-kind=tailf] input[name=context]")).to_have_value("1")
    expect(pane(copy, 1).locator(".kind-options[data-kind=tailf] input[name=around]")).to_have_value("12")
    copy.close()

    # Back to the live tail: the around view is cleared and a plain tail starts.
    second.locator(".kind-options[data-kind=tailf] .around-clear").click()
    expect(second.locator(".kind-options[data-kind=tailf] .around-chip")).to_be_hidden()
    second.locator(".start").click()
    expect(second.locator(".status")).to_have_text(re.compile("^Running on"), timeout=15000)
    expect(second.locator(".output .line:not(.numbered)").last).to_have_text("live 30")


def test_search_with_follow_goes_on_as_a_filtered_tail(system, app_log, page):
    login(page, system.web.base_url, "admin", system.admin_password)
    first = pane(page)
    first.locator(".kind-options[data-kind=tailf] input[name=follow]").check()
    run_search(page, first, f"tailf:{app_log['id']}", "needle", context="0", rotated=False)
    expect(first.locator(".search-bar")).to_have_attribute("data-done", "true", timeout=15000)
    expect(first.locator(".match-line a.ln")).to_have_text(["7", "25"])
    expect(first.locator(".status")).to_have_text(re.compile("^Running on"), timeout=10000)
    with open(app_log["path"], "a") as handle:
        handle.write("live 31\nlive 32 needle again\n")
    expect(first.locator(".output .line")).to_have_text(["live 32 needle again"])
    first.locator(".stop").click()
    expect(first.locator(".status")).to_have_text(re.compile("^Stopped"), timeout=5000)


def test_a_bad_search_pattern_is_refused_with_the_reason(system, app_log, page):
    login(page, system.web.base_url, "admin", system.admin_password)
    first = pane(page)
    run_search(page, first, f"tailf:{app_log['id']}", "(unclosed", rotated=False)
    expect(first.locator(".status")).to_have_attribute("data-state", "error", timeout=15000)
    expect(first.locator(".status .message")).to_contain_text("search is not a valid regular")
    expect(first.locator(".search-bar")).to_have_attribute("data-done", "false")


def test_close_matches_show_each_line_once_across_frames(system, page, tmp_path):
    # 700 matches go out in two frames (500 a frame): the last match of the first frame has
    # the first match of the second in its after-context.
    log = tmp_path / "dense.log"
    log.write_text(numbered("dense", 1400, set(range(2, 1401, 2))))
    source = system.add_log("dense", log)
    login(page, system.web.base_url, "admin", system.admin_password)
    first = pane(page)
    run_search(page, first, f"tailf:{source}", "needle$", context="2", rotated=False)
    expect(first.locator(".search-bar")).to_have_attribute("data-done", "true", timeout=15000)
    expect(first.locator(".match-line")).to_have_count(700)
    shown = [int(n) for n in first.locator(".match .ln").all_text_contents()]
    assert shown == list(range(1, 1401)), [n for i, n in enumerate(shown) if n != i + 1][:5]
