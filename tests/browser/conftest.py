"""Browser fixtures: Debian's Chromium driven by Playwright (no browser download)."""

import os
import shutil

import pytest

from tests.browser.helpers import watch_errors

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for one test module (Playwright's sync loop must not outlive it)."""
    # In CI a missing Chromium is a failure, elsewhere a skip.
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run must install Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser context and page; the test fails on a script error or CSP violation."""
    context = browser.new_context()
    page = context.new_page()
    errors = watch_errors(page)
    yield page
    context.close()
    assert not errors, errors


@pytest.fixture(scope="module")
def lossy(tmp_path_factory):
    """An installation of the module's own, one worker `w1`, that declares a silent worker lost
    after 3 s (the reconnect tests)."""
    from tests.harness import started_installation

    with started_installation(tmp_path_factory.mktemp("lossy"), workers=[{"name": "w1"}],
                              STREAM_WORKER_LOST_SECONDS=3) as harness:
        yield harness
