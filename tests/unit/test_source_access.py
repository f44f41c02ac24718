"""Default-deny access to sources, in the model rule and on the dashboard."""

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User

from feeds.models import FeedSource
from tailf.models import LogSource

pytestmark = pytest.mark.django_db


@pytest.fixture
def groups():
    """Two groups, ops and dev."""
    return Group.objects.create(name="ops"), Group.objects.create(name="dev")


@pytest.fixture
def catalog(groups):
    """One log and one feed per group, plus one of each shared with nobody."""
    ops, dev = groups
    made = {}
    for group in (ops, dev, None):
        tag = group.name if group else "nobody"
        log = LogSource.objects.create(name=f"{tag}-log", path=f"/var/log/{tag}.log")
        feed = FeedSource.objects.create(name=f"{tag}-feed", url=f"https://example.com/{tag}.xml")
        if group:
            log.groups.add(group)
            feed.groups.add(group)
        made[tag] = (log, feed)
    return made


def names(queryset):
    """Return the sorted names in a queryset."""
    return sorted(s.name for s in queryset)


def visible(user):
    """Return the names of every log and feed the user may see."""
    return names(LogSource.objects.visible_to(user)) + names(FeedSource.objects.visible_to(user))


def member_of(*groups, username="alice", **extra):
    """Create a user in the given groups."""
    user = User.objects.create_user(username, password="pw", **extra)
    user.groups.add(*groups)
    return user


def test_superuser_sees_all_sources(catalog):
    root = User.objects.create_superuser("root", password="pw")
    assert visible(root) == ["dev-log", "nobody-log", "ops-log",
                             "dev-feed", "nobody-feed", "ops-feed"]
    assert all(s.allows(root) for pair in catalog.values() for s in pair)


def test_group_member_sees_only_that_groups_sources(catalog, groups):
    alice = member_of(groups[0])
    assert visible(alice) == ["ops-log", "ops-feed"]
    allowed = {s.name for pair in catalog.values() for s in pair if s.allows(alice)}
    assert allowed == {"ops-log", "ops-feed"}


def test_member_of_two_groups_sees_each_source_once(catalog, groups):
    alice = member_of(*groups)
    assert visible(alice) == ["dev-log", "ops-log", "dev-feed", "ops-feed"]


def test_user_without_group_sees_none(catalog):
    bob = User.objects.create_user("bob", password="pw")
    assert visible(bob) == []
    assert not any(s.allows(bob) for pair in catalog.values() for s in pair)


def test_inactive_user_sees_none(catalog, groups):
    gone = member_of(groups[0], username="gone", is_active=False)
    assert visible(gone) == []
    assert not catalog["ops"][0].allows(gone)


def test_inactive_superuser_sees_none(catalog):
    gone = User.objects.create_superuser("gone", password="pw", is_active=False)
    assert visible(gone) == []


def test_anonymous_user_sees_none(catalog):
    assert visible(AnonymousUser()) == []
    assert not catalog["nobody"][0].allows(AnonymousUser())


def test_dashboard_lists_only_permitted_sources(client, catalog, groups):
    ops_log, ops_feed = catalog["ops"]
    client.force_login(member_of(groups[0]))
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'value="tailf:{ops_log.pk}"' in html
    assert f'value="feeds:{ops_feed.pk}"' in html
    assert "ops-log" in html and "ops-feed" in html
    for hidden in ("dev-log", "dev-feed", "nobody-log", "nobody-feed"):
        assert hidden not in html


def test_dashboard_hides_disabled_sources(client, catalog, groups):
    LogSource.objects.filter(name="ops-log").update(enabled=False)
    client.force_login(member_of(groups[0]))
    html = client.get("/").content.decode()
    assert "ops-log" not in html and "ops-feed" in html


def test_dashboard_for_user_without_group_lists_nothing(client, catalog):
    client.force_login(User.objects.create_user("bob", password="pw"))
    html = client.get("/").content.decode()
    assert 'value="tailf:' not in html and 'value="feeds:' not in html
    assert 'id="no-sources"' in html


def test_dashboard_redirects_anonymous_users_to_login(client, catalog):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert "ops-log" not in response.content.decode()
