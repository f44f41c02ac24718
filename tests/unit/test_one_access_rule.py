"""Every place that decides who may see or open a source gives the same answer, for every
registered kind, on a matrix of users (superuser, inactive, staff without groups, members
of one group or another, anonymous) and sources (enabled or disabled, with or without
groups): the query (`visible_to`, `open_to`), the per-object check (`allows`), the bulk
re-check of running streams (`access.lost_many`), the connect-time check
(`session.authorize`), the admin, the dashboard, `/healthz`, stream records and alert rules.
The expected answer is spelled out here, apart from the code under test."""

import re
from itertools import product

import pytest
from asgiref.sync import async_to_sync
from django.contrib import admin
from django.contrib.auth.models import AnonymousUser, Group, User
from django.test import RequestFactory

from alerts.access import rules_visible_to
from alerts.models import AlertRule
from tests.unit.test_kind_contract import KindContract
from webapp import views
from webapp.streams import access, protocol, records, session
from webapp.streams.kinds import all_kinds

pytestmark = pytest.mark.django_db

GROUP_SETS = ((), ("ops",), ("dev",), ("ops", "dev"))


def expected_sight(label, source_groups):
    """The rule, written out: who sees a source with these group names."""
    return {
        "superuser": True,
        "inactive member of ops": False,
        "inactive superuser": False,
        "staff without groups": False,
        "member of ops": "ops" in source_groups,
        "member of dev": "dev" in source_groups,
        "member of ops and dev": bool(source_groups),
        "anonymous": False,
    }[label]


@pytest.fixture
def people(db):
    """The users of the matrix, by label."""
    ops, dev = Group.objects.create(name="ops"), Group.objects.create(name="dev")

    def user(name, *groups, **extra):
        made = User.objects.create_user(name, password="x", **extra)
        made.groups.add(*groups)
        return made

    return {
        "superuser": User.objects.create_superuser("root", password="x"),
        "inactive member of ops": user("gone", ops, is_active=False),
        "inactive superuser": User.objects.create_superuser("oldroot", password="x",
                                                            is_active=False),
        "staff without groups": user("staff", is_staff=True),
        "member of ops": user("alice", ops, is_staff=True),
        "member of dev": user("bob", dev),
        "member of ops and dev": user("carol", ops, dev),
        "anonymous": AnonymousUser(),
    }


@pytest.fixture
def catalog(people):
    """For every registered kind, a source per (enabled, groups); with a stream record and
    an alert rule (without groups of its own) on each."""
    makers = {cls.slug: cls() for cls in KindContract.__subclasses__()}
    root = people["superuser"]
    made = []
    for kind in all_kinds():
        assert kind.slug in makers, f"kind {kind.slug} has no source factory"
        for enabled, names in product((True, False), GROUP_SETS):
            source = makers[kind.slug].make_source()
            source.name = f"{kind.slug}-{'on' if enabled else 'off'}-{'+'.join(names) or 'none'}"
            source.enabled = enabled
            source.save()
            source.groups.set(Group.objects.filter(name__in=names))
            stream = records.create(root, kind.slug, source, {}, f"task-{source.name}",
                                    f"specific.{source.name}!x")
            rule = AlertRule.objects.create(name=f"rule-{source.name}", kind=kind.slug,
                                            source_id=source.pk, pattern="x")
            made.append((kind, source, names, stream, rule))
    return made


def test_every_place_agrees_on_who_sees_and_opens_each_source(people, catalog, client):
    requests = RequestFactory()
    entries = [(user.pk, None, source) for user in people.values()
               for _, source, _, _, _ in catalog]
    verdicts = iter(access.lost_many(entries))
    disagreements = []
    for label, user in people.items():
        seen_records = set(records.visible_to(user).values_list("pk", flat=True))
        seen_rules = set(rules_visible_to(user).values_list("pk", flat=True))
        healthz = {(slug, source.pk) for slug, source in views.enabled_sources(user)}
        request = requests.get("/admin/")
        request.user = user
        for kind, source, names, stream, rule in catalog:
            sees = expected_sight(label, names)
            opens = sees and source.enabled
            model = kind.source_model
            registered = admin.site._registry[model]
            lost = next(verdicts)
            answers = {
                "visible_to": model.objects.visible_to(user).filter(pk=source.pk).exists(),
                "allows": source.allows(user),
                "admin": registered.get_queryset(request).filter(pk=source.pk).exists(),
                "stream records": stream.pk in seen_records,
                "alert rules": rule.pk in seen_rules,
            }
            opened = {
                "open_to": model.objects.open_to(user).filter(pk=source.pk).exists(),
                "healthz": (kind.slug, source.pk) in healthz,
                "lost_many": lost is None,
                "authorize": authorized(kind, user, source),
            }
            for place, answer in answers.items():
                if answer != sees:
                    disagreements.append((label, source.name, place, answer))
            for place, answer in opened.items():
                if answer != opens:
                    disagreements.append((label, source.name, place, answer))
            if lost is not None and not opens:
                code = protocol.CLOSE_GONE if sees and not source.enabled else None
                if code is not None and lost.code != code:
                    disagreements.append((label, source.name, "lost_many code", lost.code))
        on_dashboard = dashboard_sources(client, user)
        for kind, source, names, _, _ in catalog:
            if ((kind.url, source.pk) in on_dashboard) != (
                    expected_sight(label, names) and source.enabled):
                disagreements.append((label, source.name, "dashboard",
                                      (kind.url, source.pk) in on_dashboard))
    assert disagreements == []


def test_the_matrix_covers_every_kind_and_both_answers(people, catalog):
    assert {kind.slug for kind, *_ in catalog} == {kind.slug for kind in all_kinds()}
    answers = {expected_sight(label, names) and source.enabled
               for label in people for _, source, names, _, _ in catalog}
    assert answers == {True, False}


def authorized(kind, user, source):
    """Whether the connect-time check lets this user open the source (else its close code
    is one of the refusals for login, a missing/disabled source, or access)."""
    try:
        async_to_sync(session.authorize)(kind, user, str(source.pk), "")
        return True
    except session.Refusal as refusal:
        assert refusal.code in (protocol.CLOSE_NOT_LOGGED_IN, protocol.CLOSE_NO_SOURCE,
                                protocol.CLOSE_FORBIDDEN)
        return False


def dashboard_sources(client, user):
    """The (kind url, source id) options the dashboard offers this user (none when it
    does not sign them in)."""
    client.logout()
    if user.is_authenticated:
        client.force_login(user)
    response = client.get("/")
    if response.status_code != 200:
        return set()
    return {(url, int(pk)) for url, pk in
            re.findall(r'<option value="([a-z]+):(\d+)"', response.content.decode())}
