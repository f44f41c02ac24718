"""Access re-checks for many streams at once: the verdicts of `Source.allows` and the session
rules, in a number of queries that does not grow with the streams."""

from django.contrib.auth.models import Group, User
from django.contrib.sessions.backends.db import SessionStore

from feeds.models import FeedSource
from tailf.models import LogSource
from webapp.streams import access, protocol


def session_of(user):
    """A saved database session for this user."""
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
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
    for (user_id, session, source), lost in zip(entries, together):
        user = User.objects.filter(pk=user_id).first()
        if user is not None and user.is_active and source.enabled and session is not logged_out:
            assert (lost is None) == source.allows(user)
    codes = [lost and lost.code for lost in together]
    assert codes[:40] == [None] * 40
    assert codes[40:] == [protocol.CLOSE_FORBIDDEN, protocol.CLOSE_FORBIDDEN, None,
                          protocol.CLOSE_FORBIDDEN, protocol.CLOSE_FORBIDDEN,
                          protocol.CLOSE_GONE, protocol.CLOSE_FORBIDDEN]
