"""A long-poll stream client for tests: what the dashboard does over plain HTTP (httpx)."""

import time

import httpx


class PollClient:
    """One browser session's long-poll streams: start, poll with `after`, stop, ack."""

    def __init__(self, base, cookie=None, timeout=40, transport=None):
        self.http = httpx.Client(base_url=base, timeout=timeout, transport=transport)
        if cookie:
            name, value = cookie.split("=", 1)
            self.http.cookies.set(name, value)
        self.http.get("/")  # the dashboard sets the CSRF cookie (the login page when logged out)
        if "csrftoken" not in self.http.cookies:
            self.http.get("/accounts/login/")
        self.csrf = self.http.cookies.get("csrftoken", "")
        self.token = None
        self.after = 0
        self.messages = []
        self.closed = None

    def close(self):
        """Close the HTTP client."""
        self.http.close()

    def start(self, path):
        """POST /streams/<kind>/<id>/?...; return the response (the token is kept on 201)."""
        response = self.http.post(path, headers={"X-CSRFToken": self.csrf})
        if response.status_code == 201:
            self.token = response.json()["stream"]
        return response

    def poll_raw(self, after=None, token=None):
        """One GET of the poll URL; return the response."""
        return self.http.get(f"/streams/poll/{token or self.token}/",
                             params={"after": self.after if after is None else after})

    def poll(self, after=None):
        """One poll: record its messages, move `after` on; return the parsed answer."""
        response = self.poll_raw(after)
        response.raise_for_status()
        body = response.json()
        self.messages.extend(body["messages"])
        self.after = body["next"]
        if body["closed"]:
            self.closed = body["closed"]
        return body

    def send(self, message, token=None):
        """POST a client message (`stop`, `ack`); return the response."""
        return self.http.post(f"/streams/poll/{token or self.token}/", json=message,
                              headers={"X-CSRFToken": self.csrf})

    def until(self, predicate, timeout=15):
        """Poll until a message satisfies predicate; return it."""
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            for message in self.messages[checked:]:
                if predicate(message):
                    return message
            checked = len(self.messages)
            if self.closed or time.monotonic() > deadline:
                raise AssertionError(f"no matching message; closed={self.closed}, got "
                                     f"{self.messages[-10:]}")
            self.poll()

    def status(self, state, timeout=15):
        """Poll until a status message with this state."""
        return self.until(lambda m: m["type"] == "status" and m["state"] == state, timeout)

    def lines(self):
        """Every line received so far, in order."""
        return [line for m in self.messages if m["type"] == "lines" for line in m["lines"]]


UPGRADE_LINES = ("        proxy_set_header Upgrade $http_upgrade;",
                 "        proxy_set_header Connection $connection_upgrade;")


def without_upgrade(config):
    """docs/nginx/tailboard.conf without the Upgrade/Connection headers (configuration b: a
    proxy that lets no WebSocket through)."""
    lines = config.splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(UPGRADE_LINES)]
    assert len(lines) - len(kept) == 2, "the site file should pass Upgrade and Connection"
    return "".join(kept)


def buffering(config):
    """docs/nginx/tailboard.conf with `proxy_buffering on` (configuration c)."""
    assert config.count("proxy_buffering off;") == 1
    return config.replace("proxy_buffering off;", "proxy_buffering on;")
