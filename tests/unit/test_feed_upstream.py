"""Conditional fetch + parse into a shared state, and how one viewer reads those states."""

import email.utils
import logging
import time

import pytest

from feeds import upstream as shared
from feeds.fetch import make_client
from feeds.reach import parse_allow
from feeds.upstream import FeedState, Upstream, backoff_delay, retry_after
from feeds.watch import FeedGone, FeedWatcher
from tests.clocks import HandClock
from tests.feedserver import LOCAL_FEEDS, Reply, fixture

RSS_TYPE = {"Content-Type": "application/rss+xml"}


@pytest.fixture
def server(feed_server):
    """The shared scripted local feed server (tests/conftest.py)."""
    return feed_server


@pytest.fixture
async def upstream():
    """An Upstream on a fresh client, with jitter fixed at its midpoint."""
    async with make_client(allow=parse_allow(LOCAL_FEEDS)) as client:
        yield Upstream(client, rand=lambda: 0.5)


def ok(body=None, **headers):
    """A 200 reply with the RSS fixture (or body) and extra headers."""
    return Reply(200, body if body is not None else fixture("rss2.xml"), {**RSS_TYPE, **headers})


async def test_etag_and_last_modified_are_stored_and_sent_back_independently(server, upstream):
    stamp = "Mon, 01 Jan 2024 10:00:00 GMT"
    url = server.script("/f", ok(**{"Last-Modified": stamp}), ok(ETag='"v2"'), ok())
    first = await upstream.refresh(url, None, 60)
    assert (first.etag, first.last_modified) == (None, stamp)
    second = await upstream.refresh(url, first, 60)
    assert (second.etag, second.last_modified) == ('"v2"', None)
    third = await upstream.refresh(url, second, 60)
    sent = [hit.headers for hit in server.hits("/f")]
    assert "if-none-match" not in sent[0] and "if-modified-since" not in sent[0]
    assert sent[1]["if-modified-since"] == stamp and "if-none-match" not in sent[1]
    assert sent[2]["if-none-match"] == '"v2"' and "if-modified-since" not in sent[2]
    assert (third.etag, third.last_modified) == (None, None)


async def test_etag_304_cycle_keeps_the_entries_and_sends_nothing_twice(server, upstream):
    server.raw = fixture("rss2.xml")
    server.etag = True
    viewer = FeedWatcher(server.url, first_entries=10)
    first = await upstream.refresh(server.url, None, 60)
    assert len(viewer.accept(first).entries) == 3
    second = await upstream.refresh(server.url, first, 60)
    assert second.not_modified and second.outcome == "ok"
    assert second.feed == first.feed and second.etag == first.etag
    assert viewer.accept(second).entries == []
    hits = server.hits()
    assert hits[1].headers["if-none-match"] == first.etag
    server.raw = fixture("rss2.xml").replace(b"<item>", b"<item><guid>rel-1.3</guid>"
                                             b"<title>Release 1.3</title></item><item>", 1)
    third = await upstream.refresh(server.url, second, 60)
    assert not third.not_modified and third.etag != first.etag
    assert [e["title"] for e in viewer.accept(third).entries] == ["Release 1.3"]


async def test_410_ends_the_stream_as_feed_gone(server, upstream):
    url = server.script("/gone", Reply(410))
    state = await upstream.refresh(url, None, 60)
    assert state.outcome == "gone"
    assert state.due_at(60) - state.finished_at == shared.GONE_HOLD
    with pytest.raises(FeedGone, match="feed gone"):
        FeedWatcher(url).accept(state)


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_in_seconds_is_obeyed(server, upstream, status):
    url = server.script("/busy", Reply(status, headers={"Retry-After": "120"}))
    state = await upstream.refresh(url, None, 60)
    assert state.outcome == "error" and f"HTTP {status}" in state.error
    assert state.retry_at - state.finished_at == 120
    notices = FeedWatcher(url).accept(state, now=state.finished_at).notices
    assert notices == [f"HTTP {status} from {url}: the server asks to wait; "
                       "next attempt in 120 s"]


async def test_retry_after_as_an_http_date_is_obeyed(server, upstream):
    when = email.utils.formatdate(time.time() + 300, usegmt=True)
    url = server.script("/busy", Reply(429, headers={"Retry-After": when}))
    state = await upstream.refresh(url, None, 60)
    assert 295 <= state.retry_at - state.finished_at <= 301


@pytest.mark.parametrize("value,wait", [("0", 60), ("86400", 3600), ("-5", None),
                                        ("soon", None)])
