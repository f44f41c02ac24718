"""OPML feed lists in and out (the Miniflux/FreshRSS convention), parsed without entity expansion.

A feed is `<outline type="rss" text= title= xmlUrl= htmlUrl=>`; an outline without `xmlUrl`
that holds others is a category (nested categories are walked). No Django model is used here:
`parse()` returns plain `Feed`s and `render()` takes them.
"""

from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from urllib.parse import urlsplit
from xml.etree import ElementTree

import defusedxml
import defusedxml.ElementTree

# Characters XML 1.0 cannot carry at all (not even escaped): dropped on export.
NOT_XML = dict.fromkeys([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF])
MAX_BYTES = 10 * 1024 * 1024
MAX_FEEDS = 10000


class OpmlError(ValueError):
    """The OPML document cannot be used; the message says why."""


@dataclass(frozen=True)
class Feed:
    """One feed outline: its name, feed URL, site URL and category path (outermost first)."""

    name: str
    url: str
    html_url: str = ""
    categories: tuple = ()


def read_limited(stream, limit=MAX_BYTES):
    """Read a binary stream, refusing more than `limit` bytes (endless input stops there)."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise OpmlError(f"OPML file larger than {limit // (1024 * 1024)} MiB")
    return data


def local_name(tag):
    """The element name without a namespace."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def label(outline):
    """An outline's name: `text`, else `title` (stripped)."""
    return (outline.get("text") or "").strip() or (outline.get("title") or "").strip()


def parse(data, problems=None):
    """Parse OPML bytes into Feeds in document order; raise OpmlError when it is not usable.

    DTDs, entities and external references are refused (no expansion, no fetching). Every
    feed URL must be absolute http(s); a feed without a name is named after its URL. Given a
    `problems` list, a feed with a bad URL is left out and its problem appended there (so a
    caller can report every problem of a file at once); without one, it raises OpmlError.
    """
    if not data or not data.strip():
        raise OpmlError("empty file: not OPML")
    try:
        root = defusedxml.ElementTree.fromstring(data, forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        raise OpmlError(f"refused: OPML with a DTD or entities is not accepted ({exc})") from None
    except ElementTree.ParseError as exc:
        raise OpmlError(f"not XML: {exc}") from None
    if local_name(root.tag) != "opml":
        raise OpmlError(f"not OPML: the root element is <{local_name(root.tag)}>, not <opml>")
    body = next((child for child in root if local_name(child.tag) == "body"), None)
    if body is None:
        raise OpmlError("not OPML: no <body>")
    feeds, number = [], 0
    stack = [(child, ()) for child in reversed(list(body))]
    while stack:
        outline, path = stack.pop()
        if local_name(outline.tag) != "outline":
            continue
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if url:
            number += 1
            try:
                feeds.append(feed_of(outline, url, path, number))
            except OpmlError as exc:
                if problems is None:
                    raise
                problems.append(str(exc))
            if number > MAX_FEEDS:
                raise OpmlError(f"more than {MAX_FEEDS} feeds in one file")
            continue
        name = label(outline) or "(unnamed)"
        stack.extend((child, (*path, name)) for child in reversed(list(outline)))
    if not number:
        raise OpmlError("no feeds: no <outline> in <body> has an xmlUrl")
    return feeds


def feed_of(outline, url, path, number):
    """Build the Feed of one outline with an xmlUrl, checking the URL."""
    name = label(outline) or url
    where = f"feed {number} ({name!r})"
    try:
        parts = urlsplit(url)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise OpmlError(f"{where}: xmlUrl {url!r} is not an absolute http or https URL")
    return Feed(name=name, url=url, html_url=(outline.get("htmlUrl") or "").strip(),
                categories=path)


def duplicates(feeds):
    """Return the names that occur more than once, in first-seen order."""
    seen, repeated = set(), {}
    for feed in feeds:
        if feed.name in seen:
            repeated[feed.name] = None
        seen.add(feed.name)
    return list(repeated)


def xml_safe(text):
    """Drop the characters XML 1.0 cannot represent (control characters, lone surrogates)."""
    text = text.translate(NOT_XML)
    return "".join(ch for ch in text if not 0xD800 <= ord(ch) <= 0xDFFF)


def render(feeds, title="Tailboard feeds", now=None):
    """Return an OPML 2.0 document (UTF-8 bytes): one category outline per category path."""
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = title
    ElementTree.SubElement(head, "dateCreated").text = format_datetime(
        now or datetime.now(timezone.utc))
    body = ElementTree.SubElement(root, "body")
    categories = {}
    for feed in feeds:
        parent, path = body, ()
        for name in map(xml_safe, feed.categories):
            path = (*path, name)
            if path not in categories:
                categories[path] = ElementTree.SubElement(parent, "outline", text=name,
                                                          title=name)
            parent = categories[path]
        name = xml_safe(feed.name)
        attributes = {"type": "rss", "text": name, "title": name, "xmlUrl": xml_safe(feed.url)}
        if feed.html_url:
            attributes["htmlUrl"] = xml_safe(feed.html_url)
        ElementTree.SubElement(parent, "outline", attributes)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
