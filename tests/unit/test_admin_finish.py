"""The admin says it is Tailboard's, and the log source form says which folders a path may be
under (LOG_ROOTS)."""

import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("boss", password="pw-boss-123456"))
    return client


def test_admin_pages_are_headed_tailboard_administration(admin_client):
    html = admin_client.get("/admin/").content.decode()
    assert "Tailboard administration" in html
    assert "Django administration" not in html


def test_the_log_path_field_names_the_allowed_roots(admin_client, settings):
    settings.LOG_ROOTS = ["/srv/logs", "/var/log/apps"]
    html = admin_client.get("/admin/tailf/logsource/add/").content.decode()
    assert "under one of the log roots (LOG_ROOTS): /srv/logs, /var/log/apps." in html
