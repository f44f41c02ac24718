"""Fixtures shared by every test level."""

import os

import pytest

from tests.feedserver import LOCAL_FEEDS, FeedServer
from tests.harness import RERUN, started_installation

# A bug that a last-resort guard would contain fails the test instead (webapp/streams/faults.py):
# here through the settings, in the processes the tests start through their environment.
os.environ["RAISE_CONTAINED_ERRORS"] = "1"


@pytest.fixture(autouse=True, scope="session")
def raise_contained_errors():
    """RAISE_CONTAINED_ERRORS on in this process, whenever Django read its settings."""
    from django.conf import settings

    settings.RAISE_CONTAINED_ERRORS = True


@pytest.fixture(autouse=True)
def rerun_setup(request):
    """Tell the harness when a test runs a second time (scripts/test's `--reruns 1`)."""
    RERUN["active"] = getattr(request.node, "execution_count", 1) > 1
    yield
    RERUN["active"] = False


@pytest.fixture
def feed_server():
    """A local RSS server whose items a test scripts."""
    server = FeedServer()
    yield server
    server.close()


@pytest.fixture
def nginx():
    """Factory: `nginx(daphne_urls, edit=None, tls=False, port=None)` starts Debian's nginx with
    docs/nginx/tailboard.conf in front of those Daphnes (tests/nginx.py) and returns it; every
    one is stopped after the test.
    """
    import os

    from tests import nginx as proxy

    if not proxy.available():
        reason = f"{proxy.NGINX} is missing (apt-get install nginx)"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(reason + ": .ci/run must install Debian's nginx", pytrace=False)
        pytest.skip(reason)
    started = []

    def start(daphne_urls, edit=None, **options):
        started.append(proxy.Nginx(daphne_urls, edit=edit, **options))
        return started[-1]

    yield start
    for server in started:
        server.close()


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """A running installation with an admin, a viewer and a worker; Daphne on `system.web`.
    Its feeds may reach `feed_server` (127.0.0.1 is on FEED_INTERNAL_ALLOW)."""
    with started_installation(tmp_path_factory.mktemp("tailboard"),
                              FEED_INTERNAL_ALLOW=LOCAL_FEEDS) as harness:
        yield harness


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One real redis-server for the session's unit tests; yields its URL."""
    from webapp import embedded

    port, process = embedded.start_free_redis(tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


@pytest.fixture
def redis_client(redis_server, settings):
    """A client of the session's real Redis, which settings.REDIS_URL names; flushed after."""
    import redis

    from webapp.streams import leases

    settings.REDIS_URL = redis_server
    leases._sync_clients.clear()
    client = redis.Redis.from_url(redis_server)
    yield client
    client.flushdb()
    client.close()
    leases._sync_clients.clear()


@pytest.fixture(scope="session")
def podman():
    """A real container runtime (podman + runc) with throw-away state; skipped where podman
    cannot run containers, failed in CI (.ci/run installs podman, runc and busybox-static)."""
    from tests import podman as runtime

    reason = runtime.missing()
    if reason:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(reason + ": .ci/run must install podman, runc and busybox-static",
                        pytrace=False)
        pytest.skip(reason)
    engine = runtime.Podman()
    yield engine
    engine.close()


# A failed first attempt that its rerun then passed is shown at the end, with its traceback:
# a flaky test is a bug to find, and its rerun's pass would otherwise hide why it failed.
_first_attempts = []


def pytest_runtest_logreport(report):
    if report.outcome == "rerun":
        _first_attempts.append((report.nodeid, report.longreprtext))


def pytest_terminal_summary(terminalreporter):
    if _first_attempts:
        terminalreporter.section("first attempts of rerun tests")
        for nodeid, text in _first_attempts:
            terminalreporter.write_line(f"--- {nodeid}")
            terminalreporter.write_line(text[-6000:])
