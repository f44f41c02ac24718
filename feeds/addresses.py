"""Where a feed address points, and which addresses a feed may reach (SSRF policy).

Feed URLs are set by administrators, so a feed on an internal host is fine. A public feed's
server (and its DNS), however, is outside our control: if it could send the worker to
127.0.0.1, 169.254.169.254 (cloud metadata) or a 10/8 host, it could make the worker fetch
internal pages for it (SSRF). So a feed whose configured host resolves to any public
address is a public feed, and every connection it makes, on every redirect hop, must go to
a public address; a host with any non-public record is refused. A feed whose host
resolves only to internal addresses is an internal feed and may reach any address. A host
that does not resolve is refused (fail closed). `feeds.pinning` applies this at connect
time, to the very address it connects to.
"""

import asyncio
import inspect
import ipaddress
import socket


class Unresolvable(OSError):
    """A host name that resolves to no usable address."""


async def system_resolve(host):
    """Return the addresses the system resolver gives for a host name (the default resolver)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def parse_address(text):
    """Return an IP address object for a resolver's answer (a zone suffix `%eth0` dropped)."""
    if isinstance(text, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return text
    return ipaddress.ip_address(str(text).strip("[]").split("%", 1)[0])


async def lookup(host, resolver=None):
    """Return the distinct IP addresses of a host (an IP literal is its own address), in the
    resolver's order. `resolver(host)` may be sync or async and returns addresses (str or
    ipaddress objects) or raises OSError; raise Unresolvable when there are none."""
    try:
        return [parse_address(host)]
    except ValueError:
        pass
    resolver = resolver or system_resolve
    try:
        answer = resolver(host)
        if inspect.isawaitable(answer):
            answer = await answer
        found = list(dict.fromkeys(parse_address(item) for item in answer or ()))
    except (OSError, ValueError, UnicodeError) as exc:
        raise Unresolvable(f"cannot resolve {host!r}: {exc}") from None
    if not found:
        raise Unresolvable(f"cannot resolve {host!r}: no addresses")
    return found


def is_public(address):
    """True for a globally routable address (an IPv4-mapped IPv6 address counts as its IPv4)."""
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_global
