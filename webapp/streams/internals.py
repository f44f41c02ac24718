"""Every place Tailboard reaches into a library's private or undocumented internals.

The stream transport leans on a few things no library promises: redis-py's connection
stream, channels-redis' send rotation and receive buffers, the Twisted transport behind
Daphne's ASGI `send`, and Celery's and billiard's bookkeeping of a revoked job; outside it,
the journal reader's C calls (systemd-python) and a directory user of django-auth-ldap. Each such
access is one function here, written against the versions in `WRITTEN_AGAINST` (pinned in
requirements.txt). `RELIANCES` lists what each function needs of its library;
tests/unit/test_library_internals.py checks that the installed versions are the pinned ones
and that everything listed is still there, and fails naming the library and the attribute
when not. Upgrading one of these libraries means reading the functions below against its new
source, then moving its pin here and in requirements.txt together. `RELIANCES` also lists
what webapp/brokerlink.py's worker consumer relies on in Celery and kombu (it wraps one method
for one call and touches nothing private).

`CHANNEL_LAYER_STOCK=1` (webapp/settings.py) runs stock `channels_redis.core.RedisChannelLayer`
in Daphne and in the tasks, which leaves out everything here that redis-py and channels-redis
are reached for (weblayer, tasklayer, redislink); docs/architecture.md says what is lost.
"""

from typing import NamedTuple

# The library versions the functions below were written against (requirements.txt pins).
WRITTEN_AGAINST = {
    "redis": "8.1.0",
    "channels-redis": "4.3.0",
    "channels": "4.3.2",
    "daphne": "4.2.3",
    "Twisted": "26.10.0",
    "celery": "5.7.0",
    "billiard": "4.3.2",
    "kombu": "5.7.0",
    "google-re2": "1.1.20251105",
    # requirements-native.txt: the journal kind's reader and LDAP sign-in
    "systemd-python": "235",
    "django-auth-ldap": "5.4.0",
}


class Reliance(NamedTuple):
    """One thing a library does not promise and a function here relies on."""

    library: str  # the distribution, as pinned in requirements.txt
    owner: str  # the dotted path of the class (or function) that has it
    name: str  # the attribute set or read on it, or a text its source must contain
    used_by: str
    in_source: bool = False  # `name` is a text of `owner`'s source, not an attribute


