"""An httpx transport that connects only to addresses it has resolved and checked itself.

Each request's host is resolved ONCE; every address is checked against the feed's policy
(`feeds.addresses`) and the connection goes to exactly a checked address: the URL's host
is replaced by the IP while the `Host` header and TLS SNI / certificate verification keep
the original host name. So DNS rebinding (a public answer for the check, loopback for the
connect) cannot reach internal addresses. Redirects are not followed here: `feeds.fetch`
sends every hop through this transport, naming the feed's configured host in the request
extension `ORIGIN`, which decides whether the feed is public.
"""

import httpx

from feeds import addresses

ORIGIN = "tailboard.feed_host"
REMEMBERED_HOSTS = 1024


class HostUnresolvable(httpx.ConnectError):
    """The host (of the feed or of a redirect hop) did not resolve: nothing is connected."""


class AddressRefused(httpx.ConnectError):
    """A public feed's hop resolves to a non-public address: nothing is connected."""

    def __init__(self, host, address):
        super().__init__(f"{host} resolves to the internal address {address}, and a feed on a "
                         "public host may only reach public addresses")
        self.host = host
        self.address = address


class PinnedTransport(httpx.AsyncBaseTransport):
    """Resolves, checks and pins each request's address; connections are never reused.

    `resolver(host)` (sync or async) returns the host's addresses or raises OSError;
    `is_public(address)` says which addresses count as public. A feed host once seen to
    resolve to a public address stays public for this transport's life, so a feed's DNS
    cannot turn it "internal" between hops or fetches.
    """

    def __init__(self, resolver=None, is_public=None, verify=True):
        self.resolver = resolver or addresses.system_resolve
        self.is_public = is_public or addresses.is_public
        self.public_hosts = {}
        self.inner = httpx.AsyncHTTPTransport(
            verify=verify, trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0))

    async def resolve(self, host):
        """Return a host's addresses; raise HostUnresolvable when it has none."""
        try:
            return await addresses.lookup(host, self.resolver)
        except addresses.Unresolvable as exc:
            raise HostUnresolvable(str(exc)) from None

    async def public_feed(self, host):
        """Tell whether a feed on `host` is public (any of its addresses is public)."""
        if host in self.public_hosts:
            return True
        if not any(self.is_public(address) for address in await self.resolve(host)):
            return False
        self.public_hosts[host] = True
        while len(self.public_hosts) > REMEMBERED_HOSTS:
            del self.public_hosts[next(iter(self.public_hosts))]
        return True

    async def handle_async_request(self, request):
        """Resolve the request's host once, check every address, connect to a checked one."""
        host = request.url.host
        public = await self.public_feed(request.extensions.get(ORIGIN) or host)
        found = await self.resolve(host)
        if public:
            inward = [address for address in found if not self.is_public(address)]
            if inward:
                raise AddressRefused(host, inward[0])
        failure = None
        for address in found:
            pinned = httpx.Request(request.method, request.url.copy_with(host=str(address)),
                                   headers=request.headers, stream=request.stream,
                                   extensions={**request.extensions, "sni_hostname": host})
            try:
                return await self.inner.handle_async_request(pinned)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def aclose(self):
        """Close the underlying connection pool."""
        await self.inner.aclose()
