"""Demo data for the embedded setup: a log that keeps growing and a local RSS feed."""

import random
import threading
import time
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

MESSAGES = [
    ("INFO", "GET /api/orders 200 {ms}ms"),
    ("INFO", "POST /api/login 200 {ms}ms user=alice"),
    ("DEBUG", "cache hit key=session:{n}"),
    ("WARN", "slow query took {ms}ms: SELECT * FROM orders WHERE status = 'open'"),
    ("INFO", "worker heartbeat ok queue=default depth={n}"),
    ("ERROR", "payment gateway timeout after {ms}ms order={n}"),
    ("INFO", "GET /healthz 200 {ms}ms"),
]


def log_line(now=None):
    """Return one realistic demo log line."""
    level, template = random.choice(MESSAGES)
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text = template.format(ms=random.randint(2, 900), n=random.randint(1000, 9999))
    return f"{stamp} {level:<5} demo-app {text}"


class DemoFeed:
    """An RSS 2.0 document that gains an item every few seconds."""

    def __init__(self):
        self.items = []
        self.lock = threading.Lock()

    def add(self):
        """Add the next item."""
        with self.lock:
            number = len(self.items) + 1
            self.items.append((number, datetime.now(timezone.utc)))
            del self.items[:-50]

    def render(self):
        """Return the feed as RSS bytes."""
        with self.lock:
            items = list(reversed(self.items))
        body = "".join(
            f"<item><title>Deploy #{n} finished</title><guid>demo-{n}</guid>"
            f"<link>http://example.invalid/deploys/{n}</link>"
            f"<pubDate>{format_datetime(when)}</pubDate>"
            f"<description>{escape(f'Release {n} rolled out to all hosts.')}</description></item>"
            for n, when in items)
        return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                f"<title>Demo deploys</title><link>http://example.invalid/</link>"
                f"<description>Demo feed</description>{body}</channel></rss>").encode()


def serve_feed(feed, port):
    """Serve the demo feed at http://127.0.0.1:port/feed.xml in a background thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/feed.xml":
                self.send_error(404)
                return
            body = feed.render()
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run(log_path, feed_port, line_every=0.7, item_every=15.0):
    """Append demo lines and grow the demo feed until interrupted."""
    feed = DemoFeed()
    for _ in range(3):
        feed.add()
    serve_feed(feed, feed_port)
    next_item = time.monotonic() + item_every
    while True:
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(log_line() + "\n")
        if time.monotonic() >= next_item:
            feed.add()
            next_item += item_every
        time.sleep(line_every * random.uniform(0.3, 1.7))
