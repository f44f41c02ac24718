"""Alert delivery through Apprise to real receivers on loopback: parallel, retried, SSRF-checked,
secrets redacted."""

import logging
import time

import pytest

from alerts import delivery, destinations
from tests.alertreceivers import SmtpServer, WebhookServer


@pytest.fixture
def webhook():
    server = WebhookServer()
    yield server
    server.close()


@pytest.fixture
def smtp():
    server = SmtpServer()
    yield server
    server.close()


@pytest.fixture
def loopback_allowed(settings):
    settings.ALERT_INTERNAL_ALLOW = ["127.0.0.1"]


def test_a_json_webhook_and_an_smtp_server_both_receive_the_alert(webhook, smtp,
                                                                   loopback_allowed):
    results = delivery.deliver([("hook", webhook.url), ("mail", smtp.url)],
                               "[Tailboard] alert: disk", "3 lines matching\n> ERROR disk full")
    assert results == {"hook": "sent", "mail": "sent"}
    body = webhook.wait_for(1)[0]
    assert body["title"] == "[Tailboard] alert: disk"
    assert "ERROR disk full" in body["message"]
    sender, recipients, content = smtp.wait_for(1)[0]
    assert recipients == ["ops@example.com"]
    assert "[Tailboard] alert: disk" in content and "ERROR disk full" in content


def test_a_failing_destination_is_retried_and_never_delays_the_others(webhook, loopback_allowed):
    failing = WebhookServer(status=500)
    try:
        pauses = []
        started = time.monotonic()
        done = {}

        def slow_sleep(seconds):
            pauses.append(seconds)
            time.sleep(0.3)
            done["good_at_last_pause"] = list(webhook.received)

        results = delivery.deliver([("bad", failing.url), ("good", webhook.url)], "t", "b",
                                   attempts=3, sleep=slow_sleep)
        assert results["good"] == "sent"
        assert results["bad"].startswith("failed after 3 attempts")
        assert "500" in results["bad"]  # Apprise's own reason
        assert failing.attempts == 3
        assert pauses == [1.0, 2.0]  # doubling backoff
        assert len(done["good_at_last_pause"]) == 1  # arrived while the bad one was retried
        assert time.monotonic() - started < 5
    finally:
        failing.close()


def test_an_internal_webhook_host_is_refused_without_connecting(webhook, settings):
    settings.ALERT_INTERNAL_ALLOW = []
    results = delivery.deliver([("hook", webhook.url)], "t", "b")
    assert results["hook"].startswith("refused: 127.0.0.1 resolves to the internal address")
    assert webhook.attempts == 0


@pytest.mark.parametrize("host", ["2130706433", "0x7f.0.0.1", "[::ffff:7f00:1]", "localhost"])
def test_internal_hosts_in_any_spelling_are_refused(host, settings):
    settings.ALERT_INTERNAL_ALLOW = []
    with pytest.raises((delivery.Refused, destinations.BadDestination)):
        delivery.check_host(f"json://{host}:9/hook")


def test_services_with_fixed_endpoints_are_not_host_checked():
    delivery.check_host("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general")


def test_destination_urls_are_shown_and_logged_redacted(caplog, settings):
    settings.ALERT_INTERNAL_ALLOW = []
    url = "json://admin:hunter2secret@127.0.0.1:9/hook"
    assert "hunter2secret" not in destinations.redacted(url)
    assert "127.0.0.1" in destinations.redacted(url)
    slack = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general"
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in destinations.redacted(slack)
    assert "secret" not in destinations.redacted("nonsense://secret@x")
    with caplog.at_level(logging.INFO):
        delivery.deliver([("hook", url)], "t", "b")
    assert caplog.records
    assert "hunter2secret" not in caplog.text


def test_an_unreadable_url_is_refused_without_repeating_it():
    with pytest.raises(destinations.BadDestination) as caught:
        destinations.plugin_for("nosuchscheme://token-123@host")
    assert "token-123" not in str(caught.value)


def test_a_webhook_redirect_is_not_followed_to_another_host(settings):
    settings.ALERT_INTERNAL_ALLOW = ["127.0.0.1"]  # 127.0.0.2 is not allowed
    inner = WebhookServer(host="127.0.0.2")
    redirecting = WebhookServer(status=307, location=f"http://127.0.0.2:{inner.port}/hook")
    try:
        results = delivery.deliver([("hook", redirecting.url)], "t", "b", attempts=1)
        assert results["hook"].startswith("failed")
        assert redirecting.attempts == 1 and inner.attempts == 0
    finally:
        inner.close()
        redirecting.close()



def test_a_log_line_cannot_inject_markup_into_an_html_mail(smtp, loopback_allowed):
    results = delivery.deliver([("mail", smtp.url)], "[Tailboard] alert: x",
                               '> <a href="http://evil.example/">click</a> <b>bold</b>')
    assert results == {"mail": "sent"}
    content = smtp.wait_for(1)[0][2]
    assert "text/html" not in content  # sent as plain text: the markup stays inert text
    assert "Content-Type: text/plain" in content
