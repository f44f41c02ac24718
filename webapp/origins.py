"""The WebSocket Origin check: the page must come from the same scheme, host *and port*.

Channels' AllowedHostsOriginValidator only compares the Origin's host name with
ALLOWED_HOSTS, so a page served by another application on another port of the same host
(which gets the same cookies: cookies are not port-bound) could open streams as the user.
This validator, inside it, also requires the Origin to name the host and port the browser
connected to (the Host header), the rule Django's CSRF check applies to form posts, or to be
listed in CSRF_TRUSTED_ORIGINS (exactly, or as `https://*.example.com`).
"""

import logging
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings

from webapp.clientaddr import scope_client_address

log = logging.getLogger("tailboard.security")

DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origin(origin):
    """Return (scheme, host, port) of an Origin header value, or None when it is not one."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


def parse_host(host, scheme):
    """Return (host, port) of a Host header value; no port means the scheme's default."""
    try:
        parts = urlsplit("//" + host)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def trusted(origin, patterns):
    """True when the origin matches an entry of CSRF_TRUSTED_ORIGINS (`*.` wildcards allowed)."""
    scheme, host, port = origin
    for pattern in patterns:
        wildcard = "://*." in pattern
        wanted = parse_origin(pattern.replace("://*.", "://", 1))
        if wanted is None or wanted[0] != scheme or wanted[2] != port:
            continue
        if host == wanted[1] or (wildcard and host.endswith("." + wanted[1])):
            return True
    return False


def page_scheme(ws_scheme):
    """Return the scheme of the page that opens a WebSocket of this scheme (wss -> https)."""
    return "https" if ws_scheme in ("wss", "https") else "http"


def same_origin(headers, patterns=(), scheme="http"):
    """Return (allowed, why not) for a WebSocket handshake's headers (a dict of bytes).

    The Origin must name the scheme, host and port the browser connected to (`scheme` is
    the page's: https for a wss connection), or be a CSRF-trusted origin.
    """
    raw_origin = headers.get(b"origin", b"").decode("latin-1")
    origin = parse_origin(raw_origin)
    if origin is None:
        return False, f"missing or malformed Origin {raw_origin!r}"
    if trusted(origin, patterns):
        return True, ""
    host = parse_host(headers.get(b"host", b"").decode("latin-1"), scheme)
    if origin[0] != scheme or host != origin[1:]:
        return False, (f"Origin {raw_origin!r} is not the scheme, host and port the page was "
                       "served from")
    return True, ""


class SameOriginValidator:
    """ASGI middleware refusing WebSocket handshakes whose Origin is not this site (HTTP 403)."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        """Pass same-origin WebSockets on; deny the others before accepting them."""
        if scope["type"] == "websocket":
            allowed, why = same_origin(dict(scope.get("headers", [])),
                                       settings.CSRF_TRUSTED_ORIGINS,
                                       page_scheme(scope.get("scheme", "ws")))
            if not allowed:
                log.warning("refused WebSocket %r from %s: %s", scope.get("path"),
                            scope_client_address(scope), why)
                return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
