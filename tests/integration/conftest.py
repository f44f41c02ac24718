"""Fixtures for integration tests: one real Redis + prefork worker + Daphne per module."""

import json
import time

import pytest
from websockets.asyncio.client import connect



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
            message = await self.next(remaining)
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
