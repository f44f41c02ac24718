"""A second worker started under a name already in use is reported (once, at ERROR), through
the worker registry in a real Redis; a worker restarted after a crash is not."""

import logging
import time

import pytest

from webapp.streams import workers


@pytest.fixture
def fast(monkeypatch, redis_client):
    """Announce every 50 ms; let caplog see the `tailboard` loggers (they do not propagate)."""
    monkeypatch.setattr(workers, "ANNOUNCE_SECONDS", 0.05)
    monkeypatch.setattr(logging.getLogger("tailboard"), "propagate", True)
    return redis_client


def taken(caplog):
    return [r for r in caplog.records
            if r.name == "tailboard.workers" and r.levelno == logging.ERROR]


def test_two_live_workers_with_one_name_are_told_once_each(fast, caplog):
    caplog.set_level(logging.ERROR, "tailboard.workers")
    stops = [workers.start_announcer("w1@host", ["tailf"]),
             workers.start_announcer("w1@host", ["tailf", "feeds"])]
    try:
        deadline = time.monotonic() + 5
        while len(taken(caplog)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        for stop in stops:
            stop()
    messages = [r.getMessage() for r in taken(caplog)]
    assert len(messages) == 2, messages
    assert all("another worker is running with the name w1@host" in m and "-n NAME@%h" in m
               for m in messages)


def test_a_restart_after_a_crash_is_not_a_second_worker(fast, caplog):
    caplog.set_level(logging.ERROR, "tailboard.workers")
    workers.announce(fast, "w1@host", ["tailf"], token="the-crashed-one")  # seen just now
    stop = workers.start_announcer("w1@host", ["tailf"])
    try:
        time.sleep(0.5)
    finally:
        stop()
    assert taken(caplog) == []


def test_workers_with_their_own_names_are_not_told(fast, caplog):
    caplog.set_level(logging.ERROR, "tailboard.workers")
    stops = [workers.start_announcer("w1@host", ["tailf"]),
             workers.start_announcer("w2@host", ["tailf"])]
    time.sleep(0.5)
    for stop in stops:
        stop()
    assert taken(caplog) == []
