"""Feed entries go out as `entries` messages whose frames stay under the frame limit."""

import json

from feeds.stream import entry_messages
from webapp.streams import protocol


def entry(n, size):
    return {"id": f"id:{n}", "title": f"t{n}", "link": "", "published": None,
            "summary": "é" * size, "source": "s"}


def test_entries_are_split_into_frames_under_the_limit_in_order():
    items = [entry(n, 2000) for n in range(1500)]
    messages = list(entry_messages(items))
    assert len(messages) > 1
    assert all(len(protocol.encode(m).encode()) < protocol.MAX_FRAME_BYTES for m in messages)
    assert [e["id"] for m in messages for e in m["entries"]] == [e["id"] for e in items]
    assert all(m["type"] == "entries" for m in messages)


def test_few_entries_make_one_message_and_none_make_none():
    assert [json.loads(protocol.encode(m)) for m in entry_messages([entry(1, 10)])] == [
        protocol.entries([entry(1, 10)])]
    assert list(entry_messages([])) == []
