"""Parse feed bytes into plain-text entries; run as a child process under CPU and memory limits.

This module imports only the standard library, feedparser and nh3, so it can run as
`python -I feeds/parsing.py`: the parent writes one JSON header line (content type, URL,
limits) and the feed bytes to stdin and reads one JSON document from stdout. A parse that
goes quadratic (feedparser #562, long author strings) is killed by RLIMIT_CPU here and by
the parent's wall-clock timeout, so it cannot hold a worker.
"""

import calendar
import hashlib
import html
import json
import sys
from datetime import datetime, timezone
from urllib.parse import urlsplit

MAX_ENTRIES = 1000
TITLE_LIMIT = 500
SUMMARY_LIMIT = 2000
LINK_LIMIT = 2000
KEY_PART_LIMIT = 2000


def http_url(value):
    """Return the URL when it is an absolute http(s) URL, else an empty string."""
    if not isinstance(value, str):
        return ""
    value = value.strip()
    if len(value) > LINK_LIMIT or any(ord(char) < 32 for char in value):
        return ""
    try:
        parts = urlsplit(value)
    except ValueError:
        return ""
    return value if parts.scheme.lower() in ("http", "https") and parts.netloc else ""


def plain_text(value, limit):
    """Strip all markup with a real HTML sanitizer (nh3) and return plain text."""
    import nh3

    if not value:
        return ""
    cleaned = nh3.clean(str(value), tags=set(), attributes={},
                        clean_content_tags={"script", "style"})
    text = " ".join(html.unescape(cleaned).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def published_iso(entry):
    """Return the entry's published (else updated) time as ISO 8601 UTC, or None."""
    for field in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(field)
        if parsed:
            try:
                stamp = calendar.timegm(parsed)
                return datetime.fromtimestamp(stamp, tz=timezone.utc).strftime(
                    "%Y-%m-%dT%H:%M:%SZ")
            except (OverflowError, ValueError, TypeError, OSError):
                continue
    return None


def digest(*parts):
    """Return a sha256 hex digest of the parts, separated by NUL."""
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "replace")).hexdigest()


def raw_text(value):
    """Return a key component: the stripped string, bounded, or ''."""
    return str(value).strip()[:KEY_PART_LIMIT] if value else ""


def normalize(entry, source):
    """Turn one feedparser entry into the protocol's entry fields plus its key parts (`_k`)."""
    title = plain_text(entry.get("title"), TITLE_LIMIT)
    summary = plain_text(entry.get("summary") or entry.get("description"), SUMMARY_LIMIT)
    return {
        "title": title,
        "link": http_url(entry.get("link")),
        "published": published_iso(entry),
        "summary": summary,
        "source": source,
        "_k": [raw_text(entry.get("id") or entry.get("guid")), raw_text(entry.get("link")),
               digest(title, summary)],
    }


def ttl_seconds(feed):
    """Return the RSS <ttl> (minutes) in seconds, or None."""
    try:
        minutes = int(str(feed.get("ttl", "")).strip())
    except ValueError:
        return None
    return minutes * 60 if minutes > 0 else None


def parse_bytes(body, content_type, url):
    """Parse feed bytes; return {title, entries (oldest first), ttl, bozo, count}.

    `bozo` is the parser's complaint (empty when the feed is well-formed). A feed that has
    a complaint and no entries is returned with `error` set instead of entries.
    """
    import feedparser

    parsed = feedparser.parse(bytes(body), response_headers={
        "content-type": content_type or "application/xml", "content-location": url})
    bozo = ""
    if parsed.get("bozo"):
        problem = parsed.get("bozo_exception")
        bozo = f"{type(problem).__name__}: {problem}"[:300] if problem else "not well-formed"
    if bozo and not parsed.entries:
        return {"error": f"the feed could not be parsed ({bozo})"}
    source = plain_text(parsed.feed.get("title"), 200) or url
    entries = [normalize(entry, source) for entry in parsed.entries]
    entries.reverse()
    if entries and all(entry["published"] for entry in entries):
        entries.sort(key=lambda entry: entry["published"])
    return {"title": source, "entries": entries[-MAX_ENTRIES:], "ttl": ttl_seconds(parsed.feed),
            "bozo": bozo, "count": len(entries)}


def limit_resources(cpu_seconds, memory_bytes):
    """Cap this process's CPU time and address space (best effort where unsupported)."""
    try:
        import resource
    except ImportError:
        return
    for kind, value in ((resource.RLIMIT_CPU, cpu_seconds), (resource.RLIMIT_AS, memory_bytes)):
        try:
            resource.setrlimit(kind, (value, value))
        except (ValueError, OSError):
            pass


def main():
    """Read a header line and the body from stdin, write the parse result to stdout."""
    header = json.loads(sys.stdin.buffer.readline())
    limit_resources(int(header["cpu_seconds"]), int(header["memory_bytes"]))
    body = sys.stdin.buffer.read()
    result = parse_bytes(body, header.get("content_type"), header["url"])
    sys.stdout.write(json.dumps(result, ensure_ascii=True))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
