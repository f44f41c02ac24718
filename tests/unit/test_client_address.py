"""The client address login throttling counts: the TCP peer, or the entry the trusted proxies
wrote in X-Forwarded-For, never one a client chose."""

import asyncio
import logging

import pytest
from axes.helpers import get_client_ip_address
from django.test import RequestFactory

from webapp.clientaddr import (
    client_address,
    scope_client_address,
    warn_if_daphne_believes_the_header,
)
from webapp.origins import SameOriginValidator

PEER = "10.0.0.2"  # the proxy, as Daphne sees it


@pytest.fixture
def security_log():
    """The messages logged to `tailboard.security` (which does not propagate) during a test."""
    messages = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("tailboard.security")
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)


@pytest.mark.parametrize("forwarded_for", [
    None, "", "198.51.100.7", "198.51.100.7, 127.0.0.1", "127.0.0.1", "not an address"])
def test_without_trusted_proxies_the_header_is_ignored(forwarded_for):
    assert client_address("192.0.2.50", forwarded_for, 0) == "192.0.2.50"


@pytest.mark.parametrize("client_part", [
    "", "198.51.100.7, ", "127.0.0.1, ", "198.51.100.7, 10.0.0.1, ", "garbage, , ",
    "1.2.3.4,5.6.7.8, "])
def test_one_trusted_proxy_gives_the_address_it_saw_whatever_the_client_sent(client_part):
    assert client_address(PEER, client_part + "192.0.2.50", 1) == "192.0.2.50"


def test_two_trusted_proxies_give_the_address_the_outer_one_saw():
    assert client_address(PEER, "198.51.100.7, 192.0.2.50, 10.0.0.9", 2) == "192.0.2.50"


def test_fewer_entries_than_proxies_give_the_leftmost():
    assert client_address(PEER, "192.0.2.50", 2) == "192.0.2.50"


def test_no_header_behind_a_trusted_proxy_gives_the_peer():
    assert client_address(PEER, None, 1) == PEER
    assert client_address(PEER, " , ", 1) == PEER


def test_ipv6_entries_are_normalised():
    assert client_address(PEER, "2001:DB8:0::1", 1) == "2001:db8::1"


def test_an_entry_that_is_not_an_address_gives_the_peer_and_an_escaped_warning(security_log):
    assert client_address(PEER, "192.0.2.50, unix:\nFORGED line", 1) == PEER
    assert len(security_log) == 1
    assert "'unix:\\nFORGED line'" in security_log[0] and "\n" not in security_log[0]


def test_axes_counts_the_address_of_the_trusted_proxies(settings):
    request = RequestFactory().post("/accounts/login/", REMOTE_ADDR=PEER,
                                    HTTP_X_FORWARDED_FOR="198.51.100.7, 192.0.2.50")
    settings.TRUSTED_PROXY_COUNT = 0
    assert get_client_ip_address(request) == PEER
    settings.TRUSTED_PROXY_COUNT = 1
    assert get_client_ip_address(request) == "192.0.2.50"


def test_an_asgi_scope_joins_repeated_header_lines_in_order(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    scope = {"client": [PEER, 5555], "headers": [
        (b"x-forwarded-for", b"198.51.100.7"), (b"host", b"x"),
        (b"X-Forwarded-For", b"192.0.2.50")]}
    assert scope_client_address(scope) == "192.0.2.50"
    assert scope_client_address({"headers": []}) == "?"


@pytest.mark.django_db  # channels' denier tidies the thread's old connections first
def test_a_refused_websocket_is_logged_with_the_client_address(settings, security_log):
    settings.TRUSTED_PROXY_COUNT = 1
    sent = []

    async def send(message):
        sent.append(message)

    incoming = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1006}]

    async def receive():
        return incoming.pop(0)

    scope = {"type": "websocket", "path": "/ws/tailf/1/\nFORGED", "client": [PEER, 5555],
             "headers": [(b"origin", b"http://evil.example"), (b"host", b"tailboard.example"),
                         (b"x-forwarded-for", b"198.51.100.7, 192.0.2.50")]}
    asyncio.run(SameOriginValidator(None)(scope, receive, send))
    assert sent and sent[0]["type"] == "websocket.close"
    assert len(security_log) == 1
    assert "from 192.0.2.50:" in security_log[0] and "\n" not in security_log[0]


@pytest.mark.parametrize("argv, count, warned", [
    (["daphne", "--proxy-headers", "-b", "127.0.0.1", "webapp.asgi:application"], 0, True),
    (["daphne", "--proxy-headers", "webapp.asgi:application"], 1, False),
    (["daphne", "-b", "127.0.0.1", "webapp.asgi:application"], 0, False),
    (["daphne", "webapp.asgi:application", "--proxy-headers-host=X-Real-IP"], 0, False),
])
def test_daphne_believing_the_header_without_trusted_proxies_is_warned_about(
        settings, security_log, argv, count, warned):
    settings.TRUSTED_PROXY_COUNT = count
    warning = warn_if_daphne_believes_the_header(argv)
    assert bool(warning) == warned and security_log == ([warning] if warned else [])
    assert not warned or "TRUSTED_PROXY_COUNT" in warning
