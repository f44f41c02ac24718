"""Clocks for tests: callables returning seconds, like the `clock=time.monotonic` they replace."""


class TickClock:
    """A clock that moves one second per reading, so whatever is due after a second is due
    at every check."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


class HandClock:
    """A clock the test (or a test server, mid-request) moves by hand: `clock.now += 5`."""

    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now
