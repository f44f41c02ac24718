"""Access re-checks for many streams at once: the verdicts of `Source.allows` and the session
rules, in a number of queries that does not grow with the streams."""

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Group, User
from django.contrib.sessions.backends.db import SessionStore

from feeds.models import FeedSource
from tailf.models import LogSource
from webapp.streams import access, protocol


def session_of(user):
    """A saved database session logging this user in, as `django.contrib.auth.login` does."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session


def test_many_streams_are_judged_like_one_in_a_bounded_number_of_queries(
        viewer, log_source, django_assert_max_num_queries):
    ops = Group.objects.get(name="ops")
    other = User.objects.create_user("other", password="x")
    boss = User.objects.create_superuser("boss", password="x")
    gone = User.objects.create_user("gone", password="x", is_active=False)
    logs = [LogSource.objects.create(name=f"log {n}", path=f"/var/log/{n}.log")
            for n in range(40)]
    for source in logs:
        source.groups.add(ops)
    feed = FeedSource.objects.create(name="feed", url="https://example.org/feed")
    disabled = LogSource.objects.create(name="off", path="/var/log/off.log", enabled=False)
    mine, logged_out = session_of(viewer), session_of(viewer)
    logged_out.delete()
    entries = ([(viewer.pk, mine, source) for source in logs]
               + [(viewer.pk, mine, feed), (other.pk, None, log_source),
                  (boss.pk, None, feed), (gone.pk, None, log_source),
                  (viewer.pk, logged_out, log_source), (viewer.pk, mine, disabled),
                  (12345, None, log_source)])
    with django_assert_max_num_queries(8):
        together = access.lost_many(entries)
    for (user_id, session, source), lost in zip(entries, together, strict=False):
        user = User.objects.filter(pk=user_id).first()
        if user is not None and user.is_active and source.enabled and session is not logged_out:
            assert (lost is None) == source.allows(user)
    codes = [lost and lost.code for lost in together]
    assert codes[:40] == [None] * 40
    assert codes[40:] == [protocol.CLOSE_FORBIDDEN, protocol.CLOSE_FORBIDDEN, None,
                          protocol.CLOSE_FORBIDDEN, protocol.CLOSE_FORBIDDEN,
                          protocol.CLOSE_GONE, protocol.CLOSE_FORBIDDEN]


def test_a_password_change_ends_the_streams_of_the_other_sessions(viewer, log_source):
    here, elsewhere = session_of(viewer), session_of(viewer)
    assert access.lost_many([(viewer.pk, here, log_source)]) == [None]
    viewer.set_password("changed-" + "p" * 12)
    viewer.save()
    # The session that made the change keeps its user (update_session_auth_hash).
    stored = SessionStore(session_key=here.session_key)
    stored[HASH_SESSION_KEY] = viewer.get_session_auth_hash()
    stored.save()
    kept, ended = access.lost_many([(viewer.pk, here, log_source),
                                    (viewer.pk, elsewhere, log_source)])
    assert kept is None
    assert ended.code == protocol.CLOSE_FORBIDDEN


def test_a_session_of_another_user_or_without_its_hash_is_refused(viewer, log_source):
    other = User.objects.create_user("other", password="x")
    forged = session_of(other)
    no_hash = session_of(viewer)
    del no_hash[HASH_SESSION_KEY]
    no_hash.save()
    verdicts = access.lost_many([(viewer.pk, forged, log_source),
                                 (viewer.pk, no_hash, log_source)])
    assert [lost and lost.code for lost in verdicts] == [protocol.CLOSE_FORBIDDEN] * 2


def test_a_session_signed_with_a_fallback_secret_key_goes_on(viewer, log_source, settings):
    old = session_of(viewer)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-" + "k" * 40
    assert access.lost_many([(viewer.pk, old, log_source)]) == [None]
    settings.SECRET_KEY_FALLBACKS = []
    assert access.lost_many([(viewer.pk, old, log_source)])[0].code == protocol.CLOSE_FORBIDDEN
