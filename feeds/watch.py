"""The feed watch engine: fetch, parse and deduplicate one feed; no Celery, Channels or Redis.

`fetch()` makes one polite GET (timeouts, streamed size cap on decoded bytes, manual
redirects limited to http/https, conditional headers). `Upstream.refresh()` turns one
fetch + parse into a `FeedState`: the entries, validators, server hints and failure
bookkeeping that every viewer of the URL shares. `FeedWatcher.accept()` is one viewer's
side: it deduplicates a state's entries against what this viewer has been sent and says
what is new, edited, failing or recovered.
"""

import asyncio
import collections
import dataclasses
import email.utils
import hashlib
import http.cookiejar
import json
import logging
import random
import signal
import sys
import time
import zlib
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from feeds import addresses

log = logging.getLogger("tailboard.feeds")

USER_AGENT = ("Tailboard/1.0 feed watcher (polls only while someone has the feed open; "
              "honours ETag, Last-Modified, Cache-Control, ttl and Retry-After)")
ACCEPT = ("application/rss+xml, application/atom+xml, application/rdf+xml, "
          "application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5")
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 15.0
FETCH_DEADLINE = 60.0
MAX_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
PARSE_TIMEOUT = 20.0
PARSE_MEMORY = 1024 * 1024 * 1024
MIN_INTERVAL = 5
MAX_BACKOFF = 15 * 60
MAX_RETRY_AFTER = 60 * 60
MAX_STRETCH = 60 * 60
GONE_HOLD = 15 * 60
SEEN_WINDOW = 5000
PUBLIC_ID_LIMIT = 200
REDIRECT_CODES = (301, 302, 303, 307, 308)
PERMANENT_CODES = (301, 308)
KEPT_HEADERS = ("content-type", "etag", "last-modified", "cache-control", "retry-after")
PARSER = Path(__file__).with_name("parsing.py")


class FeedGone(Exception):
    """The server says the feed is gone for good (HTTP 410)."""


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


