"""One viewer's memory of the entries it was sent: what is new, what was edited.

Dedupe key: id/guid, else link, else a hash of title and summary. An id (or link) value
that two different entries of one document share is no longer trusted for this stream:
those entries fall back to the link, then to a hash of all their fields.
"""

import collections
import hashlib

SEEN_WINDOW = 5000
PUBLIC_ID_LIMIT = 200
SNAPSHOT_ENTRIES = 500
SHORT = 16  # hex digits kept of a key's and a content's hash in a snapshot


def content_hash(item):
    """Return a hash of what the viewer sees of an entry, to notice edits."""
    text = "\x00".join((item["title"], item["summary"], item["link"]))
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def public_id(key):
    """Return the entry id sent to the browser: the dedupe key, hashed when long."""
    if len(key) <= PUBLIC_ID_LIMIT:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


class Seen:
    """The keys and content hashes of the last `window` entries sent to one viewer."""

    def __init__(self, window=SEEN_WINDOW):
        self.window = window
        self.seen = collections.OrderedDict()
        self.shared_ids = {}
        self.shared_links = {}
        self.remembered = {}  # short key hash -> short content hash, from `restore`

    def __len__(self):
        """Return how many entries are remembered."""
        return len(self.seen)

    def fresh(self, items):
        """Remember parsed items (oldest first); return the public form of the new or
        edited ones (edited ones with `"updated": True`), oldest first."""
        fresh = []
        for item, key in zip(items, self._keys(items), strict=False):
            public = {"id": public_id(key), "title": item["title"], "link": item["link"],
                      "published": item["published"], "summary": item["summary"],
                      "source": item["source"]}
            digest = content_hash(public)
            previous = self.seen.get(key)
            if previous is None and self.remembered:
                known = self.remembered.pop(short_hash(key), None)
                previous = digest if known == digest[:SHORT] else known
            self.seen[key] = digest
            self.seen.move_to_end(key)
            if previous == digest:
                continue
            if previous is not None:
                public["updated"] = True
            fresh.append(public)
        while len(self.seen) > max(self.window, 2 * len(items)):
            self.seen.popitem(last=False)
        return fresh

    def snapshot(self, limit=SNAPSHOT_ENTRIES):
        """The last `limit` entries remembered, small enough to keep elsewhere: pairs of
        short hashes of their key and of their content (see `restore`)."""
        entries = list(self.seen.items())[-limit:]
        return [[short_hash(key), digest[:SHORT]] for key, digest in entries]

    def restore(self, snapshot):
        """Remember the entries of a `snapshot` (another reading's): they are not new, and
        are edited only if their content changed."""
        self.remembered = {str(key): str(digest) for key, digest in snapshot
                           if isinstance(key, str) and isinstance(digest, str)}

    def _key(self, guid, link, digest):
        if guid and guid not in self.shared_ids:
            return "id:" + guid
        if link and link not in self.shared_links:
            return "link:" + link
        if not guid and not link:
            return "hash:" + digest
        joined = "\x00".join((guid, link, digest))
        return "hash:" + hashlib.sha256(joined.encode("utf-8", "replace")).hexdigest()

    def _keys(self, items):
        """Return one key per item, distrusting ids and links that different items share
        (an item listed twice, identical, is not a reason to distrust its id)."""
        while True:
            keys = [self._key(*item["_k"]) for item in items]
            variants = collections.defaultdict(set)
            for key, item in zip(keys, items, strict=False):
                variants[key].add(tuple(item["_k"]))
            distrusted = False
            for key, parts in variants.items():
                kind, _, value = key.partition(":")
                if len(parts) > 1 and kind in ("id", "link"):
                    shared = self.shared_ids if kind == "id" else self.shared_links
                    shared[value] = True
                    while len(shared) > self.window:
                        del shared[next(iter(shared))]
                    distrusted = True
            if not distrusted:
                return keys


def short_hash(key):
    """A short hash of an entry's dedupe key (for a snapshot)."""
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:SHORT]
