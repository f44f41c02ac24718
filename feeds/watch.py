"""The feed watch engine: fetch, parse and deduplicate one feed; no Celery or Channels.

`FeedWatcher.poll()` fetches the feed (conditional GET, timeouts, size cap), parses the
bytes with feedparser and returns the entries not seen before as plain-text dicts ready for
the `entries` message. The first poll returns the newest N entries as the baseline.
"""

import calendar
import collections
import dataclasses
import hashlib
import html
import logging
from datetime import datetime, timezone
from urllib.parse import urlsplit

import feedparser
import httpx
import nh3

log = logging.getLogger("tailboard.feeds")

USER_AGENT = "Tailboard feed watcher (+https://github.com/tailboard; polls only while viewed)"
MAX_REDIRECTS = 5
SEEN_WINDOW = 5000


class FeedGone(Exception):
    """The server says the feed is gone for good (HTTP 410)."""


class FetchError(Exception):
    """A fetch failed in a way worth retrying; the message is shown to the user."""


@dataclasses.dataclass
class PollResult:
    """What one poll found: new entries (oldest first) and notices for the viewer."""

    entries: list
    notices: list
    not_modified: bool = False


def http_url(value):
    """Return the URL when it is http(s), else an empty string."""
    if not isinstance(value, str):
        return ""
    value = value.strip()
    try:
        scheme = urlsplit(value).scheme.lower()
    except ValueError:
        return ""
    return value if scheme in ("http", "https") else ""


def plain_text(value, limit=2000):
    """Strip all markup with a real HTML sanitizer and return plain text."""
    if not value:
        return ""
    cleaned = nh3.clean(str(value), tags=set(), attributes={}, clean_content_tags={"script", "style"})
    text = " ".join(html.unescape(cleaned).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def published_iso(entry):
    """Return the entry's published/updated time as ISO 8601 UTC, or None."""
    for field in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(field)
        if parsed:
            try:
                stamp = calendar.timegm(parsed)
                return datetime.fromtimestamp(stamp, tz=timezone.utc).isoformat().replace(
                    "+00:00", "Z")
            except (OverflowError, ValueError, TypeError):
                continue
    return None


def entry_key(entry):
    """Return the dedupe key: id/guid, else link, else a hash of title and summary."""
    ident = entry.get("id") or entry.get("guid")
    if ident:
        return "id:" + str(ident)
    link = entry.get("link")
    if link:
        return "link:" + str(link)
    digest = hashlib.sha256(
        (str(entry.get("title", "")) + "\x00" + str(entry.get("summary", ""))).encode()).hexdigest()
    return "hash:" + digest


def normalize(entry, feed_title):
    """Turn a feedparser entry into the protocol's entry dict (plain text, safe link)."""
    return {
        "id": entry_key(entry)[:500],
        "title": plain_text(entry.get("title"), 500),
        "link": http_url(entry.get("link")),
        "published": published_iso(entry),
        "summary": plain_text(entry.get("summary") or entry.get("description")),
        "source": feed_title,
    }


def content_hash(item):
    """Return a hash of what the viewer sees of an entry, to notice edits."""
    return hashlib.sha256(f"{item['title']}\x00{item['summary']}\x00{item['link']}".encode()
                          ).hexdigest()


class FeedWatcher:
    """Polls one feed URL; remembers validators and the entries already sent."""

    def __init__(self, url, first_entries=10, timeout=15.0, max_bytes=5 * 1024 * 1024):
        self.url = url
        self.first_entries = first_entries
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.etag = None
        self.last_modified = None
        self.seen = collections.OrderedDict()
        self.polled = False
        self.title = ""

    async def fetch(self, client):
        """Fetch the feed bytes; return (status, body, headers)."""
        headers = {"User-Agent": USER_AGENT, "Accept": "application/rss+xml, "
                   "application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        try:
            async with client.stream("GET", self.url, headers=headers) as response:
                if response.status_code == 304:
                    return 304, b"", response.headers
                if response.status_code == 410:
                    raise FeedGone(f"the feed is gone (HTTP 410 from {self.url})")
                if response.status_code >= 400:
                    raise FetchError(f"HTTP {response.status_code} from {self.url}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > self.max_bytes:
                        raise FetchError(f"the feed is larger than {self.max_bytes} bytes")
                return response.status_code, bytes(body), response.headers
        except httpx.TooManyRedirects:
            raise FetchError(f"more than {MAX_REDIRECTS} redirects from {self.url}") from None
        except httpx.TimeoutException:
            raise FetchError(f"timed out fetching {self.url}") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"could not fetch {self.url}: {exc}") from None

    def client(self):
        """Return an HTTP client with the watcher's timeouts and redirect limit."""
        return httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout, connect=5.0), follow_redirects=True,
            max_redirects=MAX_REDIRECTS, trust_env=False)

    async def poll(self, client):
        """Fetch and parse once; return the entries not sent before, oldest first."""
        status, body, headers = await self.fetch(client)
        if status == 304:
            return PollResult([], [], not_modified=True)
        self.etag = headers.get("etag") or self.etag
        self.last_modified = headers.get("last-modified") or self.last_modified
        parsed = feedparser.parse(body, response_headers={
            "content-type": headers.get("content-type", "application/xml"),
            "content-location": self.url})
        notices = []
        if parsed.bozo and not parsed.entries:
            raise FetchError(f"the feed could not be parsed: {parsed.get('bozo_exception')}")
        if parsed.bozo:
            notices.append(f"the feed is not well-formed ({parsed.get('bozo_exception')}); "
                           "showing what could be read")
        self.title = plain_text(parsed.feed.get("title"), 200) or self.url
        items = [normalize(entry, self.title) for entry in parsed.entries]
        items.reverse()
        fresh = self._unseen(items)
        if not self.polled:
            self.polled = True
            fresh = fresh[-self.first_entries:] if self.first_entries else []
        return PollResult(fresh, notices)

    def _unseen(self, items):
        """Return items (oldest first) that are new or edited, and remember them."""
        fresh = []
        for item in items:
            digest = content_hash(item)
            previous = self.seen.get(item["id"])
            if previous == digest:
                continue
            if previous is not None and self.polled:
                item = {**item, "updated": True}
            self.seen[item["id"]] = digest
            self.seen.move_to_end(item["id"])
            fresh.append(item)
        while len(self.seen) > SEEN_WINDOW:
            self.seen.popitem(last=False)
        return fresh
