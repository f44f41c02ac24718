"""SSRF at connect time: each hop's host is resolved once, checked against the admin's
allow-list (never against what DNS says a feed is), and connected to pinned.

Nothing here connects outside 127.0.0.0/8: a test that needs a "public" server counts
127.0.0.1 as public (`loopback_one_is_public`); real public addresses only appear in answers
that are refused before any connection."""

import ipaddress
import socket
import ssl
import subprocess
import sys

import pytest

from feeds import addresses, reach
from feeds.fetch import FetchError, fetch, make_client
from tests.feedserver import FeedServer, Reply
from tests.harness import ROOT

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
def server(feed_server):
    """The shared scripted feed server (tests/conftest.py), on 127.0.0.1: the "public" one."""
    return feed_server


@pytest.fixture
def inside():
    """A second server on 127.0.0.2: an internal service a feed must not reach unless the
    allow-list names it."""
    feed_server = FeedServer(host="127.0.0.2")
    feed_server.script("/inside", Reply(200, b"secret"))
    yield feed_server
    feed_server.close()


async def get(url, resolver=None, is_public=None, verify=True, allow=""):
    """Fetch once with a fresh client using the given resolver, policy and allow-list."""
    async with make_client(allow=reach.parse_allow(allow), resolver=resolver,
                           is_public=is_public, verify=verify) as client:
        return await fetch(client, url)


async def test_internal_then_public_then_internal_answers_never_reach_the_internal_server(
        server, inside):
    """The red team's sequence: a private answer, a "public" one, a private one again; the
    public server redirects to the internal one by IP and by decimal IP. Every poll is
    refused, the internal server is never asked, and each poll resolves the host once."""
    server.script("/f", Reply(302, headers={"Location": f"{inside.base}/inside"}))
    server.script("/d", Reply(302, headers={
        "Location": f"http://2130706434:{inside.port}/inside"}))
    resolver = Resolver(rebind_test=[["127.0.0.2"], ["127.0.0.1"], ["127.0.0.2"],
                                     ["127.0.0.1"], ["127.0.0.2"]])
    errors = []
    async with make_client(resolver=resolver, is_public=loopback_one_is_public) as client:
        for path in ("/f", "/f", "/f", "/d", "/d"):
            with pytest.raises(FetchError) as refused:
                await fetch(client, f"http://rebind.test:{server.port}{path}")
            errors.append(str(refused.value))
    assert "rebind.test resolves to the internal address 127.0.0.2" in errors[0]
    assert "FEED_INTERNAL_ALLOW does not list" in errors[0]
    assert "to an internal one (127.0.0.2)" in errors[1] and "to an internal one" in errors[3]
    assert "rebind.test resolves to the internal address 127.0.0.2" in errors[2]
    assert inside.requests == 0
    assert len(server.hits("/f")) == 1 and len(server.hits("/d")) == 1
    assert resolver.calls == ["rebind.test"] * 5


async def test_each_hop_is_resolved_exactly_once(server):
    server.script("/end", Reply(200, RSS))
    server.script("/two", Reply(302, headers={"Location": f"http://three.test:{server.port}/end"}))
    server.script("/one", Reply(301, headers={"Location": f"http://two.test:{server.port}/two"}))
    resolver = Resolver(one_test=[["127.0.0.1"]], two_test=[["127.0.0.1"]],
                        three_test=[["127.0.0.1"]])
    fetched = await get(f"http://one.test:{server.port}/one", resolver, loopback_one_is_public)
    assert fetched.body == RSS
    assert resolver.calls == ["one.test", "two.test", "three.test"]


async def test_ip_literal_hosts_are_never_sent_to_the_resolver(server):
    server.script("/f", Reply(200, RSS))
    resolver = Resolver()
    for host in ("127.0.0.1", "2130706433", "0x7f000001", "127.1", "127.0.0.1."):
        assert (await get(f"http://{host}:{server.port}/f", resolver,
                          allow="127.0.0.1")).body == RSS
    assert resolver.calls == []
    assert len(server.hits("/f")) == 5