RELIANCES = (
    Reliance("redis", "redis.asyncio.connection.AbstractConnection", "_writer",
             "stream_transport: a redislink.Link takes over the connection's transport"),
    Reliance("redis", "redis.asyncio.connection.AbstractConnection", "pack_commands",
             "redislink.Link.call packs its commands with the connection's own encoder"),
    Reliance("redis", "redis.asyncio.connection.ConnectionPool", "make_connection",
             "redislink.Link opens a connection set up like the pool's"),
    Reliance("channels-redis", "channels_redis.core.RedisChannelLayer",
             "_send_index_generator",
             "next_send_host: tasklayer.OneTripLayer picks a host as channels-redis' send does"),
    Reliance("channels-redis", "channels_redis.core.RedisChannelLayer", "receive_buffer",
             "receive_buffers: weblayer.ReaderLayer queues each channel's messages there"),
    Reliance("channels-redis", "channels_redis.core.RedisChannelLayer.send",
             "zremrangebyscore",
             "tasklayer.SEND_SCRIPT repeats channels-redis' send: drop expired, count, add, "
             "expire", in_source=True),
    Reliance("channels-redis", "channels_redis.core.RedisChannelLayer.send", "zcount",
             "tasklayer.SEND_SCRIPT (capacity check)", in_source=True),
    Reliance("channels-redis", "channels_redis.core.RedisChannelLayer.send", "zadd",
             "tasklayer.SEND_SCRIPT (the message, scored by its send time)", in_source=True),
    Reliance("channels-redis", "channels_redis.core.RedisChannelLayer.send", "expire",
             "tasklayer.SEND_SCRIPT (the channel's expiry)", in_source=True),
    Reliance("channels", "channels.consumer.AsyncConsumer.__call__",
             "self.base_send = send",
             "consumer.StreamConsumer.run copies AsyncConsumer.__call__ (dispatching through "
             "aio.dispatch_many instead of channels.utils.await_many_dispatch)",
             in_source=True),
    Reliance("channels", "channels.consumer.AsyncConsumer.__call__",
             "[receive, self.channel_receive], self.dispatch",
             "consumer.StreamConsumer.run: the two sources it dispatches from", in_source=True),
    Reliance("channels", "channels.sessions.InstanceSessionWrapper", "real_send",
             "find_transport: the session middleware's wrapped send"),
    Reliance("daphne", "daphne.server.Server.create_application",
             "send=partial(self.handle_reply, protocol)",
             "find_transport: Daphne's send is a partial over the connection's protocol",
             in_source=True),
    Reliance("Twisted", "twisted.internet.abstract.FileDescriptor", "dataBuffer",
             "buffered_bytes: the bytes a transport holds and has not written"),
    Reliance("Twisted", "twisted.internet.abstract.FileDescriptor", "offset",
             "buffered_bytes: how much of dataBuffer is written already"),
    Reliance("Twisted", "twisted.internet.abstract.FileDescriptor", "_tempDataLen",
             "buffered_bytes: bytes accepted since the last write to the socket"),
    Reliance("celery", "celery.worker.request.Request", "_apply_result",
             "pool_job: the pool job of a revoked request"),
    Reliance("celery", "celery.concurrency.prefork.TaskPool", "_pool",
             "clear_termination_marks: billiard's pool behind Celery's"),
    Reliance("billiard", "billiard.pool.ApplyResult", "_worker_pid",
             "job_pid: the process a job runs in"),
    Reliance("billiard", "billiard.pool.Pool", "_process_by_pid",
             "clear_termination_marks: the process of a pid"),
    Reliance("billiard", "billiard.process.BaseProcess", "_controlled_termination",
             "clear_termination_marks: billiard's 'terminated on purpose' mark"),
    Reliance("billiard", "billiard.pool.Pool", "_job_terminated",
             "clear_termination_marks: billiard's 'its job was terminated' mark (set on "
             "the process by the pool)", in_source=True),
    Reliance("celery", "celery.worker.consumer.Consumer.ensure_connected",
             "conn = conn.ensure_connection(",
             "brokerlink.Consumer: the pauses of Celery's reconnection are those of the one "
             "ensure_connection call it wraps", in_source=True),
    Reliance("kombu", "kombu.connection.Connection._ensure_connection", "interval_max",
             "brokerlink.RETRY_PAUSES: the pauses ensure_connection takes", in_source=True),
    Reliance("billiard", "billiard.common", "terminate_handler_fired",
             "stop.termination_lost: billiard's SIGTERM handler ran"),
    Reliance("google-re2", "re2._Regexp", "_regexp",
             "re2_line_search: the compiled pattern's C++ object"),
    Reliance("google-re2", "re2", "_Anchor",
             "re2_line_search: the unanchored search mode"),
    Reliance("google-re2", "re2", "_NULL_SPAN",
             "re2_line_search: what the C++ Match answers for no match"),
    *(Reliance("systemd-python", "systemd._reader._Reader", name,
               "journal_steps: the C reader's call, without Reader's per-field converters")
      for name in ("_next", "_previous", "_get_all", "_get_realtime", "_get_cursor")),
    Reliance("django-auth-ldap", "django_auth_ldap.backend", "_LDAPUser",
             "ldap_directory_user: a directory user looked up without a login"),
    Reliance("django-auth-ldap", "django_auth_ldap.backend._LDAPUser", "_check_requirements",
             "ldap_check_requirements: LDAP_REQUIRE_GROUP / LDAP_DENY_GROUP outside a login"),
)


# google-re2 -------------------------------------------------------------------------------