async def test_retry_after_is_kept_between_the_interval_and_one_hour(server, upstream, value,
                                                                     wait):
    url = server.script("/busy", Reply(429, headers={"Retry-After": value}))
    state = await upstream.refresh(url, None, 60)
    expected = wait if wait is not None else backoff_delay(1, 60, lambda: 0.5)
    assert state.retry_at - state.finished_at == expected


def test_retry_after_parses_seconds_and_http_dates():
    now = time.time()
    assert retry_after("30", now) == 30
    assert 59 <= retry_after(email.utils.formatdate(now + 60, usegmt=True), now) <= 61
    assert retry_after(email.utils.formatdate(now - 60, usegmt=True), now) == 0
    assert retry_after("", now) is None and retry_after("later", now) is None


def test_backoff_doubles_with_jitter_and_stops_at_15_minutes():
    low = [backoff_delay(n, 10, lambda: 0.0) for n in range(1, 9)]
    high = [backoff_delay(n, 10, lambda: 1.0) for n in range(1, 9)]
    assert low == [10, 20, 40, 80, 160, 320, 640, 900]
    assert high == [12.5, 25, 50, 100, 200, 400, 800, 900]
    assert backoff_delay(50, 10, lambda: 1.0) == 900
    assert backoff_delay(1, 1, lambda: 0.0) == 5
    assert backoff_delay(3, 3600, lambda: 0.0) == 3600


async def test_each_failure_and_the_recovery_are_notices(server, upstream):
    url = server.script("/flaky", Reply(500), Reply(502), ok(fixture("atom.xml")))
    viewer = FeedWatcher(url, first_entries=1)
    states, notices = [], []
    for _ in range(3):
        states.append(await upstream.refresh(url, states[-1] if states else None, 10))
        result = viewer.accept(states[-1], 10, now=states[-1].finished_at)
        notices.extend(result.notices)
    assert [state.failures for state in states] == [1, 2, 0]
    assert states[1].retry_at - states[1].finished_at == backoff_delay(2, 10, lambda: 0.5)
    assert notices == [f"HTTP 500 from {url}; next attempt in 11 s",
                       f"HTTP 502 from {url}; next attempt in 22 s",
                       "the feed answers again after 2 failed attempts"]
    assert [e["title"] for e in result.entries] == ["Database failover done"]
    assert viewer.accept(states[-1]).notices == []


async def test_fetch_error_keeps_the_last_good_copy_and_its_validators(server, upstream):
    url = server.script("/f", ok(ETag='"a"'), Reply(500), Reply(304, headers={"ETag": '"a"'}))
    first = await upstream.refresh(url, None, 60)
    failed = await upstream.refresh(url, first, 60)
    assert failed.outcome == "error" and failed.feed == first.feed and failed.etag == '"a"'
    back = await upstream.refresh(url, failed, 60)
    assert back.outcome == "ok" and back.not_modified and back.feed == first.feed
    assert server.hits("/f")[2].headers["if-none-match"] == '"a"'


async def test_interval_is_the_sources_and_never_below_5_s(server, upstream):
    url = server.script("/f", ok(fixture("atom.xml")))
    state = await upstream.refresh(url, None, 1)
    assert state.due_at(1) - state.fetched_at == 5
    assert state.due_at(42) - state.fetched_at == 42


async def test_cache_control_max_age_stretches_the_interval(server, upstream):
    url = server.script("/f", ok(fixture("atom.xml"), **{"Cache-Control": "public, max-age=300"}))
    state = await upstream.refresh(url, None, 60)
    assert state.due_at(60) - state.fetched_at == 300
    assert state.due_at(600) - state.fetched_at == 600
    viewer = FeedWatcher(url)
    assert viewer.accept(state, 60).notices == [
        "the feed asks not to be fetched more often than every 300 s (Cache-Control max-age "
        "/ ttl); polling every 300 s"]


async def test_rss_ttl_stretches_the_interval(server, upstream):
    url = server.script("/f", ok())
    state = await upstream.refresh(url, None, 10)
    assert state.due_at(10) - state.fetched_at == 60


async def test_server_hints_are_capped_at_one_hour(server, upstream):
    url = server.script("/f", ok(fixture("atom.xml"), **{"Cache-Control": "max-age=604800"}))
    state = await upstream.refresh(url, None, 60)
    assert state.due_at(60) - state.fetched_at == 3600


async def test_bozo_feed_with_entries_is_used_with_one_notice(server, upstream):
    url = server.script("/broken", ok(fixture("malformed.xml")))
    viewer = FeedWatcher(url)
    state = await upstream.refresh(url, None, 60)
    result = viewer.accept(state)
    assert [e["title"] for e in result.entries] == ["First bold", "Second"]
    assert len(result.notices) == 1 and "not entirely valid" in result.notices[0]
    again = await upstream.refresh(url, state, 60)
    assert viewer.accept(again).notices == []


