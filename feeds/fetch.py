"""One polite GET of a feed: timeouts, a streamed size cap on decoded bytes, manual redirects.

`fetch()` follows redirects by hand (at most `MAX_REDIRECTS`, http/https only), sends the
conditional headers, reads only 2xx bodies and never more than `MAX_BYTES` after
decompression (gzip bombs included). Every failure worth retrying is a `FetchError`
whose message is shown to the viewer.
"""

import asyncio
import dataclasses
import http.cookiejar
import zlib
from urllib.parse import urljoin, urlsplit

import httpx

from feeds.pinning import (
    AFTER_PUBLIC,
    REACHED_PUBLIC,
    AddressRefused,
    HostUnresolvable,
    PinnedTransport,
)

USER_AGENT = ("Tailboard/1.0 feed watcher (polls only while someone has the feed open; "
              "honours ETag, Last-Modified, Cache-Control, ttl and Retry-After)")
ACCEPT = ("application/rss+xml, application/atom+xml, application/rdf+xml, "
          "application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5")
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 15.0
FETCH_DEADLINE = 60.0
MAX_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
REDIRECT_CODES = (301, 302, 303, 307, 308)
PERMANENT_CODES = (301, 308)
KEPT_HEADERS = ("content-type", "etag", "last-modified", "cache-control", "retry-after")


class FetchError(Exception):
    """A fetch or parse failed in a way worth retrying; the message is shown to the viewer."""


@dataclasses.dataclass
class Fetched:
    """One HTTP answer: status, decoded body, kept headers, final URL, permanent new URL."""

    status: int
    body: bytes
    headers: dict
    url: str
    moved_to: str | None = None


def is_http_url(url):
    """Tell whether a URL is absolute http(s) with a host (and one httpx accepts)."""
    try:
        parts = urlsplit(url)
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def refuse(url):
    """Return the error for an address that is not http(s)."""
    return FetchError(f"refusing to fetch {url[:200]!r}: only http and https addresses are "
                      "allowed")


def make_client(read_timeout=READ_TIMEOUT, connect_timeout=CONNECT_TIMEOUT, allow=None,
                resolver=None, is_public=None, verify=True):
    """Return the HTTP client for feed fetches: timeouts, manual redirects, no env proxies
    or netrc, a cookie jar that keeps nothing, and connections only to addresses checked
    against the SSRF rule (`feeds.reach`, applied by `feeds.pinning`). `allow` is the
    parsed allow-list of internal hosts and networks (`reach.parse_allow`; none by
    default: only public addresses); `resolver`, `is_public` and `verify` are passed to the
    transport, the defaults being the system resolver and globally routable addresses."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout),
        follow_redirects=False, trust_env=False,
        transport=PinnedTransport(allow=allow, resolver=resolver, is_public=is_public,
                                  verify=verify),
        cookies=http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[])),
        headers={"User-Agent": USER_AGENT, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"})


class CappedBody:
    """Collects a response body, decompressing gzip/deflate itself, never past `limit` bytes."""

    def __init__(self, encoding, limit):
        self.limit = limit
        self.data = bytearray()
        self.encoding = encoding
        if encoding in ("", "identity"):
            self.inflater = None
        elif encoding in ("gzip", "x-gzip"):
            self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self.inflater = zlib.decompressobj()
        else:
            raise FetchError(f"the server used an unsupported Content-Encoding {encoding!r}")

    def feed(self, chunk):
        """Add raw bytes; raise FetchError once the decoded body exceeds the limit."""
        if self.inflater is None:
            self._add(chunk)
            return
        try:
            while chunk:
                self._add(self.inflater.decompress(chunk, self.limit - len(self.data) + 1))
                chunk = self.inflater.unconsumed_tail
        except zlib.error:
            if self.encoding == "deflate" and not self.data:
                self.encoding = "raw deflate"
                self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                self.feed(chunk)
                return
            raise FetchError("the feed's compressed body is corrupt") from None

    def _add(self, data):
        self.data += data
        if len(self.data) > self.limit:
            raise FetchError(f"the feed is larger than {self.limit // 1024} KiB "
                             "(after decompression); not reading further")

    def finish(self):
        """Return the decoded body."""
        if self.inflater is not None:
            try:
                self._add(self.inflater.flush())
            except zlib.error:
                raise FetchError("the feed's compressed body is corrupt") from None
        return bytes(self.data)


async def read_body(response, limit):
    """Stream a response body with a cap on raw and on decoded bytes."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    body = CappedBody(encoding, limit)
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise FetchError(f"the feed is larger than {limit // 1024} KiB "
                         f"(Content-Length {length}); not reading it")
    raw = 0
    async for chunk in response.aiter_raw():
        raw += len(chunk)
        if raw > limit:
            raise FetchError(f"the feed is larger than {limit // 1024} KiB; not reading further")
        body.feed(chunk)
    return body.finish()


