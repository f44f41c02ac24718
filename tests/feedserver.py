"""A scriptable local feed server for tests (threaded, 127.0.0.1 or another local address,
free port, plain HTTP or TLS with a given `ssl.SSLContext`).

By default `/feed.xml` serves `items` [(guid, title)] as RSS (or `raw` bytes), optionally
with an ETag it honours. A test scripts any path with `script(path, Reply(...), ...)`:
replies are used in order and the last one repeats; a callable gets the `Request` and
returns a Reply. Every request is recorded in `log`.
"""

import dataclasses
import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "feeds"
# The FEED_INTERNAL_ALLOW entry that lets feeds reach a FeedServer on its default host:
# without it, a feed on 127.0.0.1 is refused like any internal address.
LOCAL_FEEDS = "127.0.0.1"


def fixture(name):
    """Return the bytes of a feed fixture in tests/fixtures/feeds/."""
    return (FIXTURES / name).read_bytes()


@dataclasses.dataclass
class Reply:
    """One scripted answer. `hang` reads the request and never answers; `length=False`
    leaves out Content-Length (the body ends when the connection closes)."""

    status: int = 200
    body: bytes = b""
    headers: dict = dataclasses.field(default_factory=dict)
    hang: bool = False
    delay: float = 0.0
    length: bool = True


@dataclasses.dataclass
class Request:
    """One request the server received."""

    path: str
    headers: dict
    at: float


class FeedServer:
    """Serves scripted replies; `/feed.xml` defaults to an RSS document of `items`."""

    def __init__(self, host="127.0.0.1", tls=None, port=0):
        self.items = []
        self.title = "Test feed"
        self.raw = None
        self.etag = False
        self.routes = {}
        self.log = []
        self.lock = threading.Lock()
        self.closing = threading.Event()
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                request = Request(self.path, {k.lower(): v for k, v in self.headers.items()},
                                  time.monotonic())
                with server_self.lock:
                    server_self.log.append(request)
                reply = server_self.reply(request)
                if reply.hang:
                    server_self.closing.wait(120)
                    return
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if reply.length and "Content-Length" not in reply.headers:
                        self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    view = memoryview(reply.body)
                    for start in range(0, len(view), 65536):
                        self.wfile.write(view[start:start + 65536])
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                return

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.base = f"{'https' if tls else 'http'}://{host}:{self.port}"
        self.url = self.base + "/feed.xml"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    @property
    def requests(self):
        """How many requests arrived (any path)."""
        return len(self.log)

    def hits(self, path="/feed.xml"):
        """Return the requests made to one path."""
        with self.lock:
            return [request for request in self.log if request.path == path]

    def script(self, path, *replies):
        """Answer `path` with these replies in order (the last repeats), or a callable."""
        self.routes[path] = list(replies)
        return self.base + path

    def reply(self, request):
        """Pick the reply for a request."""
        with self.lock:
            script = self.routes.get(request.path)
            if script:
                reply = script.pop(0) if len(script) > 1 else script[0]
            else:
                reply = None
        if callable(reply):
            return reply(request)
        if reply is not None:
            return reply
        if request.path == "/feed.xml":
            return self.default_reply(request)
        return Reply(404, b"not found")

    def default_reply(self, request):
        """Serve `raw` or the rendered items; with `etag`, answer 304 when it matches."""
        body = self.raw if self.raw is not None else self.render()
        headers = {"Content-Type": "application/rss+xml; charset=utf-8"}
        if self.etag:
            tag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            headers["ETag"] = tag
            if request.headers.get("if-none-match") == tag:
                return Reply(304, b"", {"ETag": tag})
        return Reply(200, body, headers)

    def render(self):
        """Return the RSS document for the current items (newest first)."""
        items = "".join(
            f"<item><guid>{escape(guid)}</guid><title>{escape(title)}</title>"
            f"<link>http://example.invalid/{escape(guid)}</link></item>"
            for guid, title in self.items)
        return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                f"<title>{escape(self.title)}</title>{items}</channel></rss>").encode()

    def close(self):
        """Stop serving (hanging handlers are released)."""
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
