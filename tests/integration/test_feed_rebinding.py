"""SSRF through DNS rebinding, on a real worker: whether a feed may reach an internal address
comes only from FEED_INTERNAL_ALLOW, each hop is resolved once and connected to exactly the
address checked, and internal content never reaches a viewer.

The machine has no network, and nothing here may leave 127.0.0.0/8, so the worker starts with
a `sitecustomize` that answers for the test host names and counts 127.0.0.2 as public:

- `flip.test`: 127.0.0.2 ("public") on the first lookup, then 127.0.0.1 (internal);
- `rebind*.test`: 127.0.0.3 (private), 127.0.0.2 ("public"), 127.0.0.3, ... in turn;
- `intranet.test`: 127.0.0.1, the one host the installation's allow-list names;
- `steady.test`: always 127.0.0.2.

Every lookup is appended to a file, so the test counts resolutions per hop. Everything else
is the real code: the pinned transport, the shared upstream, the task and the stream."""

import asyncio
import collections
import contextlib
import textwrap

import pytest

from tests.feedserver import FeedServer, Reply
from tests.harness import ROOT, started_installation
from tests.integration.conftest import Client, open_stream

pytestmark = pytest.mark.sqlite_only  # engine tests: see tests/integration/conftest.py

REBINDING_RESOLVER = '''
    import os

    from feeds import addresses

    _system_resolve = addresses.system_resolve
    _is_public = addresses.is_public
    _lookups = {}


    async def rebinding_resolve(host):
        with open(os.environ["REBIND_LOOKUPS"], "a") as log:
            log.write(host + "\\n")
        count = _lookups[host] = _lookups.get(host, 0) + 1
        if host == "steady.test":
            return ["127.0.0.2"]
        if host == "intranet.test":
            return ["127.0.0.1"]
        if host == "flip.test":
            return ["127.0.0.2"] if count == 1 else ["127.0.0.1"]
        if host.startswith("rebind") and host.endswith(".test"):
            return ["127.0.0.3"] if count % 2 else ["127.0.0.2"]
        return await _system_resolve(host)


    addresses.system_resolve = rebinding_resolve
    addresses.is_public = lambda address: str(address) == "127.0.0.2" or _is_public(address)
'''
POLLS = 3


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    """An installation whose worker resolves the test names as above and whose allow-list
    names intranet.test only; `.lookups()` counts the worker's resolutions per host."""
    hooks = tmp_path_factory.mktemp("hooks")
    (hooks / "sitecustomize.py").write_text(textwrap.dedent(REBINDING_RESOLVER).lstrip())
    log = hooks / "lookups.txt"
    log.touch()
    with started_installation(tmp_path_factory.mktemp("rebind"), workers=(
            {"PYTHONPATH": f"{ROOT}:{hooks}", "REBIND_LOOKUPS": str(log),
             "concurrency": 4},), FEED_INTERNAL_ALLOW="intranet.test") as harness:
        harness.lookups = lambda: collections.Counter(log.read_text().split())
        yield harness


@contextlib.contextmanager
def servers(*made):
    """Close every server afterwards."""
    try:
        yield made
    finally:
        for server in made:
            server.close()


def is_refusal(message):
    return message["type"] == "notice" and message["message"].startswith("refusing to")


async def polls_of(harness, source, polls):
    """Watch a feed until `polls` fetches were refused; return every message received."""
    async with open_stream(harness, f"/ws/feeds/{source}/") as socket:
        client = Client(socket)
        for _ in range(polls):
            await client.until(is_refusal, 30)
    return client.messages


