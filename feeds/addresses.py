"""Where a host points: IP literals in every notation, resolving a name, public vs internal.

Facts only; the rule of which addresses a fetch may reach is `feeds.reach`. A host that is
an IP literal is its own address, however it is spelt (`2130706433`, `127.1`,
`0x7f.0.0.1`, `0177.0.0.1`, `[::ffff:7f00:1]`): `host_address` reads it the way a browser
or `inet_aton` would, so the check sees the address a connection would reach, without
asking DNS. Anything else is a name, resolved by the resolver (the system's by default).
"""

import asyncio
import inspect
import ipaddress
import socket

# IPv6 ranges that carry an IPv4 address in their last 32 bits and reach it.
MAPPED = ipaddress.ip_network("::ffff:0:0/96")
TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# IPv4-compatible (deprecated), and :: and ::1: never public.
COMPATIBLE = ipaddress.ip_network("::/96")


class Unresolvable(OSError):
    """A host name that resolves to no usable address, or a malformed IP literal."""


async def system_resolve(host):
    """Return the addresses the system resolver gives for a host name (the default resolver)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def parse_address(text):
    """Return an IP address object for a resolver's answer (a zone suffix `%eth0` dropped)."""
    if isinstance(text, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return text
    return ipaddress.ip_address(str(text).strip("[]").split("%", 1)[0])


def ipv4_number(part):
    """Return the value of one part of an IPv4 literal (decimal, 0x hex, 0-prefixed octal),
    or None when it is not a number."""
    if part[:2].lower() == "0x":
        digits, base = part[2:] or "0", 16
    elif len(part) > 1 and part.startswith("0"):
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    try:
        return int(digits, base) if digits.isalnum() and digits.isascii() else None
    except ValueError:
        return None


def ipv4_literal(host):
    """Return the IPv4 address a host spells as 1 to 4 numbers (any base, a trailing dot
    allowed), None when it is a name. A host whose last label is a number is an IPv4
    literal or invalid (as in browsers): ValueError when it is out of range."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not parts or ipv4_number(parts[-1]) is None:
        return None
    numbers = [ipv4_number(part) for part in parts]
    if len(parts) > 4 or None in numbers or any(n > 255 for n in numbers[:-1]):
        raise ValueError(f"{host!r} is not a valid IPv4 address")
    if numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError(f"{host!r} is not a valid IPv4 address")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def host_address(host):
    """Return the address an IP-literal host names (any notation), None for a host name;
    ValueError for a malformed literal."""
    host = host.strip()
    if host.startswith("[") or ":" in host:
        return parse_address(host)
    return ipv4_literal(host)


async def lookup(host, resolver=None):
    """Return the distinct IP addresses of a host (an IP literal is its own address, the
    resolver is not asked), in the resolver's order. `resolver(host)` may be sync or async
    and returns addresses (str or ipaddress objects) or raises OSError; raise Unresolvable
    when there are none or the literal is malformed."""
    try:
        literal = host_address(host)
    except ValueError as exc:
        raise Unresolvable(f"cannot resolve {host!r}: {exc}") from None
    if literal is not None:
        return [literal]
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


def embedded_ipv4(address):
    """Return the IPv4 address an IPv6 address reaches through (IPv4-mapped, -translated,
    NAT64 64:ff9b::/96, 6to4), or None."""
    if address.version != 6:
        return None
    if address in MAPPED or address in TRANSLATED or address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def is_public(address):
    """True for a globally routable unicast address. Loopback, private, link-local, CGNAT,
    ULA, multicast, reserved, unspecified and documentation addresses are internal; an
    IPv6 address carrying an IPv4 one (mapped, NAT64, 6to4) is judged by it as well."""
    if address.version == 6 and address in COMPATIBLE:
        return False
    inner = embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return False
    if address in MAPPED or address in TRANSLATED or address in NAT64:
        return True
    return address.is_global and not (address.is_multicast or address.is_reserved
                                      or address.is_unspecified)
