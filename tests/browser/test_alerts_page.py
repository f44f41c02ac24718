"""The Alerts page in Chromium: reached from the top bar, firings shown as text (a hostile sample
line stays text), only the rules of sources shared with the viewer, in English and Chinese."""

import json

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import login, watch_errors

HOSTILE = '<img src=x onerror="document.title=\'pwned\'">ERROR'


@pytest.fixture(scope="module")
def alerting(system, tmp_path_factory):
    folder = tmp_path_factory.mktemp("alerting")
    shared = system.add_log("payments", str(folder / "payments.log"), "--group", "billing")
    hidden = system.add_log("vault", str(folder / "vault.log"), "--group", "vault-team")
    system.shell(
        "from alerts.models import AlertRule, AlertEvent\n"
        f"shared = AlertRule.objects.create(name='payment errors', kind='log', "
        f"source_id={shared}, pattern='ERROR')\n"
        f"hidden = AlertRule.objects.create(name='vault errors', kind='log', "
        f"source_id={hidden}, pattern='ERROR')\n"
        f"AlertEvent.objects.create(rule=shared, matches=3, suppressed=7, "
        f"samples={json.dumps([HOSTILE, 'ERROR card declined'])}, results={{'ops': 'sent'}})\n"
        "AlertEvent.objects.create(rule=hidden, matches=1, samples=['ERROR vault sealed'])\n")
    return system.create_user("payer", groups=["billing"])


def test_the_alerts_page_lists_visible_firings_as_text(system, alerting, page):
    login(page, system.web.base_url, "payer", alerting)
    page.get_by_role("link", name="Alerts").click()
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    event = page.locator("#alert-events .alert-event").first
    expect(event).to_contain_text("payment errors")
    expect(event).to_contain_text("3 matches")
    expect(event).to_contain_text("7 suppressed during the cooldown")
    expect(event.locator(".alert-samples")).to_contain_text(HOSTILE)
    expect(event.locator(".alert-results")).to_have_text("ops: sent")
    assert page.locator(".alert-samples img").count() == 0
    assert page.title() != "pwned"
    expect(page.locator("body")).not_to_contain_text("vault")
    expect(page.locator("#alert-rules")).to_contain_text("payment errors")


def test_the_alerts_page_in_chinese(system, alerting, browser):
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    errors = watch_errors(page)
    try:
        login(page, system.web.base_url, "payer", alerting)
        page.goto(system.web.base_url + "/alerts/")
        expect(page.locator("#events-title")).to_have_text("最近触发（最多 100 条）")
        expect(page.locator("#alert-events")).to_contain_text("冷却期间抑制了 7 次")
        assert not errors, errors
    finally:
        context.close()