async def test_internal_public_internal_answers_and_redirects_to_loopback_never_leak(
        installation):
    """The red team's sequence: a host answering a private address, then a "public" one,
    then private again, whose server redirects to http://127.0.0.1:PORT/, to
    http://2130706433:PORT/ and to the allow-listed intranet.test. Every poll is refused;
    the internal server is never asked; each hop is resolved exactly once."""
    harness = installation
    with servers(FeedServer("127.0.0.1"), FeedServer("127.0.0.2")) as (secret, outside):
        secret.items.append(("s1", "internal secret"))
        internal = FeedServer("127.0.0.3", port=outside.port)
        for server in (outside, internal):
            for path, host in (("/ip.xml", "127.0.0.1"), ("/decimal.xml", "2130706433"),
                               ("/named.xml", "intranet.test")):
                server.script(path, Reply(302, headers={
                    "Location": f"http://{host}:{secret.port}/feed.xml"}))
        try:
            before = harness.lookups()
            sources = {path: harness.add_feed(
                f"rebind-{path}", f"http://rebind-{path}.test:{outside.port}/{path}.xml",
                "--interval", "5") for path in ("ip", "decimal", "named")}
            watched = await asyncio.gather(*(polls_of(harness, source, POLLS)
                                             for source in sources.values()))
        finally:
            internal.close()
        lookups = harness.lookups() - before
    for path, messages in zip(sources, watched, strict=True):
        assert "internal secret" not in repr(messages), f"{path}: the internal feed leaked"
        assert not [m for m in messages if m["type"] == "entries" and m["entries"]]
        refusals = [m["message"] for m in messages if is_refusal(m)]
        assert "resolves to the internal address 127.0.0.3" in refusals[0], refusals
        assert "to an internal one (127.0.0.1)" in refusals[1], refusals
        assert "resolves to the internal address 127.0.0.3" in refusals[2], refusals
        assert lookups[f"rebind-{path}.test"] == POLLS, lookups
        assert len(outside.hits(f"/{path}.xml")) == 1 and internal.requests == 0
    assert secret.requests == 0, "nothing may reach the internal server"
    assert lookups["intranet.test"] == 1, lookups


async def test_the_allow_listed_internal_host_is_fetched_and_its_address_by_ip_is_not(
        installation):
    harness = installation
    with servers(FeedServer("127.0.0.1")) as (secret,):
        secret.items.append(("s1", "intranet news"))
        named = harness.add_feed("intranet", f"http://intranet.test:{secret.port}/feed.xml")
        literal = harness.add_feed("intranet-ip", f"{secret.base}/feed.xml")
        async with open_stream(harness, f"/ws/feeds/{named}/") as socket:
            entries = await Client(socket).until(lambda m: m["type"] == "entries", 20)
        assert [entry["title"] for entry in entries["entries"]] == ["intranet news"]
        assert secret.hits()[0].headers["host"] == f"intranet.test:{secret.port}"
        hits = secret.requests
        messages = await polls_of(harness, literal, 1)
        assert "127.0.0.1, which FEED_INTERNAL_ALLOW does not list" in messages[-1]["message"]
        assert secret.requests == hits


async def test_a_host_rebinding_to_loopback_is_refused_and_loopback_never_asked(installation):
    harness = installation
    with servers(FeedServer(host="127.0.0.1")) as (server,):
        url = f"http://flip.test:{server.port}/feed.xml"
        source = harness.add_feed("flipping", url, "--interval", "5")
        async with open_stream(harness, f"/ws/feeds/{source}/") as socket:
            client = Client(socket)
            await client.status("queued")
            refused = await client.until(
                lambda m: m["type"] == "notice" and "internal address 127.0.0.1" in m["message"]
                or m["type"] == "status" and "internal address" in (m.get("warning") or ""), 20)
            assert "flip.test" in refused.get("message", "") + (refused.get("warning") or "")
            await asyncio.sleep(1)  # the scenario: a second more in which nothing may arrive
        assert server.requests == 0, "nothing may reach the loopback server"


async def test_a_host_that_stays_public_is_fetched_at_the_checked_address(installation):
    harness = installation
    with servers(FeedServer(host="127.0.0.2")) as (server,):
        server.items.append(("1", "reached"))
        source = harness.add_feed("steady", f"http://steady.test:{server.port}/feed.xml")
        async with open_stream(harness, f"/ws/feeds/{source}/") as socket:
            entries = await Client(socket).until(lambda m: m["type"] == "entries", 20)
        assert [entry["title"] for entry in entries["entries"]] == ["reached"]
        assert server.requests >= 1