def make_client(read_timeout=READ_TIMEOUT, connect_timeout=CONNECT_TIMEOUT):
    """Return the HTTP client for feed fetches: timeouts, manual redirects, no env proxies
    or netrc, and a cookie jar that keeps nothing."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout),
        follow_redirects=False, trust_env=False,
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


async def fetch(client, url, etag=None, last_modified=None, max_bytes=MAX_BYTES,
                max_redirects=MAX_REDIRECTS, deadline=FETCH_DEADLINE):
    """GET a feed politely; return a `Fetched` for any HTTP status, raise FetchError otherwise.

    Redirects are followed by hand, at most `max_redirects`, each target checked to be
    http(s) and, from a public feed, not to lead to an internal address (feeds.addresses).
    When every redirect up to some target was permanent (301/308), that target is returned
    as `moved_to`. Only 2xx bodies are read.
    """
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    moved_to, permanent, hops, start = None, True, 0, url
    try:
        async with asyncio.timeout(deadline):
            while True:
                if not is_http_url(url):
                    raise refuse(url)
                try:
                    async with client.stream("GET", url, headers=headers) as response:
                        status = response.status_code
                        kept = {name: response.headers[name] for name in KEPT_HEADERS
                                if name in response.headers}
                        location = response.headers.get("location")
                        if status in REDIRECT_CODES and location:
                            if hops >= max_redirects:
                                raise FetchError(f"more than {max_redirects} redirects "
                                                 f"from {url}")
                            target = urljoin(url, location.strip())
                            inward = await addresses.inward_redirect(start, target)
                            if inward:
                                raise FetchError(
                                    f"refusing to follow the redirect from {url} to "
                                    f"{target[:200]}: it leads from a public address to an "
                                    f"internal one ({inward})")
                            permanent = permanent and status in PERMANENT_CODES
                            if permanent:
                                moved_to = target
                            url, hops = target, hops + 1
                            continue
                        body = (await read_body(response, max_bytes)
                                if 200 <= status < 300 else b"")
                        return Fetched(status, body, kept, url, moved_to)
                except (httpx.UnsupportedProtocol, httpx.InvalidURL):
                    raise FetchError(f"refusing to follow the redirect from {url}: only http "
                                     "and https addresses are allowed") from None
    except TimeoutError:
        raise FetchError(f"gave up on {url} after {deadline:g} s") from None
    except httpx.ConnectTimeout:
        raise FetchError(f"could not connect to {url} within the connect timeout") from None
    except httpx.TimeoutException:
        raise FetchError(f"timed out waiting for {url}") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise FetchError(f"could not fetch {url}: {type(exc).__name__}: {exc}"[:500]) from None


async def parse(body, content_type, url, timeout=PARSE_TIMEOUT, memory=PARSE_MEMORY):
    """Parse feed bytes in a child process that is killed after `timeout` seconds.

    The child also caps its own CPU time and address space, so a quadratic parse
    (feedparser #562) or a memory blow-up costs at most `timeout` seconds of one core.
    Return the dict from `feeds.parsing.parse_bytes`; raise FetchError when it fails.
    """
    header = json.dumps({"content_type": content_type, "url": url,
                         "cpu_seconds": int(timeout) + 1, "memory_bytes": memory})
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-I", str(PARSER), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise FetchError(f"could not start the feed parser: {exc}") from None
    try:
        out, err = await asyncio.wait_for(process.communicate(header.encode() + b"\n" + body),
                                          timeout)
    except TimeoutError:
        raise FetchError(f"parsing the feed took longer than {timeout:g} s; gave up") from None
    finally:
        if process.returncode is None:
            process.kill()
            await asyncio.shield(process.wait())
    if process.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise FetchError(f"parsing the feed took longer than {timeout:g} s; gave up")
    if process.returncode != 0:
        last = (err.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
        raise FetchError(f"the feed parser failed: {last[:300]}")
    try:
        result = json.loads(out)
    except ValueError:
        raise FetchError("the feed parser returned no result") from None
    if "error" in result:
        raise FetchError(result["error"])
    return result


def retry_after(value, now):
    """Return the seconds a Retry-After header asks to wait (delta or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def max_age(cache_control):
    """Return Cache-Control max-age in seconds, or None (also for no-cache/no-store)."""
    if not cache_control:
        return None
    for part in cache_control.lower().split(","):
        name, _, value = part.strip().partition("=")
        if name == "max-age":
            try:
                return max(0, int(value.strip().strip('"')))
            except ValueError:
                return None
    return None


def backoff_delay(failures, interval, rand=random.random):
    """Return the wait after `failures` failures in a row: the interval doubled per failure,
    plus up to 25 % jitter, at most 15 min (or the interval, when that is longer)."""
    interval = max(MIN_INTERVAL, interval)
    cap = max(MAX_BACKOFF, interval)
    base = min(cap, interval * 2 ** min(max(failures, 1) - 1, 16))
    return min(cap, base * (1 + 0.25 * rand()))


@dataclasses.dataclass
class FeedState:
    """The shared outcome of the latest upstream attempt for one URL (JSON-serialisable).

    `outcome` is "ok" (then `feed` holds title, entries oldest first, ttl, bozo), "error"
    (then `error`, `failures` and `retry_at`) or "gone". Validators and the last good
    `feed` survive errors so the next success can still be a conditional request.
    """

    url: str
    seq: int
    fetched_at: float
    outcome: str
    feed: dict | None = None
    etag: str | None = None
    last_modified: str | None = None
    max_age: int | None = None
    not_modified: bool = False
    error: str = ""
    failures: int = 0
    retry_at: float = 0.0
    moved_to: str | None = None

    def to_json(self):
        """Serialise for the shared cache."""
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text):
        """Read back a serialised state; None when it is not one (e.g. another version's)."""
        try:
            data = json.loads(text)
            known = {field.name for field in dataclasses.fields(cls)}
            return cls(**{name: value for name, value in data.items() if name in known})
        except (TypeError, ValueError, AttributeError):
            return None

    def hint(self):
        """Return the server's requested minimum interval (max-age, RSS ttl), capped."""
        ttl = (self.feed or {}).get("ttl") or 0
        return min(MAX_STRETCH, max(self.max_age or 0, ttl))

    def interval(self, interval):
        """Return the effective polling interval: the source's, ≥ 5 s, stretched by hints."""
        return max(MIN_INTERVAL, interval, self.hint() if self.outcome == "ok" else 0)

    def due_at(self, interval):
        """Return when the next upstream request may be made (epoch seconds)."""
        if self.outcome == "ok":
            return self.fetched_at + self.interval(interval)
        return self.retry_at


class Upstream:
    """Makes the conditional fetch + parse for a URL and records it as a new `FeedState`."""

    def __init__(self, client, max_bytes=MAX_BYTES, parse_timeout=PARSE_TIMEOUT,
                 deadline=FETCH_DEADLINE, clock=time.time, rand=random.random):
        self.client = client
        self.max_bytes = max_bytes
        self.parse_timeout = parse_timeout
        self.deadline = deadline
        self.clock = clock
        self.rand = rand

    async def refresh(self, url, previous, interval):
        """Fetch `url` once, conditionally on `previous`; return the new state."""
        now = self.clock()
        good = previous.feed if previous is not None else None
        state = FeedState(url=url, seq=(previous.seq + 1) if previous else 1, fetched_at=now,
                          outcome="ok", feed=good,
                          etag=previous.etag if good else None,
                          last_modified=previous.last_modified if good else None,
                          max_age=previous.max_age if good else None,
                          failures=previous.failures if previous else 0)
        try:
            fetched = await fetch(self.client, url, state.etag, state.last_modified,
                                  self.max_bytes, deadline=self.deadline)
            state.moved_to = fetched.moved_to
            await self._apply(state, fetched, interval)
        except FetchError as exc:
            self._fail(state, str(exc), interval)
        if state.outcome == "ok":
            state.failures = 0
        return state

    async def _apply(self, state, fetched, interval):
        status, headers = fetched.status, fetched.headers
        if status == 410:
            state.outcome = "gone"
            state.error = f"feed gone: {fetched.url} answers HTTP 410 Gone"
            state.retry_at = state.fetched_at + GONE_HOLD
            log.warning("feed %s is gone (HTTP 410); its streams end", state.url)
            return
        if status == 304 and state.feed is not None:
            state.not_modified = True
            state.etag = headers.get("etag", state.etag)
            state.last_modified = headers.get("last-modified", state.last_modified)
            if "cache-control" in headers:
                state.max_age = max_age(headers["cache-control"])
            return
        if status in (429, 503):
            wait = retry_after(headers.get("retry-after"), state.fetched_at)
            if wait is not None:
                wait = min(MAX_RETRY_AFTER, max(MIN_INTERVAL, interval, wait))
                self._fail(state, f"HTTP {status} from {fetched.url}: the server asks to wait",
                           interval, wait)
                return
        if not 200 <= status < 300:
            raise FetchError(f"HTTP {status} from {fetched.url}")
        state.feed = await parse(fetched.body, headers.get("content-type"), fetched.url,
                                 self.parse_timeout)
        state.etag = headers.get("etag")
        state.last_modified = headers.get("last-modified")
        state.max_age = max_age(headers.get("cache-control"))

    def _fail(self, state, message, interval, wait=None):
        state.outcome = "error"
        state.error = message
        state.failures += 1
        if wait is None:
            wait = backoff_delay(state.failures, interval, self.rand)
        state.retry_at = state.fetched_at + wait
        log.warning("feed %s: %s (failure %d in a row); next attempt in %.0f s", state.url,
                    message, state.failures, wait)


@dataclasses.dataclass
class PollResult:
    """What one viewer should be sent: new or edited entries (oldest first) and notices."""

    entries: list
    notices: list
    baseline: bool = False


def content_hash(item):
    """Return a hash of what the viewer sees of an entry, to notice edits."""
    text = "\x00".join((item["title"], item["summary"], item["link"]))
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def public_id(key):
    """Return the entry id sent to the browser: the dedupe key, hashed when long."""
    if len(key) <= PUBLIC_ID_LIMIT:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


class FeedWatcher:
    """One viewer's side of a feed: the entries already sent and the notices already shown.

    Dedupe key: id/guid, else link, else a hash of title and summary. An id (or link)
    value that two different entries of one document share is no longer trusted for this
    stream: those entries fall back to the link, then to a hash of all their fields.
    """

    def __init__(self, url, first_entries=10, window=SEEN_WINDOW):
        self.url = url
        self.first_entries = first_entries
        self.window = window
        self.seen = collections.OrderedDict()
        self.shared_ids = {}
        self.shared_links = {}
        self.baselined = False
        self.last = None
        self.failing = 0
        self.bozo = ""
        self.hinted = 0

    def accept(self, state, interval=MIN_INTERVAL, now=None):
        """Take the latest shared state; return what to send. Raise FeedGone on 410."""
        now = time.time() if now is None else now
        notices = []
        if state.moved_to and state.moved_to != self.url:
            log.info("feed %s moved permanently to %s; using the new address", self.url,
                     state.moved_to)
            notices.append(f"the feed has moved permanently to {state.moved_to}; "
                           "using the new address from now on")
            self.url = state.moved_to
        if (state.url, state.seq) == self.last:
            return PollResult([], notices)
        self.last = (state.url, state.seq)
        if state.outcome == "gone":
            raise FeedGone(state.error)
        if state.outcome == "error":
            self.failing = state.failures
            wait = max(0.0, state.retry_at - now)
            notices.append(f"{state.error}; next attempt in {wait:.0f} s")
            return PollResult([], notices)
        if self.failing:
            notices.append(f"the feed answers again after {self.failing} failed attempt"
                           f"{'s' if self.failing > 1 else ''}")
            self.failing = 0
        notices.extend(self._hint_notices(state, interval))
        return self._entries(state.feed["entries"], notices)

    def _hint_notices(self, state, interval):
        notices = []
        bozo = state.feed.get("bozo") or ""
        if bozo and not self.bozo:
            notices.append(f"the feed is not entirely valid ({bozo}); showing the "
                           f"{len(state.feed['entries'])} entries that could be read")
        self.bozo = bozo
        effective = state.interval(interval)
        if effective > max(MIN_INTERVAL, interval) and effective != self.hinted:
            notices.append(f"the feed asks not to be fetched more often than every "
                           f"{effective:.0f} s (Cache-Control max-age / ttl); polling every "
                           f"{effective:.0f} s")
        self.hinted = effective
        return notices

    def _entries(self, items, notices):
        fresh = []
        for item, key in zip(items, self._keys(items)):
            public = {"id": public_id(key), "title": item["title"], "link": item["link"],
                      "published": item["published"], "summary": item["summary"],
                      "source": item["source"]}
            digest = content_hash(public)
            previous = self.seen.get(key)
            self.seen[key] = digest
            self.seen.move_to_end(key)
            if previous == digest:
                continue
            if previous is not None:
                public["updated"] = True
            fresh.append(public)
        while len(self.seen) > max(self.window, 2 * len(items)):
            self.seen.popitem(last=False)
        if not self.baselined:
            self.baselined = True
            fresh = fresh[-self.first_entries:] if self.first_entries else []
            return PollResult(fresh, notices, baseline=True)
        return PollResult(fresh, notices)

    def _key(self, guid, link, digest):
        if guid and guid not in self.shared_ids:
            return "id:" + guid
        if link and link not in self.shared_links:
            return "link:" + link
        if not guid and not link:
            return "hash:" + digest
        joined = "\x00".join((guid, link, digest))
        return "hash:" + hashlib.sha256(joined.encode("utf-8", "replace")).hexdigest()

    def _keys(self, items):
        """Return one key per item, distrusting ids and links that different items share
        (an item listed twice, identical, is not a reason to distrust its id)."""
        while True:
            keys = [self._key(*item["_k"]) for item in items]
            variants = collections.defaultdict(set)
            for key, item in zip(keys, items):
                variants[key].add(tuple(item["_k"]))
            distrusted = False
            for key, parts in variants.items():
                kind, _, value = key.partition(":")
                if len(parts) > 1 and kind in ("id", "link"):
                    shared = self.shared_ids if kind == "id" else self.shared_links
                    shared[value] = True
                    while len(shared) > self.window:
                        del shared[next(iter(shared))]
                    distrusted = True
            if not distrusted:
                return keys

    def wait_seconds(self, state, interval, now=None):
        """Return how long to sleep before this viewer's next look at the shared state."""
        now = time.time() if now is None else now
        return max(0.0, state.due_at(interval) - now)
