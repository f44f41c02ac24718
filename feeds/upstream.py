"""The shared side of a feed: one conditional fetch + parse per URL, recorded as a `FeedState`.

`Upstream.refresh()` turns one fetch + parse into the state every viewer of the URL
shares (entries, validators, server hints, failure bookkeeping); `FeedState` says when
the next upstream request may be made (interval, max-age/ttl, backoff, Retry-After).
"""

import dataclasses
import email.utils
import json
import logging
import random
import time

from feeds.fetch import FETCH_DEADLINE, MAX_BYTES, FetchError, fetch
from feeds.sandbox import PARSE_TIMEOUT, parse

log = logging.getLogger("tailboard.feeds")

MIN_INTERVAL = 5
MAX_BACKOFF = 15 * 60
MAX_RETRY_AFTER = 60 * 60
MAX_STRETCH = 60 * 60
GONE_HOLD = 15 * 60


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
    `fetched_at` is when the attempt started, `finished_at` when it ended: a good answer's
    next request is due an interval after the start, a failure's retry (backoff,
    Retry-After, the hold after 410) is measured from the end.
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
    finished_at: float = 0.0

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
            wait = await self._apply(state, fetched, interval)
        except FetchError as exc:
            wait = self._fail(state, str(exc), interval)
        state.finished_at = self.clock()
        if state.outcome == "ok":
            state.failures = 0
        else:
            state.retry_at = state.finished_at + wait
        if state.outcome == "error":
            log.warning("feed %s: %s (failure %d in a row); next attempt in %.0f s",
                        state.url, state.error, state.failures, wait)
        return state

    async def _apply(self, state, fetched, interval):
        """Record an HTTP answer in `state`; return the wait before a retry (None if ok)."""
        status, headers = fetched.status, fetched.headers
        if status == 410:
            state.outcome = "gone"
            state.error = f"feed gone: {fetched.url} answers HTTP 410 Gone"
            log.warning("feed %s is gone (HTTP 410); its streams end", state.url)
            return GONE_HOLD
        if status == 304 and state.feed is not None:
            state.not_modified = True
            state.etag = headers.get("etag", state.etag)
            state.last_modified = headers.get("last-modified", state.last_modified)
            if "cache-control" in headers:
                state.max_age = max_age(headers["cache-control"])
            return None
        if status in (429, 503):
            wait = retry_after(headers.get("retry-after"), self.clock())
            if wait is not None:
                wait = min(MAX_RETRY_AFTER, max(MIN_INTERVAL, interval, wait))
                return self._fail(state, f"HTTP {status} from {fetched.url}: the server asks "
                                  "to wait", interval, wait)
        if not 200 <= status < 300:
            raise FetchError(f"HTTP {status} from {fetched.url}")
        state.feed = await parse(fetched.body, headers.get("content-type"), fetched.url,
                                 self.parse_timeout)
        state.etag = headers.get("etag")
        state.last_modified = headers.get("last-modified")
        state.max_age = max_age(headers.get("cache-control"))
        return None

    def _fail(self, state, message, interval, wait=None):
        """Record a failure in `state`; return the wait before a retry (backoff by default)."""
        state.outcome = "error"
        state.error = message
        state.failures += 1
        return backoff_delay(state.failures, interval, self.rand) if wait is None else wait
