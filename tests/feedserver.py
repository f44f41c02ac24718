"""A scriptable local RSS server for tests (threaded, 127.0.0.1, free port)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape


class FeedServer:
    """Serves `items` [(guid, title)] as RSS at /feed.xml; counts requests."""

    def __init__(self):
        self.items = []
        self.title = "Test feed"
        self.requests = 0
        self.raw = None
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server_self.requests += 1
                body = server_self.raw if server_self.raw is not None else server_self.render()
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/feed.xml"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def render(self):
        """Return the RSS document for the current items (newest first)."""
        items = "".join(
            f"<item><guid>{escape(guid)}</guid><title>{escape(title)}</title>"
            f"<link>http://example.invalid/{escape(guid)}</link></item>"
            for guid, title in self.items)
        return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                f"<title>{escape(self.title)}</title>{items}</channel></rss>").encode()

    def close(self):
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
