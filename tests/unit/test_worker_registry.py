"""The worker registry: which workers serve which queue, ignoring stale entries."""

import json

from webapp.streams.workers import TTL_SECONDS, by_queue


def entry(queues, seen):
    return json.dumps({"queues": queues, "seen": seen})


def test_workers_are_grouped_by_the_queues_they_consume():
    entries = {b"a@h1": entry(["tailf", "feeds"], 100), b"b@h2": entry(["tailf.h2"], 100)}
    assert by_queue(entries, now=101) == {"feeds": ["a@h1"], "tailf": ["a@h1"],
                                          "tailf.h2": ["b@h2"]}


def test_a_worker_not_seen_within_the_ttl_is_offline():
    entries = {b"old@h": entry(["tailf"], 100), b"new@h": entry(["tailf"], 100 + TTL_SECONDS)}
    assert by_queue(entries, now=101 + TTL_SECONDS) == {"tailf": ["new@h"]}


def test_garbage_entries_are_ignored():
    assert by_queue({b"x": b"not json", b"y": entry(["q"], 5)}, now=6) == {"q": ["y"]}
