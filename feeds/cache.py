"""One upstream fetch per feed URL per interval, shared by every viewer through Redis.

Each URL has one state key (the latest `FeedState`: parsed entries, validators, status,
failure bookkeeping) and one short lock. A viewer whose state is due takes the lock,
re-reads the state, and only if it is still due makes the conditional request and stores
the result; viewers that find the lock taken wait for the new state instead of fetching.
Configuration arrives through the constructor; nothing here reads Django settings.
"""

import asyncio
import hashlib
import time

from redis.exceptions import LockError

from feeds.fetch import FETCH_DEADLINE
from feeds.sandbox import PARSE_TIMEOUT
from feeds.upstream import FeedState
from webapp import metrics

PREFIX = "tailboard:feed:v1:"
LOCK_SECONDS = int(FETCH_DEADLINE + PARSE_TIMEOUT + 10)
WAIT_STEP = 0.2
KEEP_SECONDS = 3600


class SharedFeed:
    """Gives every viewer of a URL the same state, refreshing it upstream once when due."""

    def __init__(self, redis, upstream, prefix=PREFIX, lock_seconds=LOCK_SECONDS,
                 wait_step=WAIT_STEP, clock=time.time):
        self.redis = redis
        self.upstream = upstream
        self.prefix = prefix
        self.lock_seconds = lock_seconds
        self.wait_step = wait_step
        self.clock = clock

    def key(self, url):
        """Return the Redis key of a URL's shared state."""
        return self.prefix + hashlib.sha256(url.encode("utf-8", "replace")).hexdigest()[:40]

    async def load(self, url):
        """Return the stored state of a URL, or None (also when it cannot be read back)."""
        raw = await self.redis.get(self.key(url))
        return FeedState.from_json(raw) if raw else None

    async def store(self, state, interval):
        """Store a state for as long as it can still serve a conditional request.

        After a permanent redirect the state is also stored under the new URL (unless that
        one already has a state), so viewers switching to it do not refetch at once.
        """
        keep = int(max(KEEP_SECONDS, 3 * state.interval(interval),
                       state.retry_at - self.clock() + KEEP_SECONDS))
        await self.redis.set(self.key(state.url), state.to_json(), ex=keep)
        if state.moved_to and state.moved_to != state.url:
            moved = FeedState.from_json(state.to_json())
            moved.url, moved.moved_to = state.moved_to, None
            await self.redis.set(self.key(moved.url), moved.to_json(), ex=keep, nx=True)

    async def current(self, url, interval):
        """Return the URL's state, fetching upstream first when it is due for `interval`.

        Of the viewers that find the state due at the same time, one takes the lock and
        fetches; the others wait (checking only the small lock key) until it is released
        and then read what it stored. A lock whose holder died expires by itself.
        """
        lock_key = self.key(url) + ":lock"
        while True:
            state = await self.load(url)
            if state is not None and self.clock() < state.due_at(interval):
                return state
            lock = self.redis.lock(lock_key, timeout=self.lock_seconds, blocking=False)
            if await lock.acquire():
                try:
                    state = await self.load(url)
                    if state is None or self.clock() >= state.due_at(interval):
                        state = await self.upstream.refresh(url, state, interval)
                        await self.store(state, interval)
                        await metrics.arecord(self.redis, "feed_fetches",
                                              {"result": metrics.feed_fetch_result(state)})
                    return state
                finally:
                    try:
                        await lock.release()
                    except LockError:
                        pass
            while await self.redis.exists(lock_key):
                await asyncio.sleep(self.wait_step)
