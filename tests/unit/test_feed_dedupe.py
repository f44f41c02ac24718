"""One viewer's dedupe: baseline, only new entries, reorders, edits, broken guids and links."""

import itertools
from xml.sax.saxutils import escape

from feeds.parsing import parse_bytes
from feeds.upstream import FeedState
from feeds.watch import FeedWatcher
from tests.feedserver import fixture

URL = "https://feeds.example.test/feed.xml"
SEQ = itertools.count(1)


def rss(*items):
    """Render items (dicts with guid/link/title/summary), newest first, as RSS bytes."""
    rendered = []
    for item in items:
        parts = [f"<{tag}>{escape(item[tag])}</{tag}>" for tag in ("guid", "link", "title")
                 if tag in item]
        if "summary" in item:
            parts.append(f"<description>{escape(item['summary'])}</description>")
        rendered.append("<item>" + "".join(parts) + "</item>")
    return (f'<rss version="2.0"><channel><title>Feed</title>{"".join(rendered)}'
            f"</channel></rss>").encode()


def state(body):
    """Parse bytes into a fresh ok state, as the shared fetch would store it."""
    return FeedState(url=URL, seq=next(SEQ), fetched_at=0.0, outcome="ok",
                     feed=parse_bytes(body, "application/rss+xml", URL))


def item(n, **fields):
    """An item with a guid, a link and a title derived from n."""
    return {"guid": f"g{n}", "link": f"https://x.test/{n}", "title": f"item {n}", **fields}


def titles(result):
    return [entry["title"] for entry in result.entries]


def test_first_poll_sends_the_newest_n_oldest_first_then_only_new_ones():
    viewer = FeedWatcher(URL, first_entries=2)
    first = viewer.accept(state(rss(item(3), item(2), item(1))))
    assert first.baseline and titles(first) == ["item 2", "item 3"]
    assert titles(viewer.accept(state(rss(item(5), item(4), item(3), item(2))))) == [
        "item 4", "item 5"]
    assert titles(viewer.accept(state(rss(item(5), item(4), item(3))))) == []


def test_entries_zero_sends_an_empty_baseline_and_later_news():
    viewer = FeedWatcher(URL, first_entries=0)
    first = viewer.accept(state(rss(item(2), item(1))))
    assert first.baseline and first.entries == []
    assert titles(viewer.accept(state(rss(item(3), item(2), item(1))))) == ["item 3"]


def test_baseline_entries_carry_the_protocol_fields_only():
    viewer = FeedWatcher(URL, first_entries=5)
    entry = viewer.accept(state(fixture("rss2.xml"))).entries[-1]
    assert set(entry) == {"id", "title", "link", "published", "summary", "source"}
    assert entry["id"] == "id:rel-1.2" and entry["source"] == "Release notes & status"


def test_reordered_entries_are_not_resent():
    viewer = FeedWatcher(URL)
    viewer.accept(state(rss(item(3), item(2), item(1))))
    assert viewer.accept(state(rss(item(1), item(3), item(2)))).entries == []
    assert titles(viewer.accept(state(rss(item(2), item(4), item(1), item(3))))) == ["item 4"]


def test_edited_entry_is_resent_once_marked_updated():
    viewer = FeedWatcher(URL)
    viewer.accept(state(rss(item(2), item(1))))
    edited = rss(item(2, title="item 2 (fixed)"), item(1))
    result = viewer.accept(state(edited))
    assert [(e["title"], e.get("updated")) for e in result.entries] == [
        ("item 2 (fixed)", True)]
    assert result.entries[0]["id"] == "id:https://feeds.example.test/g2"
    assert viewer.accept(state(edited)).entries == []


def test_summary_edit_counts_as_an_edit_but_markup_only_changes_do_not():
    viewer = FeedWatcher(URL)
    viewer.accept(state(rss(item(1, summary="<p>down</p>"))))
    assert viewer.accept(state(rss(item(1, summary="<div>down</div>")))).entries == []
    assert [e.get("updated") for e in viewer.accept(state(rss(
        item(1, summary="up again")))).entries] == [True]


def test_without_guid_the_link_is_the_key_and_without_both_a_hash():
    viewer = FeedWatcher(URL)
    keys = [entry["id"] for entry in viewer.accept(state(fixture("no-guid.xml"))).entries]
    assert keys[1:] == ["link:https://blog.example.test/b", "link:https://blog.example.test/a"]
    assert keys[0].startswith("hash:") and len(keys[0]) == 5 + 64
    again = rss({"title": "Linked B (edited)", "link": "https://blog.example.test/b"},
                {"title": "Linked A", "link": "https://blog.example.test/a"},
                {"title": "Bare", "summary": "Neither guid nor link"})
    assert [(e["title"], e.get("updated")) for e in viewer.accept(state(again)).entries] == [
        ("Linked B (edited)", True)]


