"""The alert matcher: threshold within a window, cooldown with a suppressed count, resolution."""

import re
import tracemalloc

from alerts.matcher import Firing, Matcher, Resolved, line_search
from tailf.options import compile_grep
from tests.clocks import HandClock


def matcher(clock, **options):
    return Matcher(re.compile("ERROR").search, clock=clock, **options)


def test_one_match_fires_with_its_line_as_sample():
    clock = HandClock(1000.0)
    events = matcher(clock).feed(["ok", "ERROR disk full", "ok"])
    assert events == [Firing(1, 0, ("ERROR disk full",))]


def test_threshold_needs_that_many_matches_within_the_window():
    clock = HandClock(1000.0)
    rule = matcher(clock, threshold=3, window=10)
    assert rule.feed(["ERROR 1", "ERROR 2"]) == []
    clock.now += 11  # the first two fall out of the window
    assert rule.feed(["ERROR 3"]) == []
    clock.now += 1
    events = rule.feed(["ERROR 4", "ERROR 5"])
    assert events == [Firing(3, 0, ("ERROR 3", "ERROR 4", "ERROR 5"))]


def test_cooldown_counts_suppressed_matches_and_reports_them_next_time():
    clock = HandClock(1000.0)
    rule = matcher(clock, cooldown=300)
    assert len(rule.feed(["ERROR a"])) == 1
    clock.now += 100
    assert rule.feed(["ERROR b", "ERROR c", "fine"]) == []
    clock.now += 201
    assert rule.feed(["ERROR d"]) == [Firing(1, 2, ("ERROR d",))]


def test_every_line_matching_sends_one_alert_per_cooldown():
    clock = HandClock(1000.0)
    rule = matcher(clock, cooldown=60)
    fired = []
    for second in range(600):
        clock.now = 1000 + second
        fired += rule.feed(["ERROR flood"] * 1000)
    assert len(fired) == 10
    assert fired[1].suppressed == 60 * 1000 - 1
    assert len(rule.buckets) <= 61  # memory bounded by the window, not the rate


def test_samples_are_at_most_five_lines():
    clock = HandClock(1000.0)
    rule = matcher(clock, threshold=8, window=60)
    events = rule.feed([f"ERROR {n}" for n in range(8)])
    assert events[0].samples == tuple(f"ERROR {n}" for n in range(3, 8))


def test_a_thresholded_rule_resolves_once_a_window_is_quiet():
    clock = HandClock(1000.0)
    rule = matcher(clock, threshold=2, window=30, cooldown=10, resolve=True)
    assert len(rule.feed(["ERROR", "ERROR"])) == 1
    clock.now += 15
    rule.feed(["ERROR"])  # one match in the window: under the threshold, cooldown over
    assert rule.tick() is None  # a window has not passed since the firing
    clock.now += 20
    assert rule.tick() is None  # still one match within the last 30 s
    clock.now += 20
    assert rule.tick() == Resolved(0)
    assert rule.tick() is None  # said once


def test_no_resolution_without_the_option_or_before_a_firing():
    clock = HandClock(1000.0)
    rule = matcher(clock, threshold=2, window=5, resolve=False)
    rule.feed(["ERROR", "ERROR"])
    clock.now += 100
    assert rule.tick() is None
    quiet = matcher(clock, threshold=2, window=5, resolve=True)
    clock.now += 100
    assert quiet.tick() is None


def test_resolution_reports_matches_suppressed_in_the_cooldown():
    clock = HandClock(1000.0)
    rule = matcher(clock, threshold=2, window=5, cooldown=100, resolve=True)
    rule.feed(["ERROR", "ERROR", "ERROR"])
    clock.now += 50
    assert rule.tick() == Resolved(1)


def test_a_batch_fires_at_most_once_even_without_cooldown():
    clock = HandClock(1000.0)
    rule = matcher(clock, cooldown=0)
    events = rule.feed(["ERROR"] * 10_000)
    assert events == [Firing(1, 0, ("ERROR",))]
    assert rule.feed(["ERROR next"]) == [Firing(10_001, 9_999, ("ERROR next",))]


HOSTILE_LINES = ["", "ERROR", "error", "an ERROR here", "ÉRROR é", "日本語 ERROR 日本",
                 "tab\tERROR", "ERROR\r", "x" * 70_000 + "ERROR", "\x00ERROR\x00", "end ERROR"]
HOSTILE_PATTERNS = ["ERROR", "^ERROR$", "^ERROR", "ERROR$", "(?i)error", "É", "本.E", "\\bERROR\\b",
                    "", "\\x00", "[^A-Z]ERROR", "ERROR\\s*$"]


def test_line_search_finds_exactly_what_the_re2_search_finds():
    for pattern in HOSTILE_PATTERNS:
        regexp = compile_grep(pattern, "pattern")
        found = line_search(regexp)
        for line in HOSTILE_LINES:
            assert bool(found(line)) == bool(regexp.search(line)), (pattern, line)


def test_a_flood_is_tested_with_one_call_into_re2_per_line():
    """On the pinned binding the rule tests lines without RE2's Python match objects (what
    this costs is measured by bench/alert_bench.py); every line of a flood is counted."""
    regexp = compile_grep("x", "pattern")
    search = line_search(regexp)
    assert search != regexp.search, "line_search fell back to re2's search"
    rule = Matcher(search, cooldown=60, clock=HandClock(1000.0))
    lines = [f"{n:012d} {'x' * 80}" for n in range(20_000)]
    for start in range(0, len(lines), 5000):
        rule.feed(lines[start:start + 5000])
    assert rule.matches_seen == len(lines)


def test_a_floods_memory_stays_constant():
    """Ten minutes of 1,000 distinct matching lines a second: what the matcher holds after
    ten minutes is what it held after one (buckets of the window, five samples)."""
    clock = HandClock(1000.0)
    rule = Matcher(line_search(compile_grep("ERROR", "pattern")), window=60, cooldown=30,
                   clock=clock)
    tracemalloc.start()
    try:
        held = []
        for second in range(600):
            clock.now = 1000 + second
            rule.feed([f"ERROR {second} {n} {'y' * 100}" for n in range(1000)])
            if second in (60, 599):
                held.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert len(rule.buckets) <= 61 and len(rule.samples) <= 5
    assert rule.matches_seen == 600_000 and rule.suppressed > 0
    assert held[1] - held[0] < 16 * 1024, held
