"""SSRF at connect time: each hop's host is resolved once, checked, and connected to pinned."""

import ipaddress
import socket
import ssl
import subprocess

import pytest

from feeds import addresses
from feeds.fetch import FetchError, fetch, make_client
from tests.feedserver import FeedServer, Reply

RSS = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
       b"<item><guid>1</guid><title>one</title></item></channel></rss>")
PUBLIC = "93.184.216.34"


class Resolver:
    """A scripted resolver: host -> list of answers (used in order, the last repeats)."""

    def __init__(self, system=False, **answers):
        self.answers = {host.replace("_", "."): list(value) for host, value in answers.items()}
        self.system = system
        self.calls = []

    def __call__(self, host):
        self.calls.append(host)
        script = self.answers.get(host)
        if not script and self.system:
            return [info[4][0] for info in socket.getaddrinfo(host, None,
                                                              type=socket.SOCK_STREAM)]
        if not script:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def loopback_one_is_public(address):
    """Test policy: 127.0.0.1 stands in for a public server; 127.0.0.2 stays internal."""
    return str(address) == "127.0.0.1" or addresses.is_public(address)


@pytest.fixture
def server():
    """A scripted feed server on 127.0.0.1."""
    feed_server = FeedServer()
    yield feed_server
    feed_server.close()


@pytest.fixture
def inside():
    """A second server on 127.0.0.2: an internal service a public feed must not reach."""
    feed_server = FeedServer(host="127.0.0.2")
    feed_server.script("/inside", Reply(200, b"secret"))
    yield feed_server
    feed_server.close()


async def get(url, resolver=None, is_public=None, verify=True):
    """Fetch once with a fresh client using the given resolver and policy."""
    async with make_client(resolver=resolver, is_public=is_public, verify=verify) as client:
        return await fetch(client, url)


async def test_dns_rebinding_to_loopback_is_refused_before_any_request(server):
    server.script("/f", Reply(200, RSS))
    resolver = Resolver(feed_test=[[PUBLIC], ["127.0.0.1"]])
    with pytest.raises(FetchError, match="feed.test resolves to the internal address 127.0.0.1"):
        await get(f"http://feed.test:{server.port}/f", resolver)
    assert server.requests == 0
    assert resolver.calls == ["feed.test", "feed.test"]


@pytest.mark.parametrize("records", [[PUBLIC, "127.0.0.1"], ["127.0.0.1", PUBLIC],
                                     [PUBLIC, "::ffff:127.0.0.1"], [PUBLIC, "10.0.0.7"]],
                         ids=["public-first", "loopback-first", "mapped-loopback", "private"])
async def test_host_with_public_and_internal_records_is_refused(server, records):
    server.script("/f", Reply(200, RSS))
    with pytest.raises(FetchError, match="internal address"):
        await get(f"http://mixed.test:{server.port}/f", Resolver(mixed_test=[records]))
    assert server.requests == 0


@pytest.mark.parametrize("answer", [socket.gaierror(socket.EAI_NONAME, "Name or service not "
                                                    "known"), [], ["not-an-address"]],
                         ids=["nxdomain", "no-records", "garbage"])
async def test_unresolvable_host_fails_closed_with_a_clear_error(answer):
    with pytest.raises(FetchError, match="could not fetch .*cannot resolve 'nowhere.test'"):
        await get("http://nowhere.test/feed.xml", Resolver(nowhere_test=[answer]))


async def test_redirect_to_an_unresolvable_host_fails_closed(server):
    url = server.script("/jump", Reply(302, headers={"Location": "http://gone.test/feed"}))
    with pytest.raises(FetchError, match="cannot resolve 'gone.test'"):
        await get(url, Resolver())


async def test_local_feed_by_ip_and_by_name_still_works(server):
    server.script("/f", Reply(200, RSS))
    assert (await get(server.base + "/f")).body == RSS
    assert (await get(f"http://localhost:{server.port}/f")).body == RSS


async def test_pinned_connection_keeps_the_host_name_in_the_host_header(server):
    server.script("/f", Reply(200, RSS))
    fetched = await get(f"http://feed.test:{server.port}/f", Resolver(feed_test=[["127.0.0.1"]]))
    assert fetched.body == RSS and fetched.url == f"http://feed.test:{server.port}/f"
    assert server.hits("/f")[0].headers["host"] == f"feed.test:{server.port}"


async def test_unreachable_address_falls_back_to_the_next_checked_one(server):
    server.script("/f", Reply(200, RSS))
    resolver = Resolver(feed_test=[["127.0.0.3", "127.0.0.1"]])
    assert (await get(f"http://feed.test:{server.port}/f", resolver)).body == RSS


