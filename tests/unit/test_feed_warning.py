"""The degraded-state warning: set from the first failure (with the next attempt's time),
reworded after repeated failures, set when gone, cleared on recovery."""

import pytest

from feeds.fetch import make_client
from feeds.reach import parse_allow
from feeds.upstream import FeedState, Upstream
from feeds.watch import WARN_AFTER_FAILURES, FeedGone, FeedWatcher
from tests.feedserver import LOCAL_FEEDS, Reply, fixture

URL = "https://feeds.example.test/feed.xml"
FEED = {"title": "t", "entries": [], "ttl": None, "bozo": ""}


class States:
    """Makes consecutive shared states for URL."""

    def __init__(self):
        self.seq = 0
        self.failures = 0

    def ok(self):
        self.seq, self.failures = self.seq + 1, 0
        return FeedState(url=URL, seq=self.seq, fetched_at=0.0, outcome="ok", feed=FEED)

    def error(self, message="HTTP 500 from " + URL):
        self.seq, self.failures = self.seq + 1, self.failures + 1
        return FeedState(url=URL, seq=self.seq, fetched_at=0.0, outcome="error", error=message,
                         failures=self.failures, retry_at=10.0)

    def gone(self):
        self.seq += 1
        return FeedState(url=URL, seq=self.seq, fetched_at=0.0, outcome="gone",
                         error=f"feed gone: {URL} answers HTTP 410 Gone", retry_at=900.0)


def warnings(viewer, states):
    """Accept each state; return [(warning, warning_changed)]."""
    return [(result.warning, result.warning_changed)
            for result in (viewer.accept(state, now=0.0) for state in states)]


def test_healthy_feed_has_no_warning():
    states, viewer = States(), FeedWatcher(URL)
    assert warnings(viewer, [states.ok(), states.ok()]) == [(None, False), (None, False)]
    assert viewer.warning is None


def test_warning_is_set_on_the_first_failure_with_the_retry_time_and_reworded_on_the_third():
    states, viewer = States(), FeedWatcher(URL)
    seen = warnings(viewer, [states.ok()] + [states.error() for _ in range(WARN_AFTER_FAILURES)])
    assert WARN_AFTER_FAILURES == 3
    assert seen[0] == (None, False)
    first, changed = seen[1]
    assert changed and first.code == "feed_unreachable"
    assert first == f"the feed cannot be fetched: HTTP 500 from {URL}; next attempt at " \
                    "00:00:10 UTC"
    assert seen[2] == (first, False)
    text, changed = seen[3]
    assert changed and text == viewer.warning and text.code == "feed_failing_retry"
    assert "3 or more times in a row" in text and f"HTTP 500 from {URL}" in text
    assert text.endswith("next attempt at 00:00:10 UTC")


def test_further_failures_with_the_same_error_do_not_repeat_the_warning():
    states, viewer = States(), FeedWatcher(URL)
    seen = warnings(viewer, [states.error() for _ in range(5)])
    assert [changed for _, changed in seen] == [True, False, True, False, False]


def test_a_different_last_error_updates_the_warning():
    states, viewer = States(), FeedWatcher(URL)
    warnings(viewer, [states.error() for _ in range(3)])
    text, changed = warnings(viewer, [states.error("timed out waiting for " + URL)])[0]
    assert changed and "last error: timed out waiting for " + URL in text


def test_the_next_good_fetch_clears_the_warning_once():
    states, viewer = States(), FeedWatcher(URL)
    warnings(viewer, [states.error() for _ in range(4)])
    assert warnings(viewer, [states.ok(), states.ok()]) == [(None, True), (None, False)]
    assert viewer.warning is None


def test_a_viewer_joining_a_failing_feed_gets_the_warning_at_once():
    states = States()
    for _ in range(6):
        state = states.error()
    result = FeedWatcher(URL).accept(state, now=0.0)
    assert result.warning and result.warning_changed


def test_looking_again_at_the_same_state_keeps_the_warning_unchanged():
    states, viewer = States(), FeedWatcher(URL)
    failing = [states.error() for _ in range(3)]
    warnings(viewer, failing)
    again = viewer.accept(failing[-1], now=0.0)
    assert again.warning == viewer.warning and not again.warning_changed


def test_a_gone_feed_sets_the_warning_and_ends_the_stream():
    states, viewer = States(), FeedWatcher(URL)
    viewer.accept(states.ok(), now=0.0)
    with pytest.raises(FeedGone, match="feed gone"):
        viewer.accept(states.gone(), now=0.0)
    assert viewer.warning == f"feed gone: {URL} answers HTTP 410 Gone"


async def test_warning_follows_real_failures_and_recovery_of_a_local_feed(feed_server):
    good = Reply(200, fixture("atom.xml"), {"Content-Type": "application/atom+xml"})
    url = feed_server.script("/f", Reply(500), Reply(500), Reply(502), good)
    viewer, state, seen = FeedWatcher(url), None, []
    async with make_client(allow=parse_allow(LOCAL_FEEDS)) as client:
        upstream = Upstream(client, rand=lambda: 0.0)
        for _ in range(4):
            state = await upstream.refresh(url, state, 5)
            result = viewer.accept(state, 5)
            seen.append((result.warning, result.warning_changed))
    # Each failure moves the next attempt (backoff), so the warning is new each time.
    assert [changed for _, changed in seen] == [True, True, True, True]
    assert seen[0][0].code == "feed_unreachable" and f"HTTP 500 from {url}" in seen[0][0]
    assert f"last error: HTTP 502 from {url}" in seen[2][0] and seen[3][0] is None
