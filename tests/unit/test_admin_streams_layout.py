"""The favicon is served and linked (no 404 on any page); the admin Streams list keeps to a few
wrapping columns, with the ending and its reason cut to one short line."""

import re
from xml.etree import ElementTree

import pytest
from django.contrib.auth.models import User

from webapp.models import Ending
from webapp.streams import records

pytestmark = pytest.mark.django_db

FAVICON = "/static/tailboard/favicon.svg"


@pytest.fixture
def admin_client(client):
    """A client logged in as a superuser."""
    client.force_login(User.objects.create_superuser("boss", password="pw-boss-123456"))
    return client


def test_favicon_is_served_as_svg(client):
    response = client.get(FAVICON)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/svg+xml")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert ElementTree.fromstring(body).tag == "{http://www.w3.org/2000/svg}svg"


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_pages_link_the_favicon(client, path):
    html = client.get(path).content.decode()
    assert f'<link rel="icon" href="{FAVICON}" type="image/svg+xml">' in html


def test_admin_pages_link_the_favicon_and_the_streams_list_its_wrapping_css(admin_client):
    html = admin_client.get("/admin/webapp/stream/").content.decode()
    assert f'href="{FAVICON}"' in html
    assert 'href="/static/tailboard/admin-streams.css"' in html
    assert admin_client.get("/static/tailboard/admin-streams.css").status_code == 200


def test_streams_list_has_few_columns_and_a_short_how_it_ended(admin_client, viewer,
                                                                log_source):
    stream = records.create(viewer, "log", log_source, {"lines": 0}, "t-1", "specific.x!1")
    long_reason = "worker w1@" + "very-long-host-name-" * 10 + " silent 8 s"
    records.end(stream.pk, Ending.WORKER_LOST, long_reason, 12)
    html = admin_client.get("/admin/webapp/stream/?state=ended").content.decode()
    headers = re.findall(r'<th scope="col" class="[^"]*column-(\w+)', html)
    assert headers == ["id", "state", "username", "source", "worker", "started", "duration",
                       "sent", "how_ended"]
    cell = re.search(r'<td class="field-how_ended"><span title="([^"]*)">([^<]*)</span>', html)
    assert cell, html
    stream.refresh_from_db()
    assert long_reason.startswith(stream.end_reason) and len(stream.end_reason) > 100
    assert cell.group(1) == f"worker lost: {stream.end_reason}"
    assert len(cell.group(2)) <= 60 and cell.group(2).startswith("worker lost: worker w1@")
