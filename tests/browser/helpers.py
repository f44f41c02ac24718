"""Shared steps of the browser tests: log in, find a pane's controls, write log lines."""

import re

from playwright.sync_api import expect

RUNNING = re.compile(r"^Running on w\d@tailboard-test")


def login(page, base, username, password, path="/"):
    """Log in through the login form and land on `path`."""
    page.goto(base + path)
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    expect(page.locator("#panes[data-ready=true]")).to_be_attached()


def pane(page, index=0):
    """The index-th pane (a Playwright locator)."""
    return page.locator(".pane").nth(index)


def start(pane_locator, source_value=None, lines=None):
    """Choose a source and options in a pane, press Start and wait until it runs."""
    if source_value:
        pane_locator.locator(".source").select_option(source_value)
    if lines is not None:
        pane_locator.locator(".lines").fill(str(lines))
    pane_locator.locator(".start").click()
    expect(pane_locator.locator(".status")).to_have_text(RUNNING, timeout=15000)


def append(path, *lines):
    """Append whole lines to a log file."""
    with open(path, "a") as handle:
        handle.write("".join(line + "\n" for line in lines))


def watch_errors(page):
    """Collect uncaught script errors and Content-Security-Policy violations of a page."""
    errors = []
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.on("console", lambda message: errors.append(f"console: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text else None)
    return errors


def descendants(pid):
    """Return the pids of every process below `pid` (from /proc)."""
    import os

    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


class RendererWatchdog:
    """Kill this test's Chromium renderers if the test runs past `seconds`.

    A page whose main thread is frozen never answers Playwright, so its own timeouts never
    fire; killing the renderer makes the waiting call fail ("Target crashed") instead of the
    test hanging until CI's limit.
    """

    def __init__(self, seconds):
        import threading

        self.fired = False
        self.timer = threading.Timer(seconds, self.fire)
        self.timer.daemon = True

    def fire(self):
        """Kill every renderer process below this test process."""
        import os
        import signal

        self.fired = True
        for pid in descendants(os.getpid()):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    if b"--type=renderer" in cmdline.read():
                        os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def __enter__(self):
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        assert not self.fired, "the page froze: its renderer was killed by the watchdog"
