"""The WebSocket Origin rule: same host and port as the page, or a trusted origin."""

import pytest

from webapp.origins import same_origin


def handshake(origin=None, host="tailboard.example:8000"):
    headers = {b"host": host.encode()}
    if origin is not None:
        headers[b"origin"] = origin.encode()
    return headers


@pytest.mark.parametrize("origin, host", [
    ("http://tailboard.example:8000", "tailboard.example:8000"),
    ("https://tailboard.example", "tailboard.example"),
    ("https://tailboard.example", "tailboard.example:443"),
    ("http://TailBoard.Example:8000", "tailboard.example:8000"),
    ("http://[::1]:8000", "[::1]:8000"),
])
def test_the_page_own_origin_is_allowed(origin, host):
    scheme = origin.split(":", 1)[0]
    assert same_origin(handshake(origin, host), scheme=scheme) == (True, "")


@pytest.mark.parametrize("origin, host", [
    ("http://tailboard.example:8080", "tailboard.example:8000"),
    ("https://tailboard.example:8443", "tailboard.example"),
    ("http://tailboard.example", "tailboard.example:8000"),
    ("http://evil.example:8000", "tailboard.example:8000"),
    ("http://tailboard.example.evil.example:8000", "tailboard.example:8000"),
])
def test_another_port_or_host_is_refused_and_says_why(origin, host):
    allowed, why = same_origin(handshake(origin, host))
    assert not allowed and "not the scheme, host and port" in why and origin in why


@pytest.mark.parametrize("origin, host, scheme", [
    ("https://tailboard.example:8000", "tailboard.example:8000", "http"),
    ("http://tailboard.example:443", "tailboard.example", "https"),
])
def test_an_origin_with_another_scheme_is_refused(origin, host, scheme):
    allowed, why = same_origin(handshake(origin, host), scheme=scheme)
    assert not allowed and "scheme" in why


def test_an_https_page_on_a_wss_connection_is_allowed():
    assert same_origin(handshake("https://tailboard.example", "tailboard.example"),
                       scheme="https") == (True, "")


@pytest.mark.parametrize("origin", [None, "", "null", "file://", "ftp://tailboard.example",
                                    "http://tailboard.example:99999"])
def test_missing_or_malformed_origin_is_refused(origin):
    allowed, why = same_origin(handshake(origin))
    assert not allowed and "missing or malformed Origin" in why


@pytest.mark.parametrize("origin, allowed", [
    ("https://dash.example.com", True),
    ("https://a.b.example.com", True),
    ("https://example.com", True),
    ("http://dash.example.com", False),
    ("https://dash.example.com:8443", False),
    ("https://ops.internal:9000", True),
    ("https://ops.internal", False),
    ("https://badexample.com", False),
])
def test_csrf_trusted_origins_are_allowed_exactly_or_by_wildcard(origin, allowed):
    patterns = ["https://*.example.com", "https://ops.internal:9000"]
    headers = handshake(origin, host="proxy.local")
    assert same_origin(headers, patterns)[0] is allowed
