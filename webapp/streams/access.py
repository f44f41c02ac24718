"""Who may open and keep a stream: checked at connect and again with every lease renewal."""

from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.core.exceptions import ValidationError
from django.utils.crypto import constant_time_compare

from webapp.reach import Reach
from webapp.streams import protocol
from webapp.streams.text import say


@dataclass(frozen=True)
class Lost:
    """Why a running stream may not go on: 4403 (access lost) or 4410 (source gone)."""

    code: int
    message: str

    @property
    def gone(self):
        """True when the source itself went away (removed or disabled)."""
        return self.code == protocol.CLOSE_GONE


def lost_many(entries):
    """Check many (user id, session, source) entries at once; a Lost or None for each.

    A few queries whatever the number of streams: the users, their groups, each distinct
    session once, and per source model the enabled sources with their groups. The rule is
    `Source.allows`'s (`webapp.reach.Reach`, applied here to the group ids read in bulk),
    the source still enabled, and the session still logging this user in
    (`session_verified`).
    """
    model = get_user_model()
    ids = {user_id for user_id, _, _ in entries}
    found = {user.pk: user for user in model.objects.filter(pk__in=ids)}
    groups = defaultdict(set)
    for pk, group in model.objects.filter(pk__in=ids, groups__isnull=False).values_list(
            "pk", "groups"):
        groups[pk].add(group)
    users = {pk: (user, Reach.of(user, groups[pk])) for pk, user in found.items()}
    sessions = {}
    by_model = defaultdict(set)
    for user_id, session, source in entries:
        key = getattr(session, "session_key", None)
        if (session is not None and key is not None and user_id in users
                and (session.__class__, key, user_id) not in sessions):
            data = session.__class__(session_key=key).load()  # the store's, through a LazyObject
            sessions[(session.__class__, key, user_id)] = session_verified(data,
                                                                           users[user_id][0])
        by_model[type(source)].add(source.pk)
    sources = {}
    for model, pks in by_model.items():
        for pk, group in model.objects.filter(pk__in=pks, enabled=True).values_list(
                "pk", "groups"):
            groups = sources.setdefault((model, pk), set())
            if group is not None:
                groups.add(group)
    return [verdict(user_id, users.get(user_id), session, sessions,
                    sources.get((type(source), source.pk)), source)
            for user_id, session, source in entries]


def session_verified(data, user):
    """True while a session's data (read afresh) still logs this user in.

    Django's own rule (`django.contrib.auth.get_user`): the session names this user and a
    configured backend, and its auth hash matches the user's now — made with `SECRET_KEY`
    or one of `SECRET_KEY_FALLBACKS`. A logout empties the session; a password change or
    reset changes the user's hash (the session that made the change gets the new one).
    """
    try:
        user_id = user._meta.pk.to_python(data[SESSION_KEY])
        backend = data[BACKEND_SESSION_KEY]
    except (KeyError, ValidationError):
        return False
    if user_id != user.pk or backend not in settings.AUTHENTICATION_BACKENDS:
        return False
    if not hasattr(user, "get_session_auth_hash"):
        return True
    stored = data.get(HASH_SESSION_KEY)
    if not stored:
        return False
    return (constant_time_compare(stored, user.get_session_auth_hash())
            or any(constant_time_compare(stored, fallback)
                   for fallback in user.get_session_auth_fallback_hash()))


def verdict(user_id, user, session, sessions, source_groups, source):
    """Decide one entry of `lost_many` from what it read: `user` is (user, Reach) or None,
    `source_groups` the group ids of the enabled source, None when it is gone or disabled."""
    if user is None or user[1].nobody:  # gone or deactivated (a stored user is logged in)
        return Lost(protocol.CLOSE_FORBIDDEN, say("access_deactivated"))
    key = getattr(session, "session_key", None)
    if session is not None and (key is None or not sessions[(session.__class__, key, user_id)]):
        return Lost(protocol.CLOSE_FORBIDDEN, say("access_logged_out"))
    if source_groups is None:
        return Lost(protocol.CLOSE_GONE, say("source_removed", name=source.name))
    if not user[1].sees(source_groups):
        return Lost(protocol.CLOSE_FORBIDDEN, say("access_revoked", name=source.name))
    return None
