"""Who a WebSocket belongs to: the session's user, by Django's rule, fallback keys included.

Channels' own lookup (`channels.auth.get_user`) compares the session's auth hash with the one
made from `SECRET_KEY` alone, so after a key rotation (`SECRET_KEY_FALLBACKS`) every stream
would be refused while the pages still work. This lookup follows `django.contrib.auth.get_user`
(`access.session_verified`), except that it changes nothing in the session: a WebSocket cannot
send the new cookie a cycled session key would need. The next page load renews the hash.
"""

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY, load_backend
from django.contrib.auth.models import AnonymousUser

from webapp.streams.access import session_verified


def session_user(session):
    """The user a session logs in (a read of the session store), or AnonymousUser."""
    try:
        backend_path = session[BACKEND_SESSION_KEY]
        user_id = session[SESSION_KEY]
    except KeyError:
        return AnonymousUser()
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return AnonymousUser()
    try:
        user = load_backend(backend_path).get_user(user_id)
    except (TypeError, ValueError):  # an id of the wrong type in a forged or old session
        return AnonymousUser()
    if user is None or not session_verified(session, user):
        return AnonymousUser()
    return user


class SessionAuthMiddleware(AuthMiddleware):
    """Channels' AuthMiddleware with `session_user` for the lookup."""

    async def resolve_scope(self, scope):
        scope["user"]._wrapped = await database_sync_to_async(session_user)(scope["session"])


def AuthStack(inner):  # noqa: N802 (named like Channels' AuthMiddlewareStack)
    """Cookies, the session and its user, around `inner`."""
    return CookieMiddleware(SessionMiddleware(SessionAuthMiddleware(inner)))