async def test_unparseable_body_is_a_failure_with_backoff(server, upstream):
    url = server.script("/html", Reply(200, b"<html><p>maintenance</p>",
                                       {"Content-Type": "text/html"}))
    state = await upstream.refresh(url, None, 60)
    assert state.outcome == "error" and "could not be parsed" in state.error
    assert state.retry_at - state.finished_at == backoff_delay(1, 60, lambda: 0.5)


async def test_permanent_redirect_is_used_for_the_rest_of_the_stream(server, upstream, caplog):
    new = server.script("/new", ok(fixture("atom.xml")))
    old = server.script("/old", Reply(301, headers={"Location": "/new"}))
    viewer = FeedWatcher(old)
    state = await upstream.refresh(viewer.url, None, 60)
    logger = logging.getLogger("tailboard.feeds")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level("INFO", logger="tailboard.feeds"):
            result = viewer.accept(state, 60)
    finally:
        logger.removeHandler(caplog.handler)
    assert state.moved_to == new and viewer.url == new
    assert result.notices == [f"the feed has moved permanently to {new}; using the new "
                              "address from now on"]
    assert "moved permanently" in caplog.text
    await upstream.refresh(viewer.url, state, 60)
    assert [hit.path for hit in server.log] == ["/old", "/new", "/new"]


async def test_temporary_redirect_keeps_the_original_address(server, upstream):
    server.script("/elsewhere", ok())
    old = server.script("/tmp", Reply(307, headers={"Location": "/elsewhere"}))
    viewer = FeedWatcher(old)
    viewer.accept(await upstream.refresh(old, None, 60))
    assert viewer.url == old


def test_state_from_another_version_is_read_leniently_or_not_at_all():
    state = FeedState(url="https://x.test/", seq=3, fetched_at=1.0, outcome="ok", feed=None)
    assert FeedState.from_json(state.to_json()) == state
    extra = state.to_json()[:-1] + ', "added_later": 1}'
    assert FeedState.from_json(extra) == state
    assert FeedState.from_json('{"url": "https://x.test/"}') is None
    assert FeedState.from_json("not json") is None


async def test_304_without_cache_control_keeps_the_earlier_max_age(server, upstream):
    url = server.script("/f", ok(fixture("atom.xml"), ETag='"a"',
                                 **{"Cache-Control": "max-age=120"}),
                        Reply(304, headers={"ETag": '"a"'}))
    first = await upstream.refresh(url, None, 60)
    second = await upstream.refresh(url, first, 60)
    assert second.not_modified and second.due_at(60) - second.fetched_at == 120


@pytest.mark.parametrize("reply, wait", [
    (Reply(500), backoff_delay(1, 10, lambda: 0.5)),
    (Reply(503, headers={"Retry-After": "40"}), 40),
    (Reply(410), shared.GONE_HOLD),
    (Reply(200, b"<html>not a feed</html>", {"Content-Type": "text/html"}),
     backoff_delay(1, 10, lambda: 0.5)),
], ids=["error", "retry-after", "gone", "unparseable"])
async def test_retry_is_measured_from_the_end_of_a_slow_failed_attempt(server, reply, wait):
    clock = HandClock()

    def slow(request):
        clock.now += 30
        return reply

    url = server.script("/slow", slow)
    async with make_client(allow=parse_allow(LOCAL_FEEDS)) as client:
        state = await Upstream(client, clock=clock, rand=lambda: 0.5).refresh(url, None, 10)
    assert state.outcome != "ok"
    assert (state.fetched_at, state.finished_at) == (1_000_000.0, 1_000_030.0)
    assert state.retry_at == 1_000_030.0 + wait == state.due_at(10)


@pytest.mark.parametrize("reply, deadline", [(Reply(hang=True), 0.6), (Reply(500, delay=0.6), 5)],
                         ids=["timed-out", "slow-error"])
async def test_next_attempt_after_a_slow_failure_is_a_full_backoff_away(server, reply, deadline):
    url = server.script("/slow", reply)
    async with make_client(allow=parse_allow(LOCAL_FEEDS)) as client:
        upstream = Upstream(client, deadline=deadline, rand=lambda: 0.0)
        state = await upstream.refresh(url, None, 5)
    ended = time.time()
    assert state.outcome == "error" and state.finished_at - state.fetched_at >= 0.55
    assert state.retry_at == state.finished_at + 5
    assert FeedWatcher(url).wait_seconds(state, 5, now=ended) >= 4.9
