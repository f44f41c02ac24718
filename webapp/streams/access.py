"""Who may open and keep a stream: checked at connect and again with every lease renewal."""

from collections import defaultdict
from dataclasses import dataclass

from django.contrib.auth import get_user_model

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


def lost(user_id, session, source):
    """Return a Lost when the viewer may no longer see the source, else None (blocking)."""
    return lost_many([(user_id, session, source)])[0]


def lost_many(entries):
    """Check many (user id, session, source) entries at once; a Lost or None for each.

    A few queries whatever the number of streams: the users with their groups, each
    distinct session once, and per source model the enabled sources with their groups.
    Same rule as `Source.allows`: an active superuser, or a group shared with the source.
    """
    users = {}
    for pk, active, superuser, group in get_user_model().objects.filter(
            pk__in={user_id for user_id, _, _ in entries}).values_list(
            "pk", "is_active", "is_superuser", "groups"):
        user = users.setdefault(pk, (active, superuser, set()))
        if group is not None:
            user[2].add(group)
    sessions = {}
    by_model = defaultdict(set)
    for _, session, source in entries:
        key = getattr(session, "session_key", None)
        if session is not None and key is not None and (type(session), key) not in sessions:
            sessions[(type(session), key)] = session.exists(key)
        by_model[type(source)].add(source.pk)
    sources = {}
    for model, pks in by_model.items():
        for pk, group in model.objects.filter(pk__in=pks, enabled=True).values_list(
                "pk", "groups"):
            groups = sources.setdefault((model, pk), set())
            if group is not None:
                groups.add(group)
    return [verdict(users.get(user_id), session, sessions, sources.get((type(source),
                                                                          source.pk)), source)
            for user_id, session, source in entries]


def verdict(user, session, sessions, source_groups, source):
    """Decide one entry of `lost_many` from what it read."""
    if user is None or not user[0]:
        return Lost(protocol.CLOSE_FORBIDDEN, say("access_deactivated"))
    key = getattr(session, "session_key", None)
    if session is not None and (key is None or not sessions[(type(session), key)]):
        return Lost(protocol.CLOSE_FORBIDDEN, say("access_logged_out"))
    if source_groups is None:
        return Lost(protocol.CLOSE_GONE, say("source_removed", name=source.name))
    _, superuser, user_groups = user
    if not superuser and not user_groups & source_groups:
        return Lost(protocol.CLOSE_FORBIDDEN, say("access_revoked", name=source.name))
    return None
