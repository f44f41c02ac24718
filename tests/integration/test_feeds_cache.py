"""The shared upstream fetch on a real Redis: one request per URL per interval, any viewers."""

import asyncio

import pytest
import redis
import redis.asyncio as aioredis

from feeds.cache import SharedFeed
from feeds.fetch import make_client
from feeds.reach import parse_allow
from feeds.upstream import Upstream
from tests.clocks import HandClock
from tests.feedserver import LOCAL_FEEDS, Reply, fixture

pytestmark = pytest.mark.sqlite_only  # engine tests: see tests/integration/conftest.py

ATOM = {"Content-Type": "application/atom+xml"}


@pytest.fixture
async def setup(redis_server, feed_server):
    """(server, clock, make_shared) with the session's Redis flushed (tests/conftest.py);
    make_shared() is one viewer's side."""
    redis.Redis.from_url(redis_server).flushdb()
    server = feed_server
    clock = HandClock()
    client = make_client(allow=parse_allow(LOCAL_FEEDS))
    connections = []

    def make_shared(**kwargs):
        connection = aioredis.Redis.from_url(redis_server)
        connections.append(connection)
        return SharedFeed(connection, Upstream(client, clock=clock, rand=lambda: 0.5),
                          clock=clock, wait_step=0.02, **kwargs)

    yield server, clock, make_shared
    for connection in connections:
        await connection.aclose()
    await client.aclose()
    redis.Redis.from_url(redis_server).flushdb()


async def test_ten_viewers_make_one_upstream_request_per_interval(setup):
    server, clock, make_shared = setup
    url = server.script("/f", Reply(200, fixture("atom.xml"), ATOM, delay=0.3))
    viewers = [make_shared() for _ in range(10)]
    states = await asyncio.gather(*(viewer.current(url, 5) for viewer in viewers))
    assert len(server.hits("/f")) == 1
    assert {state.seq for state in states} == {1}
    clock.now += 4.9
    await asyncio.gather(*(viewer.current(url, 5) for viewer in viewers))
    assert len(server.hits("/f")) == 1
    clock.now += 0.1
    states = await asyncio.gather(*(viewer.current(url, 5) for viewer in viewers))
    assert len(server.hits("/f")) == 2
    assert {state.seq for state in states} == {2}


async def test_a_viewer_joining_within_the_interval_gets_the_cached_fetch(setup):
    server, clock, make_shared = setup
    url = server.script("/f", Reply(200, fixture("atom.xml"), ATOM))
    first = await make_shared().current(url, 60)
    clock.now += 30
    late = await make_shared().current(url, 60)
    assert late == first and len(server.hits("/f")) == 1


async def test_the_next_fetch_is_conditional_on_the_shared_validators(setup):
    server, clock, make_shared = setup
    url = server.script("/f", Reply(200, fixture("atom.xml"), {**ATOM, "ETag": '"e1"'}),
                        Reply(304, headers={"ETag": '"e1"'}))
    await make_shared().current(url, 5)
    clock.now += 5
    state = await make_shared().current(url, 5)
    assert state.not_modified and state.feed["entries"]
    assert server.hits("/f")[1].headers["if-none-match"] == '"e1"'


async def test_a_failure_and_its_backoff_are_shared_by_all_viewers(setup):
    server, clock, make_shared = setup
    url = server.script("/f", Reply(503, delay=0.2))
    viewers = [make_shared() for _ in range(10)]
    states = await asyncio.gather(*(viewer.current(url, 5) for viewer in viewers))
    assert len(server.hits("/f")) == 1
    assert {state.outcome for state in states} == {"error"}
    wait = states[0].retry_at - states[0].finished_at
    clock.now += wait - 0.1
    await asyncio.gather(*(viewer.current(url, 5) for viewer in viewers))
    assert len(server.hits("/f")) == 1
    clock.now += 0.1
    states = await asyncio.gather(*(viewer.current(url, 5) for viewer in viewers))
    assert len(server.hits("/f")) == 2 and states[0].failures == 2


async def test_viewers_of_different_urls_do_not_share(setup):
    server, clock, make_shared = setup
    one = server.script("/one", Reply(200, fixture("atom.xml"), ATOM))
    two = server.script("/two", Reply(200, fixture("rdf.xml"), ATOM))
    shared = make_shared()
    first, second = await asyncio.gather(shared.current(one, 5), shared.current(two, 5))
    assert first.feed["title"] == "Ops journal" and second.feed["title"] == "RDF news"


async def test_a_lock_left_by_a_dead_holder_expires(setup, redis_server):
    server, clock, make_shared = setup
    url = server.script("/f", Reply(200, fixture("atom.xml"), ATOM))
    shared = make_shared(lock_seconds=1)
    redis.Redis.from_url(redis_server).set(shared.key(url) + ":lock", "someone-else", px=500)
    state = await asyncio.wait_for(shared.current(url, 5), 5)
    assert state.outcome == "ok" and len(server.hits("/f")) == 1


async def test_a_permanent_redirect_is_also_stored_under_the_new_url(setup):
    server, clock, make_shared = setup
    new = server.script("/new", Reply(200, fixture("atom.xml"), ATOM))
    old = server.script("/old", Reply(308, headers={"Location": "/new"}))
    shared = make_shared()
    state = await shared.current(old, 5)
    assert state.moved_to == new
    moved = await shared.current(new, 5)
    assert moved.url == new and moved.moved_to is None and moved.feed == state.feed
    assert [hit.path for hit in server.log] == ["/old", "/new"]