async def test_without_an_allow_list_a_loopback_feed_is_refused(server):
    server.script("/f", Reply(200, RSS))
    for url in (f"{server.base}/f", f"http://localhost:{server.port}/f",
                f"http://2130706433:{server.port}/f"):
        with pytest.raises(FetchError, match="internal address .*FEED_INTERNAL_ALLOW does not"):
            await get(url)
    assert server.requests == 0


async def test_an_allow_listed_host_name_reaches_its_internal_addresses_and_nothing_else(
        server, inside):
    resolver = Resolver(intranet_test=[["127.0.0.2"]], other_test=[["127.0.0.2"]])
    assert (await get(f"http://InTraNet.test:{inside.port}/inside", resolver,
                      allow="intranet.test")).body == b"secret"
    for url in (f"http://other.test:{inside.port}/inside", f"{inside.base}/inside"):
        with pytest.raises(FetchError, match="internal address 127.0.0.2"):
            await get(url, resolver, allow="intranet.test")
    assert inside.requests == 1


async def test_an_allow_listed_network_admits_the_names_and_literals_in_it(server, inside):
    resolver = Resolver(intranet_test=[["127.0.0.2"]], loop_test=[["127.0.0.1"]])
    allow = "127.0.0.2/32"
    assert (await get(f"http://intranet.test:{inside.port}/inside", resolver,
                      allow=allow)).body == b"secret"
    assert (await get(f"http://2130706434:{inside.port}/inside", resolver,
                      allow=allow)).body == b"secret"
    with pytest.raises(FetchError, match="internal address 127.0.0.1"):
        await get(f"http://loop.test:{server.port}/f", resolver, allow=allow)
    assert server.requests == 0


async def test_a_public_hop_may_not_redirect_to_an_allow_listed_internal_host(server, inside):
    url = server.script("/jump", Reply(302, headers={
        "Location": f"http://intranet.test:{inside.port}/inside"})).replace(
        "127.0.0.1", "feed.test")
    resolver = Resolver(feed_test=[["127.0.0.1"]], intranet_test=[["127.0.0.2"]])
    with pytest.raises(FetchError, match="from a public address to an internal one"):
        await get(url, resolver, loopback_one_is_public, allow="intranet.test, 127.0.0.2")
    assert inside.requests == 0


async def test_an_internal_feed_redirects_only_within_allowed_internal_addresses(server, inside):
    server.script("/inside", Reply(200, RSS))
    inner = f"http://localhost:{server.port}/inside"
    url = server.script("/jump", Reply(302, headers={"Location": inner}))
    assert (await get(url, allow="127.0.0.1, localhost")).body == RSS
    away = server.script("/away", Reply(302, headers={"Location": f"{inside.base}/inside"}))
    with pytest.raises(FetchError, match="to http://127.0.0.2:.*internal address 127.0.0.2, "
                                         "which FEED_INTERNAL_ALLOW does not list"):
        await get(away, allow="127.0.0.1")
    assert inside.requests == 0


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
        await get(url, Resolver(), allow="127.0.0.1")


async def test_redirect_to_a_malformed_numeric_host_fails_closed(server):
    url = server.script("/jump", Reply(302, headers={"Location": "http://1.2.3.4.5/feed"}))
    resolver = Resolver(system=True)
    with pytest.raises(FetchError, match="cannot resolve '1.2.3.4.5'.*not a valid IPv4"):
        await get(url, resolver, allow="127.0.0.1")
    assert resolver.calls == []


async def test_pinned_connection_keeps_the_host_name_in_the_host_header(server):
    server.script("/f", Reply(200, RSS))
    fetched = await get(f"http://feed.test:{server.port}/f", Resolver(feed_test=[["127.0.0.1"]]),
                        allow="feed.test")
    assert fetched.body == RSS and fetched.url == f"http://feed.test:{server.port}/f"
    assert server.hits("/f")[0].headers["host"] == f"feed.test:{server.port}"


