"""The client's address: the TCP peer, or what the trusted reverse proxies saw.

`X-Forwarded-For` is a list any client can start: a proxy that appends adds the address it
saw on the right. So only the entries written by proxies we run are believed, counted from the
right: with `TRUSTED_PROXY_COUNT` = N, the client is the N-th entry from the right (the one the
outermost trusted proxy wrote); with 0 the header is ignored and the client is the TCP peer.
Whatever a client puts to the left of those entries never changes the answer. Login throttling
(django-axes, `AXES_CLIENT_IP_CALLABLE`) and the server log use it.
"""

import ipaddress
import logging

from django.conf import settings

log = logging.getLogger("tailboard.security")


def client_address(peer, forwarded_for, trusted_proxies):
    """Return the client's address from the TCP peer and the `X-Forwarded-For` value.

    `trusted_proxies` is how many proxies in front of the server append (or set) the header.
    Fewer entries than that (a request that did not pass every proxy) gives the leftmost one;
    no header, or an entry that is not an IP address, gives the peer.
    """
    if trusted_proxies <= 0:
        return peer
    chain = [part.strip() for part in (forwarded_for or "").split(",")]
    chain = [part for part in chain if part]
    if not chain:
        return peer
    chosen = chain[max(0, len(chain) - trusted_proxies)]
    try:
        return str(ipaddress.ip_address(chosen))
    except ValueError:
        log.warning("X-Forwarded-For entry %r is not an IP address; using the peer %r",
                    chosen, peer)
        return peer


def request_client_address(request):
    """Return the client address of a Django request (django-axes' client IP callable)."""
    return client_address(request.META.get("REMOTE_ADDR"),
                          request.META.get("HTTP_X_FORWARDED_FOR"),
                          settings.TRUSTED_PROXY_COUNT)


def scope_client_address(scope):
    """Return the client address of an ASGI scope ("?" when the server gives none)."""
    peer = (scope.get("client") or ("?", 0))[0]
    values = [value.decode("latin-1") for name, value in scope.get("headers", ())
              if name.lower() == b"x-forwarded-for"]
    return client_address(peer, ",".join(values), settings.TRUSTED_PROXY_COUNT)


def warn_if_daphne_believes_the_header(argv):
    """Log a warning when Daphne was started with `--proxy-headers` and TRUSTED_PROXY_COUNT is 0.

    Daphne then makes the header's leftmost entry, which the client writes, the peer address,
    and that address is what login throttling would count. Return the warning, or "".
    """
    if settings.TRUSTED_PROXY_COUNT > 0 or not any(
            arg == "--proxy-headers" or arg.startswith("--proxy-headers=") for arg in argv):
        return ""
    warning = ("Daphne runs with --proxy-headers and TRUSTED_PROXY_COUNT is 0: the client "
               "address login throttling counts is the one clients write in X-Forwarded-For. "
               "Drop --proxy-headers and set TRUSTED_PROXY_COUNT to the number of proxies in "
               "front (docs/deploy.md, section 6).")
    log.warning(warning)
    return warning
