"""Fixtures shared by every test level."""

import pytest

from tests.feedserver import FeedServer
from tests.harness import Harness


@pytest.fixture
def feed_server():
    """A local RSS server whose items a test scripts."""
    server = FeedServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """A running installation with an admin, a viewer and a worker; Daphne on `system.web`."""
    harness = Harness(tmp_path_factory.mktemp("tailboard"))
    try:
        harness.admin_password = harness.create_user("admin", superuser=True)
        harness.worker = harness.start_worker()
        harness.web = harness.start_daphne()
        harness.admin_cookie = harness.login(harness.web.base_url, "admin",
                                             harness.admin_password)
        yield harness
    finally:
        harness.close()
