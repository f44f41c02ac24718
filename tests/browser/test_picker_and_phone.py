"""The source picker (search, keyboard, worker marks) and the dashboard on a phone-sized screen."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import RUNNING, append, login, pane, watch_errors


@pytest.fixture(scope="module")
def catalog(system, tmp_path_factory):
    """Sources in two groups, one on a queue no worker serves; a viewer of both groups."""
    folder = tmp_path_factory.mktemp("picker")
    paths = {name: folder / f"{name}.log" for name in ("nginx-access", "payments", "orphan")}
    for path in paths.values():
        path.write_text("")
    ids = {
        "nginx-access": system.add_log("nginx-access", paths["nginx-access"], "--group", "web-team"),
        "payments": system.add_log("payments", paths["payments"], "--group", "billing"),
        "orphan": system.add_log("orphan", paths["orphan"], "--queue", "nobody-home",
                                 "--group", "billing"),
    }
    password = system.create_user("picky", groups=["web-team", "billing"])
    return {"paths": paths, "ids": ids, "password": password}


def option_names(first):
    return first.locator(".picker-list [role=option] .pk-name").all_inner_texts()


def test_picker_filters_by_name_path_group_and_queue_and_works_by_keyboard(system, catalog, page):
    login(page, system.web.base_url, "picky", catalog["password"])
    first = pane(page)
    box = first.locator(".picker-input")
    expect(box).to_be_focused()
    listbox = first.locator(".picker-list")
    expect(listbox).to_have_attribute("role", "listbox")
    assert box.get_attribute("aria-controls") == listbox.get_attribute("id")
    assert set(option_names(first)) == {"nginx-access", "payments", "orphan"}

    # Each option says its kind, where it reads, its queue and groups, and a missing worker.
    orphan = first.locator("[role=option]", has_text="orphan")
    expect(orphan.locator(".pk-kind")).to_have_text(re.compile("log", re.I))
    expect(orphan.locator(".pk-where")).to_have_text(str(catalog["paths"]["orphan"]))
    expect(orphan.locator(".pk-meta")).to_contain_text("queue nobody-home")
    expect(orphan.locator(".pk-meta")).to_contain_text("billing")
    expect(orphan.locator(".pk-worker")).to_have_text("no worker online on nobody-home")
    expect(first.locator("[role=option]", has_text="payments").locator(".pk-worker")).to_have_count(0)

    box.fill("web-team")
    assert option_names(first) == ["nginx-access"]
    box.fill("nobody-home")
    assert option_names(first) == ["orphan"]
    box.fill(str(catalog["paths"]["payments"].parent.name) + " pay")
    assert option_names(first) == ["payments"]
    box.fill("no such thing at all")
    expect(first.locator(".picker-empty")).to_be_visible()
    assert option_names(first) == []

    # Keyboard: arrows move the active option (aria-activedescendant), Enter chooses it (and
    # does not start the pane), Enter again takes it out, Escape closes the list.
    box.fill("")
    box.press("ArrowDown")
    active = box.get_attribute("aria-activedescendant")
    assert active and first.locator(f"#{active}").get_attribute("role") == "option"
    chosen = first.locator(f"#{active} .pk-name").inner_text()
    box.press("Enter")
    expect(first.locator(f"#{active}")).to_have_attribute("aria-selected", "true")
    expect(first.locator(".status")).to_have_text("Idle")
    name = first.locator(".source option:checked").get_attribute("data-name")
    assert name == chosen
    box.press("Enter")
    expect(first.locator(f"#{active}")).to_have_attribute("aria-selected", "false")
    assert first.locator(".source").evaluate("el => el.selectedIndex") == -1
    box.fill("payments")
    box.press("Enter")
    box.press("Escape")
    expect(box).to_have_attribute("aria-expanded", "false")
    expect(first.locator(".picker-panel")).to_be_hidden()
    expect(first.locator(".source")).to_have_value(f"tailf:{catalog['ids']['payments']}")
    first.locator(".lines").fill("0")
    first.locator(".start").click()
    expect(first.locator(".status")).to_have_text(RUNNING, timeout=15000)

    # Choosing from the picker of a running pane extends it: the new source starts at once.
    box.fill("nginx")
    box.press("Enter")
    rows = first.locator(".source-row .status")
    expect(rows).to_have_text([RUNNING, RUNNING], timeout=15000)
    append(catalog["paths"]["nginx-access"], "GET / 200")
    expect(first.locator(".line .src-tag")).to_have_text(["nginx-access"])


@pytest.mark.parametrize("width,height", [(390, 844), (360, 740)])
def test_phone_layout_has_no_horizontal_scroll_and_keeps_labels(system, catalog, browser, width,
                                                                 height):
    context = browser.new_context(viewport={"width": width, "height": height},
                                  device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors = watch_errors(page)
    try:
        login(page, system.web.base_url, "admin", system.admin_password)
        first = pane(page)
        box = first.locator(".picker-input")
        box.fill("payments")
        box.press("Enter")
        box.fill("nginx")
        box.press("Enter")
        box.press("Escape")
        first.locator(".lines").fill("0")
        first.locator(".start").click()
        expect(first.locator(".source-row .status")).to_have_text([RUNNING, RUNNING], timeout=15000)
        page.click("#add-pane")
        expect(page.locator(".pane")).to_have_count(2)
        append(catalog["paths"]["payments"], "x" * 300, "2024-05-01T10:00:00Z WARN " + "y" * 200)

        overflow = page.evaluate("""() => { const el = document.scrollingElement;
            return [el.scrollWidth, el.clientWidth]; }""")
        assert overflow[0] <= overflow[1], overflow
        wide = page.evaluate(f"""() => [...document.querySelectorAll('body *')]
            .filter((el) => el.getClientRects().length && !el.closest('.output, [hidden]'))
            .filter((el) => el.getBoundingClientRect().right > {width} + 0.5)
            .map((el) => el.className || el.tagName)""")
        assert wide == []

        # Panes are stacked, one above the other, each as wide as the screen allows.
        boxes = [p.bounding_box() for p in page.locator(".pane").all()]
        assert boxes[1]["y"] >= boxes[0]["y"] + boxes[0]["height"] - 1
        assert all(b["x"] >= 0 and b["x"] + b["width"] <= width for b in boxes)

        # Every visible input has a label whose text is visible (not only a placeholder).
        unlabelled = page.evaluate("""() => [...document.querySelectorAll(
                '.pane input:not([type=hidden]), .pane select')]
            .filter((el) => el.getClientRects().length && !el.closest('[hidden]'))
            .filter((el) => {
                const label = el.labels && el.labels[0];
                if (!label) return true;
                const texts = [...label.querySelectorAll('.cap')];
                const parts = texts.length ? texts : [label];
                return !parts.some((part) => { const r = part.getBoundingClientRect();
                    return r.width > 4 && r.height > 4 && part.textContent.trim(); });
            }).map((el) => el.className || el.name)""")
        assert unlabelled == []

        # The badge shows its state in full, the host included.
        for badge in first.locator(".badge").all():
            assert badge.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
            expect(badge).to_have_text(RUNNING)
        for name in ("Admin", "Log out"):
            target = page.get_by_role("link" if name == "Admin" else "button", name=name)
            expect(target).to_be_visible()
            rect = target.bounding_box()
            assert rect["x"] >= 0 and rect["x"] + rect["width"] <= width
        first.locator(".stop").click()
        expect(first.locator(".source-row .status")).to_have_text(
            [re.compile("^Stopped")] * 2, timeout=5000)
        assert not errors, errors
    finally:
        context.close()
