"""Behind a proxy that lets no WebSocket through (nginx without the Upgrade headers), the
dashboard streams by long polling by itself: it says so, Stop works, a reconnect loses nothing."""

import json
import re

import pytest
from playwright.sync_api import expect

from tests import nginx as proxy
from tests.browser.helpers import RUNNING, append, login, pane, start
from tests.polling import buffering, without_upgrade


def proxied(system, edit):
    """Debian's nginx with docs/nginx/tailboard.conf edited so, in front of the system's web."""
    if not proxy.available():
        pytest.skip(f"{proxy.NGINX} is missing (apt-get install nginx)")
    return proxy.Nginx([system.web.base_url], edit=edit)


@pytest.fixture
def blocking_proxy(system):
    """nginx with docs/nginx/tailboard.conf minus the Upgrade/Connection headers (b)."""
    server = proxied(system, without_upgrade)
    yield server
    server.close()


@pytest.fixture
def buffering_proxy(system):
    """The same with `proxy_buffering on` as well (c, as corporate proxies run it)."""
    server = proxied(system, lambda config: buffering(without_upgrade(config)))
    yield server
    server.close()


def test_the_dashboard_falls_back_to_long_polling_and_stops(system, page, blocking_proxy,
                                                            tmp_path):
    log = tmp_path / "fallback.log"
    log.write_text("before 1\nbefore 2\n")
    source = system.add_log("fallback-log", log)
    login(page, blocking_proxy.url, "admin", system.admin_password)
    first = pane(page)
    start(first, f"tailf:{source}", lines=1)
    status = first.locator(".status")
    expect(first.locator(".transport")).to_have_text("long polling")
    expect(first.locator(".notice-info")).to_contain_text(
        ["WebSocket unavailable; streaming by long polling"])
    lines = first.locator(".output .line")
    expect(lines).to_have_text(["before 2"])
    append(log, "fresh over http")
    expect(lines).to_have_text(["before 2", "fresh over http"], timeout=5000)
    assert any("/streams/poll/" in line for line in blocking_proxy.access_log())

    task_id = status.get_attribute("data-task-id")
    first.locator(".stop").click()
    expect(status).to_have_text(re.compile(r"^Stopped"), timeout=5000)
    assert system.wait_for(lambda: system.task_end(task_id), 3)
    assert system.wait_for(lambda: task_id not in system.active_task_ids(system.worker), 3)


def test_a_long_polling_reconnect_loses_nothing(system, page, blocking_proxy, tmp_path):
    log = tmp_path / "gap.log"
    log.write_text("")
    source = system.add_log("gap-log", log)
    login(page, blocking_proxy.url, "admin", system.admin_password)
    first = pane(page)
    start(first, f"tailf:{source}", lines=0)
    status = first.locator(".status")
    expect(first.locator(".transport")).to_have_text("long polling")
    lines = first.locator(".output .line")
    append(log, "before the cut")
    expect(lines).to_have_text(["before the cut"])

    page.route("**/streams/**", lambda route: route.abort())  # the network drops
    append(log, "as the cut begins")  # answers the poll under way; the next ones fail
    expect(status).to_have_attribute("data-state", "reconnecting", timeout=20000)
    append(log, "during the cut")
    page.unroute("**/streams/**")

    expect(status).to_have_text(RUNNING, timeout=45000)
    expect(first.locator(".transport")).to_have_text("long polling")
    append(log, "after the cut")
    expect(lines).to_have_text(["before the cut", "as the cut begins", "during the cut",
                                "after the cut"], timeout=10000)
    first.locator(".stop").click()
    expect(status).to_have_attribute("data-state", "stopped", timeout=5000)


def test_polls_that_fail_with_a_reason_show_it_then_reconnect(system, page, blocking_proxy,
                                                             tmp_path):
    """Polls answered 503 with the server's reason (what a poll says when Redis fails:
    tests/unit/test_poll_views_redis_lost.py): the pane shows that reason, then reconnects."""
    log = tmp_path / "reason.log"
    log.write_text("")
    source = system.add_log("reason-log", log)
    login(page, blocking_proxy.url, "admin", system.admin_password)
    first = pane(page)
    start(first, f"tailf:{source}", lines=0)
    status = first.locator(".status")
    expect(first.locator(".transport")).to_have_text("long polling")
    reason = json.dumps({"code": 4500, "message": "lost contact with Redis: Connection refused"})

    def fail_polls(route):
        if route.request.method == "GET":
            route.fulfill(status=503, content_type="application/json", body=reason)
        else:
            route.continue_()

    page.route("**/streams/poll/**", fail_polls)
    append(log, "wakes the poll under way")  # the next polls fail
    expect(first.locator(".status .message, .notice-error").first).to_contain_text(
        "lost contact with Redis: Connection refused", timeout=20000)
    page.unroute("**/streams/poll/**")
    expect(status).to_have_text(RUNNING, timeout=45000)
    first.locator(".stop").click()
    expect(status).to_have_attribute("data-state", "stopped", timeout=5000)


def test_a_stream_the_server_forgot_is_started_again(system, page, blocking_proxy, tmp_path):
    log = tmp_path / "forgot.log"
    log.write_text("")
    source = system.add_log("forgot-log", log)
    login(page, blocking_proxy.url, "admin", system.admin_password)
    first = pane(page)
    start(first, f"tailf:{source}", lines=0)
    status = first.locator(".status")
    lines = first.locator(".output .line")
    append(log, "before")
    expect(lines).to_have_text(["before"])
    task_id = status.get_attribute("data-task-id")
    forget_poll_stream(system)  # its state expired while the laptop slept: the next poll 404s
    append(log, "wakes the poll")
    expect(status).to_have_text(RUNNING, timeout=30000)
    expect(status).not_to_have_attribute("data-task-id", task_id, timeout=30000)
    append(log, "after")
    expect(lines).to_have_text(["before", "wakes the poll", "after"], timeout=10000)
    first.locator(".stop").click()
    expect(status).to_have_attribute("data-state", "stopped", timeout=5000)


