"""The long-poll views when Redis does not answer: a 503 that says so (in the body and the
log), not a 500 with a traceback; the dashboard retries the poll, then reconnects."""

import logging

import pytest
from redis.exceptions import MaxConnectionsError

from webapp.streams import polling


@pytest.fixture
def signed_in(client, django_user_model):
    user = django_user_model.objects.create_user("poller", password="pw-" + "z" * 12)
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_poll_or_stop_without_redis_is_a_503_that_names_it(signed_in, monkeypatch, caplog,
                                                              method):
    async def lost(*args, **kwargs):
        raise MaxConnectionsError("Too many connections")

    monkeypatch.setattr(polling, "poll", lost)
    monkeypatch.setattr(polling, "act", lost)
    url = "/streams/poll/" + "t" * 43 + "/"
    with caplog.at_level(logging.ERROR, logger="webapp.streams.httpviews"):
        if method == "get":
            response = signed_in.get(url + "?after=0")
        else:
            response = signed_in.post(url, '{"action": "stop"}',
                                      content_type="application/json")
    assert response.status_code == 503
    assert response["Cache-Control"] == "no-store"
    assert response.json() == {"code": 4500,
                               "message": "lost contact with Redis: Too many connections"}
    assert "lost contact with Redis: Too many connections" in caplog.text
    assert "Traceback" not in caplog.text
