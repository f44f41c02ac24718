"""Server texts arrive with a message code, and a zh-Hans page shows them in Chinese."""

import os
import re

from playwright.sync_api import expect

from tests.browser.helpers import append, pane, watch_errors


def test_a_chinese_page_shows_server_status_and_notices_in_chinese(system, browser,
                                                                   tmp_path):
    log = tmp_path / "zh.log"
    log.write_text("一\n")
    source = system.add_log("zh-demo", log)
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    errors = watch_errors(page)
    try:
        page.goto(system.web.base_url + "/accounts/login/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", system.admin_password)
        page.click("button[type=submit]")
        expect(page.locator("#panes[data-ready=true]")).to_be_attached()
        page.goto(system.web.base_url + f"/#p=src%3Dtailf%3A{source}%26lines%3D5%26run%3D1")
        page.reload()
        first = pane(page)
        expect(first.locator(".status")).to_contain_text("正在跟踪 zh-demo", timeout=15000)
        with open(log, "r+") as handle:  # truncation: a notice with a message code
            handle.truncate(0)
        append(log, "二")
        expect(first.locator(".output")).to_contain_text(
            re.compile(re.escape(str(log)) + " 被截断；从新的开头读取"), timeout=15000)
        expect(first.locator(".output")).to_contain_text("二")
        assert os.path.exists(log)
        assert not errors, errors
    finally:
        context.close()
