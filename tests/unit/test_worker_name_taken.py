"""A second worker started under a name already in use is reported (once, at ERROR), through
the worker registry in a real Redis; a worker restarted after a crash is not."""

import collections
import logging
import time

import pytest

from webapp.streams import workers


@pytest.fixture
def fast(monkeypatch, redis_client):
    """Announce every 50 ms; let caplog see the `tailboard` loggers (they do not propagate)."""
    monkeypatch.setattr(workers, "ANNOUNCE_SECONDS", 0.05)
    monkeypatch.setattr(logging.getLogger("tailboard"), "propagate", True)
    real = workers.announce

    def counted(client, hostname, queues, **options):
        ANNOUNCED[options.get("token")] += 1
        return real(client, hostname, queues, **options)

    ANNOUNCED.clear()
    monkeypatch.setattr(workers, "announce", counted)
    return redis_client


ANNOUNCED = collections.Counter()  # announcements by token, while `fast` is on


def rounds(announcers, more, timeout=5):
    """Wait until `announcers` announcers have each announced `more` times beyond now (each
    round after the first looks for a rival first); fail after `timeout` seconds."""
    goal = {token: count + more for token, count in ANNOUNCED.items()}
    deadline = time.monotonic() + timeout
    while sum(ANNOUNCED[token] >= goal.get(token, more) for token in list(ANNOUNCED)) \
            < announcers:
        assert time.monotonic() < deadline, f"announcers did not go round: {ANNOUNCED}"
        time.sleep(0.01)


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
        rounds(2, 5)  # five more looks each, in which a second report would come
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
        rounds(1, 5)  # five looks, in which the crashed one's entry would be taken for a rival
    finally:
        stop()
    assert taken(caplog) == []


def test_workers_with_their_own_names_are_not_told(fast, caplog):
    caplog.set_level(logging.ERROR, "tailboard.workers")
    stops = [workers.start_announcer("w1@host", ["tailf"]),
             workers.start_announcer("w2@host", ["tailf"])]
    try:
        rounds(2, 5)  # five looks each, in which either could take the other for a rival
    finally:
        for stop in stops:
            stop()
    assert taken(caplog) == []