def test_items_sharing_one_guid_are_told_apart_by_their_links():
    viewer = FeedWatcher(URL)
    baseline = viewer.accept(state(fixture("duplicate-guids.xml")))
    assert titles(baseline) == ["One", "Two", "Three"]
    assert len({entry["id"] for entry in baseline.entries}) == 3
    shared = "https://cms.example.test/"
    newer = rss({"guid": shared, "link": "https://cms.example.test/4", "title": "Four"},
                {"guid": shared, "link": "https://cms.example.test/3", "title": "Three"},
                {"guid": shared, "link": "https://cms.example.test/2", "title": "Two"})
    assert titles(viewer.accept(state(newer))) == ["Four"]
    alone = rss({"guid": shared, "link": "https://cms.example.test/4", "title": "Four"})
    assert viewer.accept(state(alone)).entries == []


def test_items_sharing_one_link_fall_back_to_a_composite_key():
    viewer = FeedWatcher(URL)
    baseline = viewer.accept(state(fixture("one-link.xml")))
    assert titles(baseline) == ["Deploy 1", "Deploy 2", "Deploy 3"]
    home = "https://home.example.test/"
    newer = rss({"link": home, "title": "Deploy 4", "summary": "fourth"},
                {"link": home, "title": "Deploy 3", "summary": "third"},
                {"link": home, "title": "Deploy 2", "summary": "second"})
    assert titles(viewer.accept(state(newer))) == ["Deploy 4"]
    assert viewer.accept(state(newer)).entries == []


def test_items_sharing_guid_and_link_are_told_apart_by_content():
    viewer = FeedWatcher(URL)
    same = {"guid": "x", "link": "https://x.test/"}
    body = rss({**same, "title": "b"}, {**same, "title": "a"})
    assert titles(viewer.accept(state(body))) == ["a", "b"]
    assert titles(viewer.accept(state(rss({**same, "title": "c"}, {**same, "title": "b"},
                                          {**same, "title": "a"})))) == ["c"]


def test_exact_duplicate_items_are_sent_once_and_keep_their_id():
    viewer = FeedWatcher(URL)
    assert titles(viewer.accept(state(rss(item(2), item(1))))) == ["item 1", "item 2"]
    assert titles(viewer.accept(state(rss(item(3), item(2), item(2), item(1))))) == ["item 3"]
    assert viewer.accept(state(rss(item(3), item(2), item(1)))).entries == []


def test_seen_window_is_bounded_and_keeps_what_the_feed_still_lists():
    viewer = FeedWatcher(URL, window=10)
    for newest in range(5, 60):
        current = [item(n) for n in range(newest, newest - 5, -1)]
        result = viewer.accept(state(rss(*current)))
        if newest > 5:
            assert titles(result) == [f"item {newest}"]
        assert len(viewer.seen) <= 10


def test_window_grows_to_hold_a_feed_longer_than_it():
    viewer = FeedWatcher(URL, window=10)
    items = [item(n) for n in range(30, 0, -1)]
    viewer.accept(state(rss(*items)))
    assert viewer.accept(state(rss(*items))).entries == []
    assert 30 <= len(viewer.seen) <= 60


def test_same_state_read_twice_sends_nothing_twice():
    viewer = FeedWatcher(URL)
    shared = state(rss(item(1)))
    assert viewer.accept(shared).baseline
    assert viewer.accept(shared).entries == []


def test_long_ids_are_sent_hashed():
    viewer = FeedWatcher(URL)
    long_guid = "urn:" + "x" * 400
    entry = viewer.accept(state(rss(item(1, guid=long_guid)))).entries[0]
    assert entry["id"].startswith("sha256:") and len(entry["id"]) == 7 + 64


def test_a_watcher_resumed_from_another_ones_position_sends_only_what_it_had_not_seen():
    first = FeedWatcher(URL, first_entries=0)
    assert first.position() is None  # nothing seen yet: nothing to go on from
    first.accept(state(rss(item(2), item(1, summary="old text"))))
    position = first.position()
    # Meanwhile item 3 came and item 1 was edited; item 2 is as it was.
    later = FeedWatcher(URL, first_entries=0, resume=position)
    result = later.accept(state(rss(item(3), item(2), item(1, summary="new text"))))
    assert not result.baseline
    assert [(entry["title"], entry.get("updated", False)) for entry in result.entries] == [
        ("item 1", True), ("item 3", False)]
    assert titles(later.accept(state(rss(item(4), item(3), item(2))))) == ["item 4"]
    # An empty or malformed position is no position: the first look is a baseline.
    for nothing in ({"seen": []}, {"seen": "x"}, "x", None):
        fresh = FeedWatcher(URL, first_entries=0, resume=nothing)
        assert fresh.accept(state(rss(item(2), item(1)))).baseline
