"""The Alerts page: the last firings of the rules whose source the user may see, as text."""

import pytest
from django.contrib.auth.models import Group, User

from alerts.models import AlertEvent, AlertRule
from tailf.models import LogSource


@pytest.fixture(autouse=True)
def no_task_starts(monkeypatch):
    from alerts import control

    monkeypatch.setattr(control, "restart", lambda rule: None)
    monkeypatch.setattr(control, "stop", lambda pk, client=None: None)


@pytest.fixture
def world(db):
    ops, web = Group.objects.create(name="ops"), Group.objects.create(name="web")
    shared = LogSource.objects.create(name="app", path="/var/log/app.log")
    shared.groups.add(ops)
    hidden = LogSource.objects.create(name="secret", path="/var/log/secret.log")
    rule = AlertRule.objects.create(name="app errors", kind="log", source_id=shared.pk,
                                    pattern="ERROR")
    other = AlertRule.objects.create(name="secret errors", kind="log", source_id=hidden.pk,
                                     pattern="ERROR")
    AlertEvent.objects.create(rule=rule, matches=2, suppressed=3,
                              samples=["ERROR <script>alert(1)</script>", "ERROR two"],
                              results={"hook": "sent", "mail": "failed after 4 attempts: "
                                                               "connection to 10.0.0.5 refused"})
    AlertEvent.objects.create(rule=other, matches=1, samples=["ERROR in the secret log"])
    viewer = User.objects.create_user("viewer", password="x")
    viewer.groups.add(ops)
    return {"rule": rule, "viewer": viewer, "web": web}


def page(client, user):
    client.force_login(user)
    response = client.get("/alerts/")
    assert response.status_code == 200
    return response.content.decode()


def test_viewers_see_firings_of_sources_shared_with_them_only(client, world):
    text = page(client, world["viewer"])
    assert "app errors" in text and "ERROR two" in text
    assert "secret" not in text


def test_sample_lines_are_rendered_as_text(client, world):
    text = page(client, world["viewer"])
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_viewers_see_whether_a_destination_failed_not_its_detail(client, world):
    text = page(client, world["viewer"])
    assert "mail: failed" in text and "10.0.0.5" not in text


def test_a_rule_with_groups_is_shown_to_their_members_only(client, world):
    world["rule"].groups.add(world["web"])
    assert "app errors" not in page(client, world["viewer"])
    world["viewer"].groups.add(world["web"])
    assert "app errors" in page(client, world["viewer"])


def test_superusers_see_every_firing_with_details(client, world):
    root = User.objects.create_superuser("root", password="x")
    text = page(client, root)
    assert "secret errors" in text and "10.0.0.5" in text


def test_the_page_needs_a_login(client, world):
    response = client.get("/alerts/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_page_speaks_simplified_chinese(client, world):
    client.force_login(world["viewer"])
    text = client.get("/alerts/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    assert "最近触发（最多 100 条）" in text and "2 次匹配" in text
    assert "冷却期间抑制了 3 次" in text
