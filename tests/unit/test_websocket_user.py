"""The user a WebSocket connects as (`webapp.wsauth.session_user`): Django's rule for
sessions, fallback secret keys included, and nothing in the session changed."""

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore

from webapp.wsauth import session_user


def session_of(user, backend="django.contrib.auth.backends.ModelBackend"):
    """A saved database session logging this user in, as `django.contrib.auth.login` does."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = backend
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return SessionStore(session_key=session.session_key)  # read back, as a connect reads it


def test_a_session_signed_with_a_fallback_key_connects_as_its_user(viewer, settings):
    old = session_of(viewer)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-" + "k" * 40
    fresh = SessionStore(session_key=old.session_key)
    assert session_user(fresh) == viewer
    assert fresh.session_key == old.session_key and not fresh.modified  # no new cookie needed
    settings.SECRET_KEY_FALLBACKS = []
    assert not session_user(SessionStore(session_key=old.session_key)).is_authenticated


def test_a_session_with_the_current_key_connects_and_others_are_anonymous(viewer):
    assert session_user(session_of(viewer)) == viewer
    stale = session_of(viewer)
    viewer.set_password("changed-" + "p" * 12)
    viewer.save()
    assert not session_user(SessionStore(session_key=stale.session_key)).is_authenticated
    assert not session_user(SessionStore()).is_authenticated  # no session at all
    unknown_backend = session_of(viewer, backend="somewhere.else.Backend")
    assert not session_user(unknown_backend).is_authenticated
    forged = session_of(viewer)
    forged[SESSION_KEY] = "not-a-number"
    assert not session_user(forged).is_authenticated
    inactive = User.objects.create_user("sleeper", password="x", is_active=False)
    assert not session_user(session_of(inactive)).is_authenticated
