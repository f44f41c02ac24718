"""SSRF through DNS rebinding, on a real worker: a feed host that resolves to a public address
first and to loopback on the next lookup is refused before anything connects to loopback.

The machine has no network, and nothing here may connect to a public address, so the worker
starts with a `sitecustomize` that answers for one test host name: 127.0.0.2 (which it counts
as public) on the first lookup, then 127.0.0.1 (internal). Everything else is the real code:
the pinned transport, the shared upstream, the task and the stream."""

import asyncio
import textwrap

import pytest

from tests.feedserver import FeedServer
from tests.harness import ROOT, started_installation
from tests.integration.conftest import Client, open_stream

pytestmark = pytest.mark.sqlite_only  # engine tests: see tests/integration/conftest.py

REBINDING_RESOLVER = '''
    from feeds import addresses

    _system_resolve = addresses.system_resolve
    _is_public = addresses.is_public
    _lookups = {}


    async def rebinding_resolve(host):
        if host == "steady.test":
            return ["127.0.0.2"]
        if host != "rebind.test":
            return await _system_resolve(host)
        _lookups[host] = _lookups.get(host, 0) + 1
        return ["127.0.0.2"] if _lookups[host] == 1 else ["127.0.0.1"]


    addresses.system_resolve = rebinding_resolve
    addresses.is_public = lambda address: str(address) == "127.0.0.2" or _is_public(address)
'''


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    """An installation whose worker answers public-then-loopback for rebind.test."""
    hooks = tmp_path_factory.mktemp("hooks")
    (hooks / "sitecustomize.py").write_text(textwrap.dedent(REBINDING_RESOLVER).lstrip())
    with started_installation(tmp_path_factory.mktemp("rebind"), workers=(
            {"PYTHONPATH": f"{ROOT}:{hooks}", "concurrency": 2},)) as harness:
        yield harness


async def test_a_host_rebinding_to_loopback_is_refused_and_loopback_never_asked(installation):
    harness = installation
    server = FeedServer(host="127.0.0.1")
    try:
        url = f"http://rebind.test:{server.port}/feed.xml"
        source = harness.add_feed("rebinding", url, "--interval", "5")
        async with open_stream(harness, f"/ws/feeds/{source}/") as socket:
            client = Client(socket)
            await client.status("queued")
            refused = await client.until(
                lambda m: m["type"] == "notice" and "internal address 127.0.0.1" in m["message"]
                or m["type"] == "status" and "internal address" in (m.get("warning") or ""), 20)
            assert "rebind.test" in refused.get("message", "") + (refused.get("warning") or "")
            await asyncio.sleep(1)
        assert server.requests == 0, "nothing may reach the loopback server"
    finally:
        server.close()


async def test_a_host_that_stays_public_is_fetched_at_the_checked_address(installation):
    harness = installation
    server = FeedServer(host="127.0.0.2")
    server.items.append(("1", "reached"))
    try:
        source = harness.add_feed("steady", f"http://steady.test:{server.port}/feed.xml")
        async with open_stream(harness, f"/ws/feeds/{source}/") as socket:
            entries = await Client(socket).until(lambda m: m["type"] == "entries", 20)
        assert [entry["title"] for entry in entries["entries"]] == ["reached"]
        assert server.requests >= 1
    finally:
        server.close()
