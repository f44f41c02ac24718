"""Feed bytes to plain-text entries: formats, encodings, malformed XML, hostile markup."""

import os
import time
from pathlib import Path

import pytest

from feeds.fetch import FetchError
from feeds.parsing import http_url, parse_bytes, plain_text
from feeds.sandbox import PARSER, parse
from tests.feedserver import fixture

URL = "https://feeds.example.test/feed.xml"


def entries(name, content_type="application/rss+xml"):
    """Parse a fixture in-process; return the result."""
    return parse_bytes(fixture(name), content_type, URL)


def titles(result):
    return [entry["title"] for entry in result["entries"]]


def test_rss2_entries_come_oldest_first_with_utc_times_and_the_feed_title():
    result = entries("rss2.xml")
    assert titles(result) == ["Release 1.0", "Release 1.1", "Release 1.2"]
    newest = result["entries"][-1]
    assert newest == {**newest, "link": "https://status.example.test/releases/1.2",
                      "published": "2024-01-03T09:00:00Z", "summary": "Faster startup.",
                      "source": "Release notes & status"}
    assert newest["_k"][0] == "rel-1.2"
    assert result["ttl"] == 60 and result["bozo"] == ""


def test_atom_entries_resolve_relative_links_against_the_feed_url():
    result = entries("atom.xml", "application/atom+xml")
    assert titles(result) == ["Maintenance window", "Database failover done"]
    maintenance, failover = result["entries"]
    assert failover["link"] == "https://feeds.example.test/posts/failover"
    assert maintenance["published"] == "2024-02-01T07:30:00Z"
    assert maintenance["summary"] == "Tonight, 22:00."
    assert failover["source"] == "Ops journal"


def test_rss1_rdf_entries_are_read():
    result = entries("rdf.xml", "application/rdf+xml")
    assert titles(result) == ["First story", "Second story"]
    assert result["entries"][0]["_k"][0] == "https://news.example.test/1"
    assert result["entries"][1]["published"] == "2024-03-02T08:00:00Z"


def test_entry_without_a_date_has_published_null():
    assert all(entry["published"] is None for entry in entries("no-guid.xml")["entries"])


@pytest.mark.parametrize("content_type", ["application/rss+xml", "text/xml"])
def test_iso_8859_1_feed_is_decoded_by_its_declaration(content_type):
    result = entries("latin1.xml", content_type)
    assert result["title"] == "Café log"
    assert titles(result) == ["Crème brûlée für £5"]
    assert result["entries"][0]["summary"] == "Señor Müller"


@pytest.mark.parametrize("content_type", ["application/rss+xml", "application/xml"])
def test_windows_1251_feed_is_decoded_by_its_declaration(content_type):
    result = entries("windows-1251.xml", content_type)
    assert result["title"] == "Новости"
    assert titles(result) == ["Привет, мир"]
    assert result["entries"][0]["summary"] == "Обновление сервера"


def test_charset_in_the_http_header_is_passed_to_the_parser():
    body = fixture("windows-1251.xml").replace(b' encoding="windows-1251"', b"")
    assert titles(parse_bytes(body, "application/xml; charset=windows-1251", URL)) == [
        "Привет, мир"]


def test_malformed_xml_with_entries_is_used_and_flagged():
    result = entries("malformed.xml")
    assert titles(result) == ["First bold", "Second"]
    assert "not well-formed" in result["bozo"]


def test_document_that_is_not_a_feed_is_an_error():
    result = parse_bytes(b"<html><body><h1>Login</h1>", "text/html", URL)
    assert "could not be parsed" in result["error"]


def test_hostile_markup_arrives_as_inert_plain_text():
    result = entries("hostile.xml")
    by_id = {entry["_k"][0].rsplit("/", 1)[-1]: entry for entry in result["entries"]}
    patch, data, text = by_id["h-3"], by_id["h-2"], by_id["h-1"]
    assert result["title"] == "Hostile"
    assert patch["title"] == "Patch now"
    assert patch["link"] == ""
    assert patch["summary"] == "Click here"
    assert data["link"] == "" and data["summary"] == "fine"
    assert text["title"] == "Entities <script> stay text"
    assert text["link"] == "https://safe.example.test/ok"
    for entry in result["entries"]:
        for field in ("title", "summary", "source"):
            assert "alert" not in entry[field] and "onerror" not in entry[field]


@pytest.mark.parametrize("value,expected", [
    ("https://ok.example.test/a?b=1", "https://ok.example.test/a?b=1"),
    ("HTTP://OK.example.test/", "HTTP://OK.example.test/"),
    ("javascript:alert(1)", ""),
    (" JaVaScRiPt:alert(1)", ""),
    ("java\nscript:alert(1)", ""),
    ("data:text/html,<script>", ""),
    ("vbscript:msgbox", ""),
    ("//evil.example.test/", ""),
    ("/relative/path", ""),
    ("https://x.test/\x00", ""),
    (None, ""),
])
def test_links_are_http_or_https_only(value, expected):
    assert http_url(value) == expected


def test_plain_text_strips_tags_scripts_and_styles_and_is_bounded():
    html = '<p onclick="x()">Hi <script>alert(1)</script><style>p{}</style><b>there</b></p>'
    assert plain_text(html, 100) == "Hi there"
    assert plain_text("x" * 50, 10) == "x" * 9 + "…"


def test_oversized_feeds_keep_only_the_newest_thousand_entries():
    items = "".join(f"<item><guid>g{n}</guid><title>t{n}</title></item>"
                    for n in range(1200, 0, -1))
    body = f'<rss version="2.0"><channel><title>many</title>{items}</channel></rss>'.encode()
    result = parse_bytes(body, "application/rss+xml", URL)
    assert result["count"] == 1200 and len(result["entries"]) == 1000
    assert titles(result)[0] == "t201" and titles(result)[-1] == "t1200"


async def test_parse_runs_in_a_child_process_and_returns_entries():
    result = await parse(fixture("rss2.xml"), "application/rss+xml", URL)
    assert titles(result) == ["Release 1.0", "Release 1.1", "Release 1.2"]


async def test_unparseable_feed_raises_fetch_error():
    with pytest.raises(FetchError, match="could not be parsed"):
        await parse(b"\x00\x01 garbage", "application/xml", URL)


async def test_quadratic_author_string_is_stopped_by_the_parse_time_limit():
    author = "a@" + "a." * 60000 + "!"
    body = (f'<rss version="2.0"><channel><title>t</title><item><guid>1</guid>'
            f"<title>x</title><author>{author}</author></item></channel></rss>").encode()
    started = time.monotonic()
    with pytest.raises(FetchError, match="longer than 1 s"):
        await parse(body, "application/rss+xml", URL, timeout=1)
    assert time.monotonic() - started < 4
    assert not parser_children()


def parser_children():
    """Return the pids of parser processes this test process still has."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and str(PARSER).encode() in cmdline:
            found.append(proc.name)
    return found
