"""The feed watch engine, one viewer's side: what to send from each shared `FeedState`.

No Celery, Channels or Redis here. The engine's parts, one job each:
`feeds.fetch` (one capped GET), `feeds.sandbox` (parse in a limited child),
`feeds.upstream` (the fetch + parse every viewer of a URL shares, intervals, backoff),
`feeds.cache` (sharing it through Redis), `feeds.dedupe` (what one viewer was sent) and
this module: `FeedWatcher.accept()` turns the latest shared state into entries and
notices for one viewer. The names a task needs are importable from here.
"""

import dataclasses
import logging
import time

from feeds.dedupe import SEEN_WINDOW, Seen
from feeds.fetch import FetchError, make_client
from feeds.upstream import MIN_INTERVAL, FeedState, Upstream
from webapp.streams.text import say

__all__ = ["FeedGone", "FeedState", "FeedWatcher", "FetchError", "MIN_INTERVAL", "PollResult",
           "Upstream", "WARN_AFTER_FAILURES", "make_client"]

log = logging.getLogger("tailboard.feeds")

WARN_AFTER_FAILURES = 3


class FeedGone(Exception):
    """The server says the feed is gone for good (HTTP 410)."""


@dataclasses.dataclass
class PollResult:
    """What one viewer should be sent: new or edited entries (oldest first), notices, and
    the stream's degraded-state `warning` (None when healthy), with `warning_changed`
    telling when a `status` carrying it is due."""

    entries: list
    notices: list
    baseline: bool = False
    warning: str | None = None
    warning_changed: bool = False


def warning_for(state):
    """Return the degraded-state warning a shared state calls for, or None when healthy.

    A feed that cannot be fetched warns from its first failure, with the time of the next
    attempt (UTC); after WARN_AFTER_FAILURES in a row the warning says it keeps failing.
    """
    if state.outcome == "gone":
        return state.error
    if state.outcome == "error":
        at = time.strftime("%H:%M:%S UTC", time.gmtime(state.retry_at))
        if state.failures >= WARN_AFTER_FAILURES:
            return say("feed_failing_retry", count=WARN_AFTER_FAILURES, error=state.error,
                       at=at)
        return say("feed_unreachable", error=state.error, at=at)
    return None


class FeedWatcher:
    """One viewer's side of a feed: the entries already sent, the notices already shown and
    the current `warning` (None when healthy; set from the first failed fetch, reworded after
    `WARN_AFTER_FAILURES` in a row, set when the feed is gone, cleared by the next good
    fetch)."""

    def __init__(self, url, first_entries=10, window=SEEN_WINDOW, resume=None):
        self.url = url
        self.first_entries = first_entries
        self.seen = Seen(window)
        self.baselined = False
        snapshot = resume.get("seen") if isinstance(resume, dict) else None
        if isinstance(snapshot, list) and snapshot:  # another reading's (`position`): no baseline,
            self.seen.restore(snapshot)  # what it had not seen comes as new
            self.baselined = True
        self.last = None
        self.failing = 0
        self.bozo = ""
        self.hinted = 0
        self.warning = None

    def accept(self, state, interval=MIN_INTERVAL, now=None):
        """Take the latest shared state; return what to send. Raise FeedGone on 410."""
        now = time.time() if now is None else now
        notices = []
        if state.moved_to and state.moved_to != self.url:
            log.info("feed %s moved permanently to %s; using the new address", self.url,
                     state.moved_to)
            notices.append(say("feed_moved", url=state.moved_to))
            self.url = state.moved_to
        if (state.url, state.seq) == self.last:
            return PollResult([], notices, warning=self.warning)
        self.last = (state.url, state.seq)
        changed = self._warn(warning_for(state))
        if state.outcome == "gone":
            raise FeedGone(state.error)
        if state.outcome == "error":
            self.failing = state.failures
            wait = max(0.0, state.retry_at - now)
            notices.append(say("feed_retry", error=state.error, seconds=f"{wait:.0f}"))
            return PollResult([], notices, warning=self.warning, warning_changed=changed)
        if self.failing:
            notices.append(say("feed_back", count=self.failing) if self.failing > 1
                           else say("feed_back_one"))
            self.failing = 0
        notices.extend(self._hint_notices(state, interval))
        result = self._entries(state.feed["entries"], notices)
        result.warning, result.warning_changed = self.warning, changed
        return result

    def _warn(self, warning):
        """Set the current warning; return whether it changed."""
        changed, self.warning = warning != self.warning, warning
        return changed

    def _hint_notices(self, state, interval):
        notices = []
        bozo = state.feed.get("bozo") or ""
        if bozo and not self.bozo:
            notices.append(say("feed_invalid", problem=bozo, count=len(state.feed["entries"])))
        self.bozo = bozo
        effective = state.interval(interval)
        if effective > max(MIN_INTERVAL, interval) and effective != self.hinted:
            notices.append(say("feed_slower", seconds=f"{effective:.0f}"))
        self.hinted = effective
        return notices

    def _entries(self, items, notices):
        fresh = self.seen.fresh(items)
        if not self.baselined:
            self.baselined = True
            fresh = fresh[-self.first_entries:] if self.first_entries else []
            return PollResult(fresh, notices, baseline=True)
        return PollResult(fresh, notices)

    def position(self):
        """The entries seen so far, as a `resume` for a later watcher of this feed; None
        before any was."""
        return {"seen": self.seen.snapshot()} if len(self.seen) else None

    def wait_seconds(self, state, interval, now=None):
        """Return how long to sleep before this viewer's next look at the shared state."""
        now = time.time() if now is None else now
        return max(0.0, state.due_at(interval) - now)
