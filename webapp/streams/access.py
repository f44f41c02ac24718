"""Who may open and keep a stream: checked at connect and again with every lease renewal."""

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
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None or not user.is_active:
        return Lost(protocol.CLOSE_FORBIDDEN, say("access_deactivated"))
    key = getattr(session, "session_key", None)
    if session is not None and (key is None or not session.exists(key)):
        return Lost(protocol.CLOSE_FORBIDDEN, say("access_logged_out"))
    current = type(source).objects.filter(pk=source.pk, enabled=True).first()
    if current is None:
        return Lost(protocol.CLOSE_GONE, say("source_removed", name=source.name))
    if not current.allows(user):
        return Lost(protocol.CLOSE_FORBIDDEN, say("access_revoked", name=source.name))
    return None
