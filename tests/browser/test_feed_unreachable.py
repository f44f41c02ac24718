"""A feed that cannot be reached shows amber from its first failure, with the time of the next
attempt, in English and in Chinese; never green "Running"."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import login, pane
from tests.feedserver import Reply


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_an_unreachable_feed_is_amber_from_its_first_failure(system, feed_server, page,
                                                             language):
    url = feed_server.script(f"/down-{language}.xml", Reply(503))
    feed = system.add_feed(f"down-{language}", url, "--interval", "60")
    page.context.add_cookies([{"name": "django_language", "value": language,
                               "url": system.web.base_url}])
    login(page, system.web.base_url, "admin", system.admin_password)
    first = pane(page)
    first.locator(".source").select_option(f"feeds:{feed}")
    first.locator(".start").click()
    status = first.locator(".status")
    expect(status).to_have_attribute("data-state", "warning", timeout=15000)
    retry = re.compile(r"\d\d:\d\d:\d\d UTC")
    if language == "en":
        expect(status.locator(".message")).to_contain_text("cannot be fetched: HTTP 503")
        expect(status.locator(".message")).to_contain_text("next attempt at")
    else:
        expect(status.locator(".message")).to_contain_text("无法获取该订阅源")
        expect(status.locator(".message")).to_contain_text("下次尝试时间")
    expect(status.locator(".message")).to_have_text(retry)
    assert len(feed_server.log) >= 1
    first.locator(".stop").click()