@pytest.mark.parametrize("target", ["http://inside.test:{port}/inside",
                                    "http://127.0.0.2:{port}/inside",
                                    "http://localhost:{port}/inside", "http://[::1]:1/inside",
                                    "http://169.254.169.254/latest/meta-data/",
                                    "http://10.1.2.3/admin", "http://[::ffff:192.168.0.1]/"])
async def test_a_public_feed_may_not_redirect_into_internal_addresses(server, inside, target):
    target = target.format(port=inside.port)
    url = server.script("/jump", Reply(302, headers={"Location": target})).replace(
        "127.0.0.1", "feed.test")
    resolver = Resolver(feed_test=[["127.0.0.1"]], inside_test=[["127.0.0.2"]],
                        localhost=[["127.0.0.2"]])
    with pytest.raises(FetchError, match="from a public address to an internal one"):
        await get(url, resolver, loopback_one_is_public)
    assert len(server.hits("/jump")) == 1 and inside.requests == 0


@pytest.mark.parametrize("host", ["2130706434", "127.2", "0x7f.0.0.2", "[::ffff:7f00:2]"])
async def test_obfuscated_internal_addresses_are_refused_by_what_they_resolve_to(server, inside,
                                                                                host):
    url = server.script("/jump", Reply(302, headers={
        "Location": f"http://{host}:{inside.port}/inside"})).replace("127.0.0.1", "feed.test")
    resolver = Resolver(system=True, feed_test=[["127.0.0.1"]])
    with pytest.raises(FetchError, match=r"to an internal one \((127\.0\.0\.2|::ffff:7f00:2)\)"):
        await get(url, resolver, loopback_one_is_public)
    assert inside.requests == 0


async def test_a_public_feed_may_redirect_to_another_public_host(server):
    server.script("/there", Reply(200, RSS))
    url = server.script("/jump", Reply(302, headers={
        "Location": f"http://other.test:{server.port}/there"})).replace("127.0.0.1", "feed.test")
    resolver = Resolver(feed_test=[["127.0.0.1"]], other_test=[["127.0.0.1"]])
    assert (await get(url, resolver, loopback_one_is_public)).body == RSS


async def test_a_feed_seen_public_stays_public_when_its_dns_turns_internal(server, inside):
    server.script("/f", Reply(200, RSS))
    resolver = Resolver(feed_test=[["127.0.0.1"], ["127.0.0.1"], ["127.0.0.2"]])
    url = f"http://feed.test:{server.port}/f"
    async with make_client(resolver=resolver, is_public=loopback_one_is_public) as client:
        assert (await fetch(client, url)).body == RSS
        inside.script("/f", Reply(200, b"secret"))
        with pytest.raises(FetchError, match="internal address 127.0.0.2"):
            await fetch(client, url.replace(str(server.port), str(inside.port)))
    assert inside.requests == 0


async def test_an_internal_feed_may_redirect_within_internal_addresses(server):
    server.script("/inside", Reply(200, RSS))
    inner = f"http://localhost:{server.port}/inside"
    url = server.script("/jump", Reply(302, headers={"Location": inner}))
    assert (await get(url)).body == RSS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """(cert, key) paths of a self-signed certificate for feed.test only."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=feed.test", "-addext", "subjectAltName=DNS:feed.test",
                        "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"openssl cannot make a test certificate: {exc}")
    return cert, key


@pytest.fixture
def tls_server(certificate):
    """(server, names): an HTTPS feed server on 127.0.0.1 recording the SNI names it saw."""
    names = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    feed_server = FeedServer(tls=context)
    feed_server.script("/f", Reply(200, RSS))
    yield feed_server, names
    feed_server.close()


async def test_tls_is_verified_and_named_for_the_host_while_connecting_to_its_address(
        tls_server, certificate):
    server, names = tls_server
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    fetched = await get(f"https://feed.test:{server.port}/f",
                        Resolver(feed_test=[["127.0.0.1"]]), verify=trust)
    assert fetched.body == RSS and names == ["feed.test"]
    assert server.hits("/f")[0].headers["host"] == f"feed.test:{server.port}"


async def test_tls_certificate_for_another_name_is_refused(tls_server, certificate):
    server, _ = tls_server
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    with pytest.raises(FetchError, match="could not fetch"):
        await get(f"https://elsewhere.test:{server.port}/f",
                  Resolver(elsewhere_test=[["127.0.0.1"]]), verify=trust)
    assert server.requests == 0


@pytest.mark.parametrize("address, public", [("93.184.216.34", True), ("127.0.0.1", False),
                                             ("10.0.0.1", False), ("169.254.169.254", False),
                                             ("::1", False), ("fd00::1", False),
                                             ("::ffff:10.0.0.1", False),
                                             ("2606:2800:220:1::1", True)])
def test_public_addresses_are_told_from_internal_ones(address, public):
    assert addresses.is_public(ipaddress.ip_address(address)) is public
