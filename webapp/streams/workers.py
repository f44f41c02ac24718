"""Which workers are online for which queue: each worker announces itself in Redis.

A worker's main process writes its hostname and queues into one Redis hash every few
seconds; readers ignore entries older than the TTL. This answers "how many workers serve
queue X" in one round trip, without a Celery broadcast.
"""

import json
import logging
import threading
import time
import uuid

from webapp.streams import faults

log = logging.getLogger("tailboard.workers")

REGISTRY = "tailboard:workers"
ANNOUNCE_SECONDS = 5
TTL_SECONDS = 15


def announce(client, hostname, queues, now=None, token=""):
    """Record that this worker is online and consumes these queues (`token`: which process)."""
    client.hset(REGISTRY, hostname, json.dumps({"queues": sorted(queues),
                                                "seen": now or time.time(), "token": token}))


def rival(client, hostname, token, since):
    """The registry entry of `hostname` when another process (another `token`) wrote it after
    `since` (our last announcement): a second live worker with the same name. None otherwise.

    A worker that died is never a rival: it writes nothing after our announcement.
    """
    raw = client.hget(REGISTRY, hostname)
    try:
        entry = json.loads(raw) if raw else None
    except (TypeError, ValueError):
        return None
    if entry and entry.get("token") != token and entry.get("seen", 0) > since:
        return entry
    return None


NAME_TAKEN = ("another worker is running with the name %s (queues %s): each worker needs a "
              "name of its own, or stream stops, the worker registry and Celery's control "
              "commands mix the two up; start this one with -n NAME@%%h (e.g. -n w2@%%h)")


def withdraw(client, hostname):
    """Remove this worker from the registry (clean shutdown)."""
    client.hdel(REGISTRY, hostname)


def by_queue(entries, now=None):
    """Turn raw registry entries into {queue: [hostnames]} of the workers seen recently."""
    now = now or time.time()
    queues = {}
    for hostname, raw in entries.items():
        hostname = hostname.decode() if isinstance(hostname, bytes) else hostname
        try:
            entry = json.loads(raw)
        except (TypeError, ValueError):
            continue
        if now - entry.get("seen", 0) > TTL_SECONDS:
            continue
        for queue in entry.get("queues", []):
            queues.setdefault(queue, []).append(hostname)
    return {queue: sorted(names) for queue, names in sorted(queues.items())}


def online(client):
    """Return {queue: [hostnames]} of the workers online now."""
    return by_queue(client.hgetall(REGISTRY))


async def aonline(client):
    """Async twin of online()."""
    return by_queue(await client.hgetall(REGISTRY))


def start_announcer(hostname, queues):
    """Announce this worker every few seconds from a daemon thread; return a stop function.

    Before each announcement it looks whether another live process announced the same name
    since the last one, and logs an error once if so (two workers started without `-n`).
    Celery's own mingle step drops replies under its own name, so it never says.

    The stop function withdraws the worker at once, so a clean shutdown is seen immediately.
    """
    from webapp.streams.leases import sync_client

    stop = threading.Event()
    token = uuid.uuid4().hex
    warned = False

    def loop():
        nonlocal warned
        client = sync_client()
        last = None
        while not stop.is_set():
            try:
                other = rival(client, hostname, token, last) if last is not None else None
                if other and not warned:
                    log.error(NAME_TAKEN, hostname, ",".join(other.get("queues", [])))
                warned = warned or bool(other)
                last = time.time()
                announce(client, hostname, queues, now=last, token=token)
            except Exception as exc:
                if not isinstance(exc, faults.OUTSIDE):
                    faults.contained(log, "could not announce worker %s", hostname)
                log.warning("could not announce worker %s: %s", hostname, exc)
            stop.wait(ANNOUNCE_SECONDS)

    thread = threading.Thread(target=loop, name="tailboard-announcer", daemon=True)
    thread.start()

    def stop_announcing():
        stop.set()
        thread.join(2)
        try:
            withdraw(sync_client(), hostname)
        except faults.OUTSIDE as exc:
            log.warning("could not withdraw worker %s: %s", hostname, exc)

    return stop_announcing