def re2_line_search(regexp):
    """Return a predicate true when a compiled RE2 pattern is found in a line (str or bytes).

    The same test as `regexp.search(line)` with one C++ call: google-re2's `search` builds a
    generator, a position table and a match object for every line, which at 100,000 lines/s
    costs a third of a core (alerts/matcher.py). Falls back to `search` if the binding changes.
    """
    import re2

    try:
        match, anchor, nothing = regexp._regexp.Match, re2._Anchor.UNANCHORED, re2._NULL_SPAN
    except AttributeError:
        return regexp.search

    def found(line):
        text = line.encode("utf-8") if isinstance(line, str) else line
        return match(anchor, text, 0, len(text))[0] != nothing

    return found


# systemd-python ---------------------------------------------------------------------------

def journal_steps(reader):
    """The calls of the C reader under a `systemd.journal.Reader` that skip Reader's per-field
    converters (journal/reader.py reads fields as bytes): (next, previous, all fields, realtime
    in µs, cursor)."""
    return (reader._next, reader._previous, reader._get_all, reader._get_realtime,
            reader._get_cursor)


# django-auth-ldap -------------------------------------------------------------------------

def ldap_directory_user(backend, username):
    """A django-auth-ldap directory user for `username`, looked up without a login (what
    `manage.py directory sync` checks)."""
    from django_auth_ldap.backend import _LDAPUser

    return _LDAPUser(backend, username=username)


def ldap_check_requirements(directory_user):
    """Apply LDAP_REQUIRE_GROUP / LDAP_DENY_GROUP to a directory user; raises its
    `AuthenticationFailed` when they turn the user away."""
    directory_user._check_requirements()


# redis-py ---------------------------------------------------------------------------------

def stream_transport(connection):
    """Return the asyncio transport of a connected redis-py asyncio connection."""
    return connection._writer.transport


# channels-redis ---------------------------------------------------------------------------

def next_send_host(layer):
    """Return the host index channels-redis' `send` would use for a non-process channel."""
    return next(layer._send_index_generator)


def receive_buffers(layer):
    """Return a RedisChannelLayer's per-channel queues (a defaultdict of bounded queues)."""
    return layer.receive_buffer


# Daphne, channels' session middleware and Twisted ----------------------------------------

def find_transport(send, depth=8):
    """Return the Twisted transport behind an ASGI send callable, or None when there is none.

    Daphne's send is `partial(server.handle_reply, protocol)`, possibly wrapped by channels'
    session middleware (`real_send`); the protocol's `transport` holds the buffered bytes.
    """
    seen = 0
    queue = [send]
    while queue and seen < depth * 4:
        item = queue.pop(0)
        seen += 1
        transport = getattr(item, "transport", None)
        if transport is not None and hasattr(transport, "dataBuffer"):
            return transport
        owner = getattr(item, "__self__", None)
        queue.extend(value for value in (
            getattr(item, "func", None), *getattr(item, "args", ()), owner,
            getattr(owner, "real_send", None), getattr(item, "real_send", None))
            if value is not None and value is not item)
    return None


def buffered_bytes(transport):
    """Return the bytes a Twisted transport has accepted and not yet written to the socket."""
    if transport is None:
        return 0
    return (len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
            + getattr(transport, "_tempDataLen", 0))


# Celery and billiard ----------------------------------------------------------------------

def pool_job(request):
    """Return the pool job of a Celery request (billiard's ApplyResult), or None once gone."""
    ref = getattr(request, "_apply_result", None)
    return ref() if ref is not None else None


def job_pid(job):
    """Return the pid of the pool process running a billiard job, or None."""
    return getattr(job, "_worker_pid", None)


def clear_termination_marks(pool, pid):
    """Clear billiard's "terminated on purpose" marks on a live pool process of Celery's pool.

    Returns True when a live process was found and cleared.
    """
    inner = getattr(pool, "_pool", None)
    find = getattr(inner, "_process_by_pid", None)
    if find is None or not pid:
        return False
    process, _ = find(pid)
    if process is None or process.exitcode is not None:
        return False
    process._controlled_termination = False
    process._job_terminated = False
    return True
