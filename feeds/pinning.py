"""An httpx transport that connects only to addresses it has resolved and checked itself.

Each request's host is resolved ONCE and every address is checked against the SSRF rule
(`feeds.reach`: public addresses, or internal ones the admin's allow-list names); the
connection goes to exactly a checked address: the URL's host is replaced by the IP while
the `Host` header and TLS SNI / certificate verification keep the original host name. So
DNS rebinding (one answer for the check, another for the connect) cannot reach internal
addresses. Redirects are not followed here: `feeds.fetch` sends every hop through this
transport, telling it in the request extension `AFTER_PUBLIC` whether an earlier hop
connected to a public address; the response extensions `PEER` and `REACHED_PUBLIC` say
which address it connected to and whether that one is public.
"""

import httpx

from feeds import addresses, reach

AFTER_PUBLIC = "tailboard.after_public"
PEER = "tailboard.peer"
REACHED_PUBLIC = "tailboard.reached_public"


class HostUnresolvable(httpx.ConnectError):
    """The host (of the feed or of a redirect hop) did not resolve: nothing is connected."""


class AddressRefused(httpx.ConnectError):
    """A hop resolves to an internal address the rule does not allow: nothing is connected."""

    def __init__(self, refused):
        super().__init__(str(refused))
        self.host = refused.host
        self.address = refused.address
        self.after_public = refused.after_public


class PinnedTransport(httpx.AsyncBaseTransport):
    """Resolves, checks and pins each request's address; connections are never reused.

    `allow` is the parsed allow-list of internal hosts and networks (`reach.parse_allow`;
    none by default); `resolver(host)` (sync or async) returns the host's addresses or
    raises OSError; `is_public(address)` says which addresses count as public.
    """

    def __init__(self, allow=None, resolver=None, is_public=None, verify=True):
        self.allow = allow or reach.NOTHING
        self.resolver = resolver or addresses.system_resolve
        self.is_public = is_public or addresses.is_public
        self.inner = httpx.AsyncHTTPTransport(
            verify=verify, trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0))

    async def checked(self, host, after_public):
        """Resolve `host` once and return its addresses, all allowed; raise a ConnectError
        (HostUnresolvable, AddressRefused) otherwise."""
        try:
            return await reach.checked(host, self.allow, after_public, self.resolver,
                                       self.is_public)
        except addresses.Unresolvable as exc:
            raise HostUnresolvable(str(exc)) from None
        except reach.Refused as exc:
            raise AddressRefused(exc) from None

    async def handle_async_request(self, request):
        """Resolve the request's host once, check every address, connect to a checked one."""
        host = request.url.raw_host.decode("ascii")
        found = await self.checked(host, bool(request.extensions.get(AFTER_PUBLIC)))
        failure = None
        for address in found:
            pinned = httpx.Request(request.method, request.url.copy_with(host=str(address)),
                                   headers=request.headers, stream=request.stream,
                                   extensions={**request.extensions, "sni_hostname": host})
            try:
                response = await self.inner.handle_async_request(pinned)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = exc
                continue
            response.extensions[PEER] = address
            response.extensions[REACHED_PUBLIC] = self.is_public(address)
            return response
        raise failure

    async def aclose(self):
        """Close the underlying connection pool."""
        await self.inner.aclose()
