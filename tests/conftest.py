"""Fixtures shared by every test level."""

import pytest

from tests.feedserver import FeedServer
from tests.harness import started_installation


@pytest.fixture
def feed_server():
    """A local RSS server whose items a test scripts."""
    server = FeedServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """A running installation with an admin, a viewer and a worker; Daphne on `system.web`."""
    with started_installation(tmp_path_factory.mktemp("tailboard")) as harness:
        yield harness
