"""Where Redis is, and how each client of the project reaches it: one URL, or Sentinel.

Every Redis client Tailboard makes gets its connection parameters here: the Celery broker
and result store, the channel layer, the leases and the rest (`leases.sync_client`,
`leases.async_client`), the revoke check and `/healthz`. Without `REDIS_SENTINELS` each of
them connects to `REDIS_URL`. With `REDIS_SENTINELS` (`host:port,...`) and
`REDIS_SENTINEL_MASTER`, each asks the sentinels which server is the master of that name
whenever it (re)connects, so a failover moves every client to the new master; `REDIS_URL`
then gives only the database number and the master's credentials (its host and port are
not used). `REDIS_SENTINEL_PASSWORD` is the sentinels' own password, if they have one.
"""

import functools
from dataclasses import dataclass
from urllib.parse import quote

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.connection import parse_url

# Seconds to connect to, and to wait for an answer from, one sentinel: a dead sentinel is
# skipped quickly for the next one.
SENTINEL_TIMEOUT = 2.0


def parse_sentinels(raw):
    """Return [(host, port)] from `host:port,host:port` (IPv6 as `[::1]:26379`).

    Raises ValueError naming the entry that is not a host and a port.
    """
    found = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        host, colon, port = entry.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"REDIS_SENTINELS: {entry!r} is not host:port (e.g. "
                             "10.0.0.5:26379)")
        found.append((host, int(port)))
    return found


@dataclass(frozen=True)
class RedisPlace:
    """A Redis to connect to: `url`, or the master `master` named by `sentinels`."""

    url: str
    sentinels: tuple = ()
    master: str = ""
    sentinel_password: str = ""

    @property
    def via_sentinel(self):
        """True when clients find the master through Sentinel."""
        return bool(self.sentinels)

    def master_params(self):
        """The database number and credentials of the master (from `url`)."""
        params = parse_url(self.url)
        return {key: params[key] for key in ("db", "username", "password") if params.get(key)}

    def sentinel_kwargs(self):
        """Connection options of the connections to the sentinels themselves."""
        options = {"socket_timeout": SENTINEL_TIMEOUT, "socket_connect_timeout": SENTINEL_TIMEOUT}
        if self.sentinel_password:
            options["password"] = self.sentinel_password
        return options

    def describe(self):
        """Where Redis is, for logs and messages (no password)."""
        if not self.via_sentinel:
            parts = parse_url(self.url)
            host, port = parts.get("host", parts.get("path", "?")), parts.get("port", 6379)
            return f"redis://{host}:{port}/{parts.get('db', 0)}"
        where = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"master {self.master!r} through the sentinels {where}"

    def sync_client(self, **options):
        """A new blocking client (redis.Redis) with these connection options."""
        if not self.via_sentinel:
            return redis.Redis.from_url(self.url, **options)
        sentinel = redis.sentinel.Sentinel(list(self.sentinels),
                                           sentinel_kwargs=self.sentinel_kwargs())
        return sentinel.master_for(self.master, redis_class=redis.Redis,
                                   **self.master_params(), **options)

    def async_client(self, **options):
        """A new asyncio client (redis.asyncio.Redis) with these connection options."""
        if not self.via_sentinel:
            return redis.asyncio.Redis.from_url(self.url, **options)
        sentinel = redis.asyncio.sentinel.Sentinel(list(self.sentinels),
                                                   sentinel_kwargs=self.sentinel_kwargs())
        return sentinel.master_for(self.master, redis_class=redis.asyncio.Redis,
                                   **self.master_params(), **options)

    def channel_host(self, **options):
        """One channels-redis `hosts` entry: `address`, or `sentinels` and `master_name`."""
        if not self.via_sentinel:
            return {"address": self.url, **options}
        return {"sentinels": list(self.sentinels), "master_name": self.master,
                "sentinel_kwargs": self.sentinel_kwargs(), **self.master_params(), **options}

    def celery_url(self):
        """The Celery broker and result backend URL: `url`, or one `sentinel://` per sentinel.

        The master's credentials and database number ride on each sentinel URL, where kombu
        and Celery's sentinel backend read them for the master.
        """
        if not self.via_sentinel:
            return self.url
        params = self.master_params()
        user, password = (quote(params.get(key, ""), safe="") for key in ("username", "password"))
        auth = f"{user}:{password}@" if password else f"{user}@" if user else ""
        db = params.get("db", 0)
        return ";".join(f"sentinel://{auth}{host_literal(host)}:{port}/{db}"
                        for host, port in self.sentinels)

    def celery_transport_options(self):
        """Transport options Celery's broker and result backend need for this place."""
        if not self.via_sentinel:
            return {}
        return {"master_name": self.master, "sentinel_kwargs": self.sentinel_kwargs()}


def host_literal(host):
    """A host as it goes into a URL (IPv6 addresses in brackets)."""
    return f"[{host}]" if ":" in host else host


@functools.lru_cache(maxsize=16)
def place(url, sentinels="", master="", sentinel_password=""):
    """Return the RedisPlace of these settings; ValueError says what is wrong with them."""
    found = parse_sentinels(sentinels) if sentinels else []
    if found and not master:
        raise ValueError("REDIS_SENTINELS is set: REDIS_SENTINEL_MASTER (the master's name "
                         "in the sentinels' configuration) is needed too")
    if master and not found:
        raise ValueError("REDIS_SENTINEL_MASTER is set: REDIS_SENTINELS (host:port,...) is "
                         "needed too")
    if sentinel_password and not found:
        raise ValueError("REDIS_SENTINEL_PASSWORD is set without REDIS_SENTINELS")
    if not found:  # REDIS_URL alone: used as given, as before
        return RedisPlace(url)
    try:
        parts = parse_url(url)
    except ValueError as exc:
        raise ValueError(f"REDIS_URL: {exc}") from None
    if parts.get("connection_class") not in (None, redis.connection.Connection):
        raise ValueError("REDIS_URL: with REDIS_SENTINELS it must be a redis:// URL (its "
                         "database number and credentials are used; TLS and unix sockets "
                         "through Sentinel are not supported)")
    return RedisPlace(url, tuple(found), master, sentinel_password)


def configured():
    """The RedisPlace of the running settings (read at each call: tests change them)."""
    from django.conf import settings

    return place(settings.REDIS_URL, ",".join(getattr(settings, "REDIS_SENTINELS", ())),
                 getattr(settings, "REDIS_SENTINEL_MASTER", ""),
                 getattr(settings, "REDIS_SENTINEL_PASSWORD", ""))
