"""Real alert receivers on loopback: a JSON webhook (http.server) and an SMTP server (aiosmtpd)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from webapp.embedded import free_port


class WebhookServer:
    """Collects the JSON bodies POSTed to it; `status` sets the answer (500: failing)."""

    def __init__(self, status=200, host="127.0.0.1", location=None):
        self.received = []
        self.host = host
        self.status = status
        self.attempts = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                owner.attempts += 1
                if owner.status == 200:
                    owner.received.append(json.loads(body or b"{}"))
                self.send_response(owner.status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        """An Apprise URL posting JSON here."""
        return f"json://{self.host}:{self.port}/hook"

    def wait_for(self, count, timeout=30):
        """Return the bodies once `count` arrived (AssertionError after `timeout`)."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, f"{len(self.received)} of {count} webhooks arrived"
        return self.received

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """An aiosmtpd handler keeping each message (envelope and content)."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              envelope.content.decode("utf-8", "replace")))
        return "250 OK"


class SmtpServer:
    """A real SMTP server on 127.0.0.1 (aiosmtpd)."""

    def __init__(self):
        self.mailbox = Mailbox()
        self.port = free_port()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def url(self):
        """An Apprise URL mailing ops@example.com through this server (no TLS)."""
        return (f"mailto://127.0.0.1:{self.port}?to=ops@example.com&from=tailboard@example.com"
                "&mode=insecure")

    def wait_for(self, count, timeout=30):
        deadline = time.monotonic() + timeout
        while len(self.mailbox.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.mailbox.messages) >= count, \
            f"{len(self.mailbox.messages)} of {count} mails arrived"
        return self.mailbox.messages

    def close(self):
        self.controller.stop()
