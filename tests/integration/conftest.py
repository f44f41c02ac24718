"""Fixtures for integration tests: one real Redis + prefork worker + Daphne per module.

Every integration test runs twice: once on SQLite and once on PostgreSQL (test ids end in
`[sqlite]` / `[postgres]`; `-k sqlite` or `-k postgres` picks one), except the engine modules
marked `sqlite_only` (tail, search, feeds, `up`, worker faults and revoke signals), whose
database use is the lifecycle's.
"""

import functools
import json
import os
import time

import pytest
from websockets.asyncio.client import connect

from tests.harness import DATABASES, databases


def in_ci():
    """Tell whether this run is CI's (`CI` set to anything but empty, 0 or false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the session (skipped where there is none, failed in CI)."""
    from tests.postgres import PostgresServer, find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is None:
        reason = ("PostgreSQL binaries not found in /usr/lib/postgresql/*/bin, on PATH or in "
                  "PG_BIN_DIR (apt-get install postgresql)")
        if in_ci():
            pytest.fail(reason + ": .ci/run must install Debian's postgresql", pytrace=False)
        pytest.skip(reason)
    server = PostgresServer(bin_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session", params=DATABASES)
def database(request):
    """The database kind this run of the integration tests uses: "sqlite" or "postgres"."""
    server = request.getfixturevalue("postgres_server") if request.param == "postgres" else None
    return request.param, server


class InstallationDatabase:
    """The database kind in use for one test module, and the fixtures that must go with it."""

    def __init__(self, kind, request):
        self.kind = kind
        self.request = request

    def tie(self, fixturedef, request):
        """Tear this fixture down whenever the database kind is torn down."""
        self.request.addfinalizer(functools.partial(fixturedef.finish, request=request))


@pytest.fixture(scope="module")
def search_limited(tmp_path_factory):
    """An installation of the module's own with four pool processes and SEARCH_MAX_SECONDS=6
    (the search-limit and trust tests of each kind)."""
    from tests.harness import started_installation

    with started_installation(tmp_path_factory.mktemp("searchlimited"),
                              workers=({"concurrency": 4},),
                              SEARCH_MAX_SECONDS="6") as harness:
        yield harness


@pytest.fixture(scope="module", autouse=True)
def installation_database(database, request):
    """Make every installation a test module starts use the current database kind."""
    kind, server = database
    with databases.using(kind, server):
        yield InstallationDatabase(kind, request)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    """Tie each module/class fixture (e.g. `system`) to the database kind it was built on.

    Otherwise a module's `[sqlite]` installation would be reused by its `[postgres]` tests: a
    fixture that does not itself request `database` is not rebuilt when that changes.
    """
    if (fixturedef.scope in ("module", "class") and fixturedef.argname != "installation_database"
            and "installation_database" in request.fixturenames):
        request.getfixturevalue("installation_database").tie(fixturedef, request)
    return (yield)



class Client:
    """A WebSocket stream client that records every message it receives."""

    def __init__(self, socket):
        self.socket = socket
        self.messages = []

    async def next(self, timeout=10):
        """Return the next message (parsed JSON)."""
        import asyncio

        message = json.loads(await asyncio.wait_for(self.socket.recv(), timeout))
        self.messages.append(message)
        return message

    async def until(self, predicate, timeout=10):
        """Read messages until predicate(message) holds; return that message."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching message; got {self.messages[-10:]}")
            try:
                message = await self.next(remaining)
            except TimeoutError:
                raise AssertionError(f"no matching message within {timeout} s; "
                                     f"got {self.messages[-10:]}") from None
            if predicate(message):
                return message

    async def status(self, state, timeout=10):
        """Wait for a status message with this state."""
        return await self.until(lambda m: m["type"] == "status" and m["state"] == state, timeout)

    async def lines(self, wanted, timeout=10):
        """Collect `lines` until every wanted line has arrived; return all lines seen."""
        seen = []
        missing = set(wanted)
        deadline = time.monotonic() + timeout
        while missing:
            message = await self.until(lambda m: m["type"] == "lines",
                                       max(0.01, deadline - time.monotonic()))
            seen.extend(message["lines"])
            missing -= set(message["lines"])
        return seen

    async def send(self, message):
        """Send a client message."""
        await self.socket.send(json.dumps(message))


def open_stream(system, path, cookie=None, origin=None, web=None):
    """Connect a WebSocket to the given path with the session cookie and an Origin."""
    base = (web or system.web).base_url
    headers = {"Origin": origin or base}
    if cookie is not False:
        headers["Cookie"] = cookie or system.admin_cookie
    return connect("ws" + base[4:] + path, additional_headers=headers, open_timeout=10)


@pytest.fixture
def stream(system):
    """Factory: `async with stream(path) as client:`."""
    import contextlib

    @contextlib.asynccontextmanager
    async def opener(path, **kwargs):
        async with open_stream(system, path, **kwargs) as socket:
            yield Client(socket)

    return opener


def pytest_collection_modifyitems(config, items):
    """Run modules marked `sqlite_only` on SQLite alone.

    They test engines (tail, search, feeds, `up`) and worker faults and signals, whose database
    use is the stream lifecycle's, which the other modules exercise on both databases (records,
    users, groups, sources, limits, access, concurrency); running them twice only costs time.
    """
    kept, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        only_sqlite = item.get_closest_marker("sqlite_only") and params.get("database") == "postgres"
        (dropped if only_sqlite else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
