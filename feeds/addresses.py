"""Where a feed address points: a redirect may not lead a public feed into internal networks.

Feed URLs are set by administrators, so a feed on an internal host is fine. A public feed's
server, however, is outside our control: if it could redirect the worker to 127.0.0.1,
169.254.169.254 (cloud metadata) or a 10/8 host, it could make the worker fetch internal
pages for it (SSRF). So a redirect is refused when the feed's own host is public and the
target resolves to any address that is not.
"""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


async def addresses(host):
    """Return the IP addresses a host name resolves to (an IP literal is its own address)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def is_public(address):
    """True for a globally routable address (an IPv4-mapped IPv6 address counts as its IPv4)."""
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_global


async def inward_redirect(start_url, target_url):
    """Return the non-public address a redirect from a public feed leads to, or None."""
    start_host, target_host = urlsplit(start_url).hostname, urlsplit(target_url).hostname
    if not start_host or not target_host:
        return None
    try:
        start = await addresses(start_host)
    except OSError:
        return None
    if not start or not all(is_public(address) for address in start):
        return None
    try:
        target = await addresses(target_host)
    except OSError:
        return None
    inward = [address for address in target if not is_public(address)]
    return str(inward[0]) if inward else None
