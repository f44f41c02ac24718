"""One polite GET: timeouts, size caps (gzip bombs too), redirects, schemes, User-Agent."""

import gzip
import time
import tracemalloc
import zlib

import pytest

from feeds import fetch as fetching
from feeds.fetch import FetchError, fetch, make_client
from feeds.reach import parse_allow
from tests.feedserver import LOCAL_FEEDS, Reply

RSS = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
       b"<item><guid>1</guid><title>one</title></item></channel></rss>")


@pytest.fixture
def server(feed_server):
    """The shared scripted local feed server (tests/conftest.py)."""
    return feed_server


async def get(url, **kwargs):
    """Fetch once with a fresh client."""
    async with make_client(read_timeout=kwargs.pop("read_timeout", 15.0),
                           allow=parse_allow(LOCAL_FEEDS)) as client:
        return await fetch(client, url, **kwargs)


async def test_request_carries_an_honest_user_agent_and_feed_accept_header(server):
    url = server.script("/f", Reply(200, RSS))
    fetched = await get(url)
    assert fetched.status == 200 and fetched.body == RSS
    sent = server.hits("/f")[0].headers
    assert sent["user-agent"].startswith("Tailboard/") and "feed watcher" in sent["user-agent"]
    assert "application/rss+xml" in sent["accept"]
    assert sent["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in sent and "if-modified-since" not in sent


async def test_cookies_set_by_the_server_are_not_sent_back(server):
    url = server.script("/c", Reply(200, RSS, {"Set-Cookie": "track=1; Path=/"}))
    async with make_client(allow=parse_allow(LOCAL_FEEDS)) as client:
        await fetch(client, url)
        await fetch(client, url)
    assert all("cookie" not in hit.headers for hit in server.hits("/c"))


def test_client_connects_within_5_s_and_reads_within_15_s():
    client = make_client()
    assert client.timeout.connect == 5.0
    assert client.timeout.read == 15.0
    assert client.follow_redirects is False
    assert fetching.MAX_REDIRECTS == 5 and fetching.MAX_BYTES == 5 * 1024 * 1024


async def test_server_that_never_answers_times_out(server):
    url = server.script("/hang", Reply(hang=True))
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        await get(url, read_timeout=0.5)
    assert time.monotonic() - started < 5


async def test_overall_deadline_bounds_a_fetch_even_within_the_read_timeout(server):
    url = server.script("/slow", Reply(hang=True))
    started = time.monotonic()
    with pytest.raises(FetchError, match="gave up"):
        await get(url, read_timeout=30, deadline=0.5)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "until-close"])
async def test_body_over_the_cap_is_refused(server, length):
    url = server.script("/big", Reply(200, b"x" * (5 * 1024 * 1024 + 1), length=length))
    with pytest.raises(FetchError, match="larger than 5120 KiB"):
        await get(url)


async def test_body_at_the_cap_is_read(server):
    url = server.script("/edge", Reply(200, b"x" * 4096))
    assert len((await get(url, max_bytes=4096)).body) == 4096


async def test_gzip_bomb_is_cut_at_the_cap_of_decoded_bytes(server):
    bomb = gzip.compress(b"\0" * (200 * 1024 * 1024), 9)
    assert len(bomb) < 300 * 1024
    url = server.script("/bomb", Reply(200, bomb, {"Content-Encoding": "gzip"}))
    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match="after decompression"):
            await get(url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * fetching.MAX_BYTES


@pytest.mark.parametrize("encoding,encode", [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("deflate", lambda data: zlib.compress(data)[2:-4]),
], ids=["gzip", "deflate-zlib", "deflate-raw"])
async def test_compressed_feed_is_decoded(server, encoding, encode):
    url = server.script("/z", Reply(200, encode(RSS), {"Content-Encoding": encoding}))
    assert (await get(url)).body == RSS


async def test_corrupt_gzip_is_a_fetch_error(server):
    url = server.script("/bad", Reply(200, b"not gzip at all", {"Content-Encoding": "gzip"}))
    with pytest.raises(FetchError, match="corrupt"):
        await get(url)


@pytest.mark.parametrize("code", [301, 308])
async def test_permanent_redirect_is_followed_and_reported_as_moved(server, code):
    server.script("/new", Reply(200, RSS))
    url = server.script("/old", Reply(code, headers={"Location": "/new"}))
    fetched = await get(url)
    assert fetched.status == 200 and fetched.body == RSS
    assert fetched.url == fetched.moved_to == server.base + "/new"


async def test_temporary_redirect_is_followed_but_not_remembered(server):
    server.script("/here", Reply(200, RSS))
    url = server.script("/tmp", Reply(302, headers={"Location": server.base + "/here"}))
    fetched = await get(url)
    assert fetched.url == server.base + "/here" and fetched.moved_to is None


async def test_only_the_permanent_part_of_a_redirect_chain_counts_as_moved(server):
    server.script("/c", Reply(200, RSS))
    server.script("/b", Reply(307, headers={"Location": "/c"}))
    url = server.script("/a", Reply(301, headers={"Location": "/b"}))
    fetched = await get(url)
    assert fetched.url == server.base + "/c" and fetched.moved_to == server.base + "/b"


async def test_five_redirects_are_followed_and_a_sixth_is_refused(server):
    server.script("/r5", Reply(200, RSS))
    for hop in range(5):
        server.script(f"/r{hop}", Reply(302, headers={"Location": f"/r{hop + 1}"}))
    assert (await get(server.base + "/r0")).status == 200
    server.script("/s6", Reply(200, RSS))
    for hop in range(6):
        server.script(f"/s{hop}", Reply(302, headers={"Location": f"/s{hop + 1}"}))
    with pytest.raises(FetchError, match="more than 5 redirects"):
        await get(server.base + "/s0")
    assert not server.hits("/s6")


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/feed.xml",
                                    "javascript:alert(1)", "gopher://127.0.0.1/"])
async def test_redirect_to_a_non_http_scheme_is_refused(server, target):
    url = server.script("/jump", Reply(301, headers={"Location": target}))
    with pytest.raises(FetchError, match="only http and https"):
        await get(url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/feed.xml",
                                 "/etc/passwd", "http://"])
async def test_non_http_feed_url_is_refused(url):
    with pytest.raises(FetchError, match="only http and https"):
        await get(url)


async def test_error_status_is_returned_without_reading_the_body(server):
    url = server.script("/err", Reply(500, b"x" * (6 * 1024 * 1024)))
    fetched = await get(url)
    assert fetched.status == 500 and fetched.body == b""


async def test_refused_connection_is_a_fetch_error():
    from webapp.embedded import free_port

    with pytest.raises(FetchError, match="could not fetch"):
        await get(f"http://127.0.0.1:{free_port()}/feed.xml")