async def test_unreachable_address_falls_back_to_the_next_checked_one(server):
    server.script("/f", Reply(200, RSS))
    resolver = Resolver(feed_test=[["127.0.0.3", "127.0.0.1"]])
    assert (await get(f"http://feed.test:{server.port}/f", resolver,
                      allow="feed.test")).body == RSS
    assert resolver.calls == ["feed.test"]


@pytest.mark.parametrize("target", ["http://inside.test:{port}/inside",
                                    "http://127.0.0.2:{port}/inside",
                                    "http://localhost:{port}/inside", "http://[::1]:1/inside",
                                    "http://169.254.169.254/latest/meta-data/",
                                    "http://10.1.2.3/admin", "http://[::ffff:192.168.0.1]/",
                                    "http://100.64.0.1/", "http://224.0.0.1/",
                                    "http://[fd00::1]/", "http://[64:ff9b::7f00:2]/"])
async def test_a_public_feed_may_not_redirect_into_internal_addresses(server, inside, target):
    target = target.format(port=inside.port)
    url = server.script("/jump", Reply(302, headers={"Location": target})).replace(
        "127.0.0.1", "feed.test")
    resolver = Resolver(feed_test=[["127.0.0.1"]], inside_test=[["127.0.0.2"]],
                        localhost=[["127.0.0.2"]])
    with pytest.raises(FetchError, match="from a public address to an internal one"):
        await get(url, resolver, loopback_one_is_public)
    assert len(server.hits("/jump")) == 1 and inside.requests == 0


@pytest.mark.parametrize("host", ["2130706434", "127.2", "0x7f.0.0.2", "0x7f000002",
                                  "127.0.0.2.", "[::ffff:7f00:2]"])
async def test_ip_literals_in_any_notation_are_parsed_and_refused(server, inside, host):
    url = server.script("/jump", Reply(302, headers={
        "Location": f"http://{host}:{inside.port}/inside"})).replace("127.0.0.1", "feed.test")
    resolver = Resolver(system=True, feed_test=[["127.0.0.1"]])
    with pytest.raises(FetchError, match=r"to an internal one \((127\.0\.0\.2|::ffff:7f00:2)\)"):
        await get(url, resolver, loopback_one_is_public)
    assert inside.requests == 0
    assert resolver.calls == ["feed.test"]


async def test_a_public_feed_may_redirect_to_another_public_host(server):
    server.script("/there", Reply(200, RSS))
    url = server.script("/jump", Reply(302, headers={
        "Location": f"http://other.test:{server.port}/there"})).replace("127.0.0.1", "feed.test")
    resolver = Resolver(feed_test=[["127.0.0.1"]], other_test=[["127.0.0.1"]])
    assert (await get(url, resolver, loopback_one_is_public)).body == RSS


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
                        Resolver(feed_test=[["127.0.0.1"]]), verify=trust, allow="feed.test")
    assert fetched.body == RSS and names == ["feed.test"]
    assert server.hits("/f")[0].headers["host"] == f"feed.test:{server.port}"


async def test_tls_certificate_for_another_name_is_refused(tls_server, certificate):
    server, _ = tls_server
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    with pytest.raises(FetchError, match="could not fetch"):
        await get(f"https://elsewhere.test:{server.port}/f",
                  Resolver(elsewhere_test=[["127.0.0.1"]]), verify=trust,
                  allow="elsewhere.test")
    assert server.requests == 0


@pytest.mark.parametrize("address, public", [
    ("93.184.216.34", True), ("2606:2800:220:1::1", True), ("::ffff:93.184.216.34", True),
    ("64:ff9b::5db8:d822", True), ("127.0.0.1", False), ("10.0.0.1", False),
    ("172.16.0.1", False), ("192.168.1.1", False), ("169.254.169.254", False),
    ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False), ("239.1.2.3", False),
    ("240.0.0.1", False), ("255.255.255.255", False), ("198.18.0.1", False),
    ("::1", False), ("::", False), ("fd00::1", False), ("fe80::1", False), ("ff0e::1", False),
    ("::ffff:10.0.0.1", False), ("::ffff:127.0.0.1", False), ("::7f00:1", False),
    ("64:ff9b::7f00:1", False), ("2002:7f00:1::", False), ("2001:db8::1", False)])
