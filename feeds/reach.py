"""Which addresses a server-side fetch may reach (the SSRF rule), for feeds and later alerts.

Public (globally routable) addresses are always allowed. An internal address (loopback,
private, link-local, CGNAT, ULA, multicast, reserved, and IPv6 forms carrying one of them,
see `feeds.addresses.is_public`) is allowed only when the administrator's allow-list
(`FEED_INTERNAL_ALLOW`) says so, never because of what DNS answers:

- a network entry (`10.1.0.0/16`, `127.0.0.1`, `fd00::/8`) allows the addresses in it, for
  any host name or IP literal that resolves there;
- a host name entry (`wiki.corp.example`) allows that exact name (case and a trailing dot
  aside; no wildcards, no subdomains) to resolve to internal addresses.

A hop that connected to a public address may not lead to an internal one, allowed or not:
a public server cannot redirect a fetch into the allow-listed network. A host that does
not resolve, or an IP literal that is malformed, is refused (fail closed).

`checked(host, allow, ...)` resolves a host once and returns the addresses the rule allows
(the caller connects to exactly those: `feeds.pinning`), or raises `Refused` or
`addresses.Unresolvable`.
"""

import dataclasses
import ipaddress
import re

from feeds import addresses

HOST_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
                       r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
NEITHER = ("is neither a network (10.0.0.0/8, 127.0.0.1, fd00::/8) nor a host name "
           "(wiki.corp.example; no wildcards)")


class Refused(Exception):
    """A host resolves to an internal address the rule does not allow: nothing is connected."""

    def __init__(self, host, address, after_public, setting="FEED_INTERNAL_ALLOW"):
        self.host = host
        self.address = address
        self.after_public = after_public
        if after_public:
            why = "and a fetch that reached a public address may not lead to an internal one"
        else:
            why = f"which {setting} does not list"
        super().__init__(f"{host} resolves to the internal address {address}, {why}")


@dataclasses.dataclass(frozen=True)
class Allow:
    """The parsed allow-list: internal networks, host names allowed internal addresses, and
    the setting it was read from (named in refusals)."""

    networks: tuple = ()
    hosts: frozenset = frozenset()
    setting: str = "FEED_INTERNAL_ALLOW"

    def allows(self, host, address):
        """Tell whether `host` may reach the internal `address`."""
        if normal_host(host) in self.hosts:
            return True
        candidates = [address]
        if address.version == 6 and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(candidate in network for candidate in candidates
                   for network in self.networks if candidate.version == network.version)


NOTHING = Allow()


def normal_host(host):
    """Return a host name as compared: lower case, IDNA (xn--) form, no trailing dot."""
    host = host.strip().lower()
    host = host[:-1] if host.endswith(".") else host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def parse_entry(entry):
    """Return a network or a normalised host name for one allow-list entry; ValueError when
    it is neither."""
    text = entry.strip()
    try:
        address = addresses.host_address(text.split("/", 1)[0])
    except ValueError as exc:
        raise ValueError(f"{entry!r} {NEITHER}: {exc}") from None
    if address is not None:
        prefix = f"/{text.split('/', 1)[1]}" if "/" in text else ""
        try:
            return ipaddress.ip_network(f"{address}{prefix}")
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not a network: {exc}") from None
    if "/" not in text and "*" not in text:
        name = normal_host(text)
        if HOST_NAME.match(name):
            return name
    raise ValueError(f"{entry!r} {NEITHER}")


def parse_allow(entries, setting="FEED_INTERNAL_ALLOW"):
    """Return the `Allow` for a list of entries (or one comma-separated string) read from
    `setting`."""
    if isinstance(entries, str):
        entries = entries.split(",")
    networks, hosts = [], set()
    for entry in entries:
        if not entry.strip():
            continue
        parsed = parse_entry(entry)
        if isinstance(parsed, str):
            hosts.add(parsed)
        else:
            networks.append(parsed)
    return Allow(tuple(networks), frozenset(hosts), setting)


def check(host, found, allow=NOTHING, after_public=False, is_public=None):
    """Raise Refused unless `host` may reach every address in `found`.

    `after_public` is true on a redirect hop when an earlier hop connected to a public
    address; `is_public` decides what counts as public (`addresses.is_public` by default).
    """
    is_public = is_public or addresses.is_public
    for address in found:
        if is_public(address):
            continue
        if after_public or not allow.allows(host, address):
            raise Refused(host, address, after_public, allow.setting)


async def checked(host, allow=NOTHING, after_public=False, resolver=None, is_public=None):
    """Resolve `host` once (an IP literal, in any notation, without DNS), check every address
    it has and return them, in the resolver's order: connect to exactly these."""
    found = await addresses.lookup(host, resolver)
    check(host, found, allow, after_public, is_public)
    return found
