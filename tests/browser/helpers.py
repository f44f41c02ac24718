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