def test_public_addresses_are_told_from_internal_ones(address, public):
    assert addresses.is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize("host, address", [
    ("2130706433", "127.0.0.1"), ("127.1", "127.0.0.1"), ("0x7f.0.0.1", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("127.0.0.1.", "127.0.0.1"),
    ("10.1", "10.0.0.1"), ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"), ("[::1]", "::1"),
    ("::ffff:7f00:1", "::ffff:7f00:1"), ("example.test", None), ("0x7f.example", None),
    ("1e3", None)])
def test_ip_literals_are_read_in_every_notation(host, address):
    found = addresses.host_address(host)
    assert (str(found) if found else None) == address


@pytest.mark.parametrize("host", ["1.2.3.4.5", "256.0.0.1", "4294967296", "08.0.0.1",
                                  "1.16777216"])
def test_malformed_numeric_hosts_are_not_names(host):
    with pytest.raises(ValueError, match="not a valid IPv4 address"):
        addresses.host_address(host)


def test_the_allow_list_reads_networks_and_host_names():
    allow = reach.parse_allow(" 10.0.0.0/8, Wiki.Corp.Example. ,127.0.0.1,fd00::/8,"
                              "2130706434,, bücher.example, [::1]")
    assert [str(network) for network in allow.networks] == [
        "10.0.0.0/8", "127.0.0.1/32", "fd00::/8", "127.0.0.2/32", "::1/128"]
    assert allow.hosts == {"wiki.corp.example", "xn--bcher-kva.example"}
    internal = ipaddress.ip_address("192.168.0.9")
    assert allow.allows("WIKI.corp.example.", internal)
    assert not allow.allows("sub.wiki.corp.example", internal)
    assert not allow.allows("corp.example", internal)
    assert allow.allows("any.test", ipaddress.ip_address("10.200.0.1"))
    assert allow.allows("any.test", ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not allow.allows("any.test", ipaddress.ip_address("127.0.0.3"))
    assert reach.parse_allow("") == reach.parse_allow([]) == reach.NOTHING


async def test_a_refusal_names_the_setting_the_allow_list_came_from():
    allow = reach.parse_allow("intranet.test", setting="ALERT_INTERNAL_ALLOW")
    with pytest.raises(reach.Refused, match="127.0.0.1, which ALERT_INTERNAL_ALLOW does not"):
        await reach.checked("hooks.test", allow, resolver=Resolver(hooks_test=[["127.0.0.1"]]))
    assert await reach.checked("intranet.test", allow,
                               resolver=Resolver(intranet_test=[["127.0.0.1"]])) == [
        ipaddress.ip_address("127.0.0.1")]


@pytest.mark.parametrize("entry, problem", [
    ("10.0.0.1/8", "host bits set"), ("*.corp.example", "no wildcards"),
    ("http://wiki/", "neither a network"), ("a b", "neither a network"),
    ("10.0.0.0/33", "not a network"), ("1.2.3.4.5", "not a valid IPv4")])
def test_the_allow_list_refuses_what_it_cannot_read(entry, problem):
    with pytest.raises(ValueError, match=problem):
        reach.parse_allow(["intranet.test", entry])


def test_a_bad_allow_list_stops_startup():
    env = {"DJANGO_SETTINGS_MODULE": "webapp.settings", "TAILBOARD_ENV": "development",
           "FEED_INTERNAL_ALLOW": "intranet.test, *.corp", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "ImproperlyConfigured: FEED_INTERNAL_ALLOW: '*.corp' is neither" in done.stderr
    env["FEED_INTERNAL_ALLOW"] = "intranet.test, 10.0.0.0/8"
    ok = subprocess.run([sys.executable, "-c", "from django.conf import settings; "
                         "print(settings.FEED_INTERNAL_ALLOW)"], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=60)
    assert ok.stdout.strip() == "['intranet.test', '10.0.0.0/8']", ok.stderr
