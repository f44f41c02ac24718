"""Fixtures shared by every test level."""

import pytest

from tests.feedserver import FeedServer


@pytest.fixture
def feed_server():
    """A local RSS server whose items a test scripts."""
    server = FeedServer()
    yield server
    server.close()