def conditional_headers(etag, last_modified):
    """Return the If-None-Match / If-Modified-Since headers for the validators we have."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


async def fetch(client, url, etag=None, last_modified=None, max_bytes=MAX_BYTES,
                max_redirects=MAX_REDIRECTS, deadline=FETCH_DEADLINE):
    """GET a feed politely; return a `Fetched` for any HTTP status, raise FetchError otherwise.

    Redirects are followed by hand, at most `max_redirects`, each target checked to be
    http(s); the client's transport resolves each hop once and checks, at connect time,
    that it reaches only public or allow-listed internal addresses, and no internal one
    after a hop that reached a public address (feeds.reach, feeds.pinning).
    When every redirect up to some target was permanent (301/308), that target is returned
    as `moved_to`. Only 2xx bodies are read.
    """
    headers = conditional_headers(etag, last_modified)
    try:
        async with asyncio.timeout(deadline):
            return await follow(client, url, headers, max_bytes, max_redirects)
    except TimeoutError:
        raise FetchError(f"gave up on {url} after {deadline:g} s") from None
    except httpx.ConnectTimeout:
        raise FetchError(f"could not connect to {url} within the connect timeout") from None
    except httpx.TimeoutException:
        raise FetchError(f"timed out waiting for {url}") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise FetchError(f"could not fetch {url}: {type(exc).__name__}: {exc}"[:500]) from None


async def follow(client, start, headers, max_bytes, max_redirects):
    """Request `start` and the redirects it leads to; return the final answer."""
    if not is_http_url(start):
        raise refuse(start)
    url, came_from, moved_to, permanent = start, None, None, True
    after_public = False
    for hops in range(max_redirects + 1):
        fetched, target, public = await get_once(client, url, came_from, after_public,
                                                 headers, max_bytes)
        after_public = after_public or public
        if target is None:
            fetched.moved_to = moved_to
            return fetched
        if hops >= max_redirects:
            break
        permanent = permanent and fetched.status in PERMANENT_CODES
        if permanent:
            moved_to = target
        came_from, url = url, target
    raise FetchError(f"more than {max_redirects} redirects from {url}")


async def get_once(client, url, came_from, after_public, headers, max_bytes):
    """Make one GET; return (answer, None, public), or (answer without body, target, public)
    for a redirect, `public` telling whether the address connected to is public.

    `came_from` is the URL that redirected here (None for the first hop); `after_public`
    tells whether an earlier hop connected to a public address (then no internal one).
    """
    if not is_http_url(url):
        raise refuse(url)
    try:
        async with client.stream("GET", url, headers=headers,
                                 extensions={AFTER_PUBLIC: after_public}) as response:
            status = response.status_code
            public = response.extensions.get(REACHED_PUBLIC, True)
            kept = {name: response.headers[name] for name in KEPT_HEADERS
                    if name in response.headers}
            location = response.headers.get("location")
            if status in REDIRECT_CODES and location:
                return Fetched(status, b"", kept, url), urljoin(url, location.strip()), public
            body = await read_body(response, max_bytes) if 200 <= status < 300 else b""
            return Fetched(status, body, kept, url), None, public
    except AddressRefused as exc:
        if came_from is None:
            raise FetchError(f"refusing to fetch {url}: {exc}") from None
        if exc.after_public:
            raise FetchError(f"refusing to follow the redirect from {came_from} to "
                             f"{url[:200]}: it leads from a public address to an internal "
                             f"one ({exc.address})") from None
        raise FetchError(f"refusing to follow the redirect from {came_from} to {url[:200]}: "
                         f"{exc}") from None
    except HostUnresolvable as exc:
        raise FetchError(f"could not fetch {url}: {exc}") from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL):
        raise FetchError(f"refusing to follow the redirect to {url}: only http and https "
                         "addresses are allowed") from None
