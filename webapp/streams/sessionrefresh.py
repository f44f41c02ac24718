"""OIDC session refreshes for the sessions that have streams open, from the renewal rounds.

A viewer who only watches a stream never makes a request, so nothing else would learn that
the provider removed a group: each renewal round (and each long-poll access check) pokes
the sessions of its streams, and every OIDC_REFRESH_SECONDS each is refreshed once
(`webapp.signin.refresh`) — once across all Daphne processes (a Redis claim per session), in
a thread, never holding up the round. The round after the refresh sees the new groups (or
the ended session) and ends the streams that lost their source with 4403.
"""

import asyncio
import hashlib
import logging
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

from channels.db import database_sync_to_async
from django.conf import settings

from webapp.signin import refresh
from webapp.streams import faults, leases

log = logging.getLogger("tailboard.signin")

CLAIM_PREFIX = "tailboard:oidc-refresh:"

_refreshers = weakref.WeakKeyDictionary()

# The refreshes' own threads: a provider that hangs holds these, never the loop's executor.
THREADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="oidc-refresh")


def claim_key(session_key):
    """The Redis key claiming a session's next refresh (a hash: the key itself is a secret)."""
    return CLAIM_PREFIX + hashlib.sha256(f"tailboard-refresh:{session_key}".encode()).hexdigest()


class Refresher:
    """The refreshes of one event loop: when each session is next due, those running."""

    def __init__(self):
        self.due = {}
        self.running = {}

    def poke(self, sessions):
        """Start the refreshes that are due among these sessions (Django session objects)."""
        if not refresh.enabled():
            return
        now = time.monotonic()
        seen = set()
        for session in sessions:
            key = getattr(session, "session_key", None)
            if key is None or key in seen:
                continue
            seen.add(key)
            if key in self.running or self.due.get(key, 0) > now:
                continue
            self.due[key] = now + settings.OIDC_REFRESH_SECONDS
            self.running[key] = asyncio.get_running_loop().create_task(
                self.run(session.__class__, key), name="OIDC session refresh")
        stale = now - settings.OIDC_REFRESH_SECONDS  # sessions without streams for a while
        for key in [k for k, due in self.due.items() if due < stale and k not in self.running]:
            del self.due[key]

    async def run(self, store_class, key):
        """Refresh one session if no process did within OIDC_REFRESH_SECONDS."""
        try:
            claimed = await leases.loop_client().set(
                claim_key(key), "1", nx=True, ex=settings.OIDC_REFRESH_SECONDS)
            if claimed:
                await database_sync_to_async(refresh.refresh_session, thread_sensitive=False,
                                             executor=THREADS)(store_class, key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, faults.OUTSIDE):
                faults.contained(log, "an OIDC session refresh failed")
            log.warning("an OIDC session refresh failed (tried again in %s s): %s",
                        settings.OIDC_REFRESH_SECONDS, exc)
        finally:
            self.running.pop(key, None)


def refresher():
    """Return the running loop's Refresher."""
    loop = asyncio.get_running_loop()
    found = _refreshers.get(loop)
    if found is None:
        found = _refreshers[loop] = Refresher()
    return found
