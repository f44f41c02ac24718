"""`manage.py up`: a stop signal whose raise Python swallowed still stops everything."""

import signal
import weakref

import pytest

from webapp.management.commands import up


class Running:
    """A child process that keeps running."""

    def poll(self):
        return None


@pytest.fixture(autouse=True)
def no_stop_recorded():
    up._stop_signal = None
    yield
    up._stop_signal = None


def test_a_stop_raised_inside_a_gc_callback_still_ends_the_wait(monkeypatch):
    """The handler's raise lands in a weakref callback, where Python only reports it."""
    monkeypatch.setattr("sys.unraisablehook", lambda unraisable: None)

    def sleep(seconds):
        raise AssertionError("the wait went on as if no stop had come")

    monkeypatch.setattr(up.time, "sleep", sleep)

    class Thing:
        pass

    thing = Thing()
    ref = weakref.ref(thing, lambda _ref: up.request_stop(signal.SIGTERM, None))
    del thing  # the callback runs here; its StopRequested is swallowed
    assert ref() is None
    with pytest.raises(up.StopRequested) as stopped:
        up.Command().wait({"web": Running()})
    assert stopped.value.signum == signal.SIGTERM


def test_nothing_more_is_started_once_a_stop_was_requested(monkeypatch):
    started = []
    monkeypatch.setattr(up.subprocess, "Popen", lambda *a, **k: started.append(a))
    up._stop_signal = signal.SIGINT
    with pytest.raises(up.StopRequested):
        up.Command().spawn({}, "web", ["true"])
    assert started == []


def test_a_stop_while_a_child_starts_is_recorded_and_the_child_still_registered(monkeypatch):
    """The signal lands in the fork (logging's fork hooks run there): no raise inside the
    start; the child is in `children`, so it is stopped in order; the next wait stops."""

    class Started:
        pid = 4242

        def poll(self):
            return None

    def popen(*args, **kwargs):
        up.request_stop(signal.SIGTERM, None)  # would raise here if not deferred
        return Started()

    monkeypatch.setattr(up.subprocess, "Popen", popen)
    children = {}
    command = up.Command()
    command.say = lambda *a, **k: None
    command.spawn(children, "web", ["true"])
    assert isinstance(children["web"], Started)
    with pytest.raises(up.StopRequested):
        command.wait(children)