def forget_poll_stream(system):
    """Delete the one live long-poll stream's state: its next poll gets 404 and the page
    starts it again (a reconnect)."""
    states = [key for key in system.redis.scan_iter("tailboard:poll:*")
              if key.count(b":") == 2 and not key.endswith(b"deadlines")
              and not system.redis.hexists(key, "closed")]  # ended ones stay a while
    assert len(states) == 1
    system.redis.delete(*states)


def test_after_five_minutes_on_long_polling_a_reconnect_tries_the_websocket_again(
        system, page, blocking_proxy, tmp_path):
    log = tmp_path / "retry.log"
    log.write_text("")
    source = system.add_log("retry-log", log)
    sockets = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    page.clock.install()  # Date.now and timers under the test's hand; time flows meanwhile
    login(page, blocking_proxy.url, "admin", system.admin_password)
    first = pane(page)
    start(first, f"tailf:{source}", lines=0)
    status, lines = first.locator(".status"), first.locator(".output .line")
    expect(first.locator(".transport")).to_have_text("long polling")
    assert len(sockets) == 1  # the WebSocket the proxy did not let through

    def reconnect(line):
        task_id = status.get_attribute("data-task-id")
        forget_poll_stream(system)
        append(log, line)
        expect(status).not_to_have_attribute("data-task-id", task_id, timeout=30000)
        expect(status).to_have_text(RUNNING, timeout=30000)

    append(log, "first")
    expect(lines).to_have_text(["first"])
    reconnect("within five minutes")
    assert len(sockets) == 1  # the reconnect polled: no new WebSocket
    page.clock.fast_forward("05:01")
    reconnect("after five minutes")
    assert len(sockets) == 2  # it tried the WebSocket again, then fell back
    expect(first.locator(".transport")).to_have_text("long polling")
    append(log, "still streaming")
    expect(lines.last).to_have_text("still streaming", timeout=10000)
    first.locator(".stop").click()
    expect(status).to_have_attribute("data-state", "stopped", timeout=5000)


def test_a_websocket_that_opens_but_carries_nothing_falls_back_too(system, page, tmp_path):
    log = tmp_path / "silent.log"
    log.write_text("")
    source = system.add_log("silent-log", log)
    opened = []
    # A proxy that completes the handshake and then passes nothing: the page's socket opens.
    page.route_web_socket(re.compile(r".*/ws/.*"), lambda ws: opened.append(ws.url))
    login(page, system.web.base_url, "admin", system.admin_password)
    first = pane(page)
    first.locator(".source").select_option(f"tailf:{source}")
    first.locator(".lines").fill("0")
    first.locator(".start").click()
    expect(first.locator(".status")).to_have_text(RUNNING, timeout=20000)
    assert opened, "the dashboard did not try the WebSocket first"
    expect(first.locator(".transport")).to_have_text("long polling")
    append(log, "over http")
    expect(first.locator(".output .line")).to_have_text(["over http"])
    first.locator(".stop").click()
    expect(first.locator(".status")).to_have_attribute("data-state", "stopped", timeout=5000)


def test_a_working_websocket_is_used_and_named(system, page, tmp_path):
    log = tmp_path / "direct.log"
    log.write_text("")
    source = system.add_log("direct-log", log)
    polls = []
    page.on("request", lambda request: polls.append(request.url)
            if "/streams/" in request.url else None)
    login(page, system.web.base_url, "admin", system.admin_password)
    first = pane(page)
    start(first, f"tailf:{source}", lines=0)
    expect(first.locator(".transport")).to_have_text("WebSocket")
    append(log, "over the socket")
    expect(first.locator(".output .line")).to_have_text(["over the socket"])
    page.wait_for_timeout(7000)  # past the silence limit: a stream that carries stays put
    expect(first.locator(".transport")).to_have_text("WebSocket")
    assert polls == []
    first.locator(".stop").click()
    expect(first.locator(".status")).to_have_attribute("data-state", "stopped", timeout=5000)


def test_through_a_buffering_proxy_every_line_arrives_within_its_poll(system, page,
                                                                       buffering_proxy,
                                                                       tmp_path):
    """Each poll answer is one whole response, sent when there is something to say (and says
    `X-Accel-Buffering: no`), so a buffering proxy holds nothing back."""
    log = tmp_path / "buffered.log"
    log.write_text("")
    source = system.add_log("buffered-log", log)
    login(page, buffering_proxy.url, "admin", system.admin_password)
    first = pane(page)
    start(first, f"tailf:{source}", lines=0)
    expect(first.locator(".transport")).to_have_text("long polling")
    lines = first.locator(".output .line")
    for n in range(5):
        append(log, f"buffered {n}")
        # Within one poll cycle, not at the end of a 25 s idle poll.
        expect(lines.last).to_have_text(f"buffered {n}", timeout=3000)
    expect(lines).to_have_count(5)
    first.locator(".stop").click()
    expect(first.locator(".status")).to_have_text(re.compile(r"^Stopped"), timeout=5000)
    assert any("/streams/poll/" in line for line in buffering_proxy.access_log())
