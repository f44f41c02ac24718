"""Streams over plain HTTP (long polling) on the real stack: the WebSocket's stream and
lifecycle (one task per stream, Stop, lease, limits, flow control) through another transport."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.harness import started_installation
from tests.polling import PollClient


def append(path, *lines):
    """Append whole lines to a file."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


@pytest.fixture
def poller(system):
    """Factory: a PollClient of a session (the admin's by default); closed after the test."""
    made = []

    def make(cookie=None, base=None):
        made.append(PollClient(base or system.web.base_url,
                               system.admin_cookie if cookie is None else cookie))
        return made[-1]

    yield make
    for client in made:
        client.close()


def stream_record(system, task_id):
    """Return (ending, ended?) of a stream's record."""
    out = system.shell("from webapp.models import Stream\n"
                       f"s = Stream.objects.get(task_id={task_id!r})\n"
                       "print(repr(s.ending) + '|' + str(s.ended is not None))")
    ending, ended = out.strip().splitlines()[-1].split("|")
    ending = ending.strip("'")
    return ending, ended == "True"


def test_a_polled_stream_delivers_the_websocket_messages_in_order(system, poller, tmp_path):
    log = tmp_path / "poll.log"
    append(log, "old 1", "old 2", "old 3")
    source = system.add_log("poll-basic", log)
    client = poller()
    response = client.start(f"/streams/tailf/{source}/?lines=2")
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Accel-Buffering"] == "no"
    queued = client.status("queued")
    assert queued["message"] == "waiting for a worker on queue tailf (1 online)"
    assert client.messages[0] is queued
    running = client.status("running")
    assert running["worker"] == system.worker.hostname
    assert client.lines() == ["old 2", "old 3"]
    append(log, "fresh 1", "fresh 2")
    client.until(lambda m: m["type"] == "lines" and "fresh 2" in m["lines"])
    assert client.lines() == ["old 2", "old 3", "fresh 1", "fresh 2"]
    assert all(isinstance(m.get("seq"), int) for m in client.messages if m["type"] == "lines")
    client.send({"action": "stop"})


def test_an_idle_poll_answers_within_25_seconds_and_a_busy_one_at_once(system, poller,
                                                                        tmp_path):
    log = tmp_path / "idle.log"
    log.write_text("")
    source = system.add_log("poll-idle", log)
    client = poller()
    client.start(f"/streams/tailf/{source}/")
    client.status("running")
    began = time.monotonic()
    body = client.poll()
    waited = time.monotonic() - began
    assert body["messages"] == [] and body["closed"] is None
    assert 20 <= waited <= 27, waited
    append(log, "wake")
    began = time.monotonic()
    client.until(lambda m: m["type"] == "lines")
    assert time.monotonic() - began < 3
    client.send({"action": "stop"})


def test_a_repeated_poll_loses_and_doubles_nothing(system, poller, tmp_path):
    log = tmp_path / "repeat.log"
    log.write_text("")
    source = system.add_log("poll-repeat", log)
    client = poller()
    client.start(f"/streams/tailf/{source}/")
    client.status("running")
    expected = [f"line {n}" for n in range(300)]
    for n in range(0, 300, 30):
        append(log, *expected[n:n + 30])
        before = client.after
        first = client.poll_raw().json()
        again = client.poll_raw(before).json()  # the first answer was "lost": ask again
        assert again["messages"][:len(first["messages"])] == first["messages"]
        client.messages.extend(again["messages"])
        client.after = again["next"]
    while len(client.lines()) < len(expected):
        client.poll()
    assert client.lines() == expected
    seqs = [m["seq"] for m in client.messages if m["type"] == "lines"]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    client.send({"action": "stop"})


def test_stop_revokes_the_task_and_closes_normally(system, poller, tmp_path):
    log = tmp_path / "stop.log"
    log.write_text("")
    source = system.add_log("poll-stop", log)
    client = poller()
    client.start(f"/streams/tailf/{source}/")
    task_id = client.status("queued")["task_id"]
    client.status("running")
    assert task_id in system.active_task_ids(system.worker)
    response = client.send({"action": "stop"})
    assert response.status_code == 200 and response.json() == {"closed": {"code": 1000}}
    stopped = client.status("stopped")
    assert stopped["message"] == "stopped by the viewer"
    assert client.closed == {"code": 1000}
    assert system.wait_for(lambda: system.task_end(task_id), 3)
    assert system.wait_for(lambda: task_id not in system.active_task_ids(system.worker), 3)
    assert stream_record(system, task_id) == ("viewer_stop", True)


def test_no_poll_for_the_lease_ends_the_task(system, poller, tmp_path):
    log = tmp_path / "lapse.log"
    log.write_text("")
    source = system.add_log("poll-lapse", log)
    client = poller()
    client.start(f"/streams/tailf/{source}/")
    task_id = client.status("queued")["task_id"]
    client.status("running")
    went = time.monotonic()  # STREAM_LEASE_SECONDS is 3 in the tests
    ended = system.wait_for(lambda: system.task_end(task_id), 15)
    assert ended and "terminated" in ended, ended
    assert time.monotonic() - went < 3 + 5
    assert system.wait_for(lambda: stream_record(system, task_id)[1], 5)
    assert stream_record(system, task_id)[0] == "disconnect"
    body = client.poll()  # the viewer comes back: told why, and that it may reconnect
    last = body["messages"][-1]
    assert last["state"] == "error" and last["retry"] is True
    assert last["message_code"] == "poll_lapsed"
    assert body["closed"] == {"code": 4408}


def test_with_no_web_process_left_the_task_ends_by_its_own_lease(system, poller, tmp_path):
    log = tmp_path / "orphan.log"
    log.write_text("")
    source = system.add_log("poll-orphan", log)
    # No other stream is being polled, so no other process's reaper is running: a reaper
    # ends one second after it finds no deadline left.
    assert system.wait_for(lambda: not system.redis.zcard("tailboard:poll:deadlines"), 10)
    time.sleep(2.5)
    web = system.start_daphne("web-orphan")
    try:
        client = poller(base=web.base_url)
        client.start(f"/streams/tailf/{source}/")
        task_id = client.status("queued")["task_id"]
        client.status("running")
    finally:
        web.kill()  # the only reaper that knows this stream goes with it
        web.wait()
    went = time.monotonic()  # lease 3 s + 2 s of grace past the last poll
    ended = system.wait_for(lambda: system.task_end(task_id), 15)
    assert ended and ended.endswith(" lease_lapsed: viewer gone"), ended
    assert time.monotonic() - went < 5 + 4
    system.manage("streams")  # listing closes records whose lease lapsed
    assert stream_record(system, task_id) == ("lease_lapsed", True)


def test_a_token_is_bound_to_its_session(system, poller, tmp_path):
    log = tmp_path / "bound.log"
    log.write_text("")
    source = system.add_log("poll-bound", log)
    owner = poller()
    owner.start(f"/streams/tailf/{source}/")
    owner.status("running")
    other_admin = poller(system.login(system.web.base_url, "admin", system.admin_password))
    password = system.create_user("poll-stranger")
    stranger = poller(system.login(system.web.base_url, "poll-stranger", password))
    anonymous = poller(cookie=False)
    for client in (other_admin, stranger):
        assert client.poll_raw(0, token=owner.token).status_code == 404
        assert client.send({"action": "stop"}, token=owner.token).status_code == 404
    assert anonymous.poll_raw(0, token=owner.token).status_code == 401
    forged = owner.token[:-1] + ("B" if owner.token.endswith("A") else "A")  # another token
    assert owner.poll_raw(0, token=forged).status_code == 404
    assert not any(m["type"] == "status" and m["state"] == "stopped"
                   for m in owner.poll_raw(0).json()["messages"])
    owner.send({"action": "stop"})


def test_refusals_carry_the_websocket_codes(system, poller, tmp_path):
    log = tmp_path / "refused.log"
    log.write_text("")
    source = system.add_log("poll-refused", log)
    admin = poller()
    cases = [(f"/streams/tailf/{source}/?lines=many", 400, 4400),
             ("/streams/tailf/999999/", 404, 4404),
             ("/streams/nosuchkind/1/", 404, 4404)]
    for path, status, code in cases:
        response = admin.start(path)
        assert response.status_code == status, (path, response.text)
        assert response.json()["code"] == code and response.json()["message"]
    password = system.create_user("poll-outsider")
    outsider = poller(system.login(system.web.base_url, "poll-outsider", password))
    response = outsider.start(f"/streams/tailf/{source}/")
    assert (response.status_code, response.json()["code"]) == (403, 4403)
    anonymous = poller(cookie=False)
    response = anonymous.start(f"/streams/tailf/{source}/")
    assert (response.status_code, response.json()["code"]) == (401, 4401)
    no_csrf = admin.http.post(f"/streams/tailf/{source}/")
    assert no_csrf.status_code == 403 and "stream" not in no_csrf.text


def test_the_stream_limit_holds_across_transports(system, poller, tmp_path):
    log = tmp_path / "limit.log"
    log.write_text("")
    source = system.add_log("poll-limit", log)
    web = system.start_daphne("web-limit-1", STREAM_MAX_PER_USER="1")
    try:
        client = poller(base=web.base_url)
        assert client.start(f"/streams/tailf/{source}/").status_code == 201
        second = poller(base=web.base_url)
        response = second.start(f"/streams/tailf/{source}/")
        assert (response.status_code, response.json()["code"]) == (429, 4429)
        assert "too many streams" in response.json()["message"]
        client.send({"action": "stop"})
    finally:
        system.stop(web)


@pytest.fixture(scope="module")
def small_window(tmp_path_factory):
    """An installation with a tiny window and buffer, so a slow viewer overflows quickly."""
    with started_installation(tmp_path_factory.mktemp("pollflow"), workers=[{"concurrency": 2}],
                              STREAM_WINDOW_FRAMES=2, STREAM_BUFFER_LINES=500,
                              STREAM_MAX_LAG_BYTES=65536,
                              STREAM_SEND_BUFFER_BYTES=65536) as harness:
        yield harness


def test_a_slow_poller_gets_dropped_counts_and_bounded_memory(small_window, tmp_path):
    system = small_window
    log = tmp_path / "slow.log"
    log.write_text("")
    source = system.add_log("poll-slow", log)
    client = PollClient(system.web.base_url, system.admin_cookie)
    client.start(f"/streams/tailf/{source}/?lines=0")
    client.status("running")
    total = 200_000
    append(log, *(f"flood {n:06d} " + "x" * 90 for n in range(total)))
    # The viewer does not poll until the server holds frames for it: from then on it is
    # behind by whatever of the 20 MB the worker has not sent.
    held_key = f"tailboard:poll:{client.token}"
    assert system.wait_for(lambda: int(system.redis.hget(held_key, "bytes") or 0) > 0, 15), \
        "the server held nothing for the viewer"
    peak = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        client.poll()
        held = system.redis.hget(f"tailboard:poll:{client.token}", "bytes")
        peak = max(peak, int(held or 0))
        if any(m["type"] == "dropped" for m in client.messages) and client.lines()[-1:] == [
                f"flood {total - 1:06d} " + "x" * 90]:
            break
        time.sleep(0.5)  # the viewer is slow
    dropped = sum(m["count"] for m in client.messages if m["type"] == "dropped")
    assert dropped > 0
    assert len(client.lines()) + dropped == total
    # What waits in Redis: at most STREAM_SEND_BUFFER_BYTES and the window (2 frames) over it.
    assert 0 < peak <= 65536 + 2 * 1024 * 1024
    numbers = [int(line.split()[1]) for line in client.lines()]
    assert numbers == sorted(numbers)
    client.send({"action": "stop"})
    client.close()


def test_an_admin_stop_reaches_a_polled_stream(system, poller, tmp_path):
    log = tmp_path / "admin.log"
    log.write_text("")
    source = system.add_log("poll-admin", log)
    client = poller()
    client.start(f"/streams/tailf/{source}/")
    queued = client.status("queued")
    client.status("running")
    # The viewer keeps polling while the admin's command runs (it may take longer than the
    # 3 s lease on a loaded box, and a viewer that stopped polling would be gone by then).
    with ThreadPoolExecutor(1) as pool:
        command = pool.submit(system.manage, "streams", "stop", str(queued["stream"]))
        stopped = client.status("stopped")
        command.result()
    assert stopped["message"] == "stopped by an administrator"
    assert client.closed == {"code": 1000}
    assert system.wait_for(lambda: system.task_end(queued["task_id"]), 3)


def test_an_oversized_client_message_ends_the_stream_with_4400(system, poller, tmp_path):
    log = tmp_path / "big.log"
    log.write_text("")
    source = system.add_log("poll-big", log)
    client = poller()
    client.start(f"/streams/tailf/{source}/")
    client.status("running")
    response = client.send({"action": "ack", "pad": "x" * 5000})
    assert response.json() == {"closed": {"code": 4400}}
    error = client.status("error")
    assert error["code"] == 4400
    assert json.dumps(client.closed) == '{"code": 4400}'


def test_behind_nginx_without_upgrade_headers_websockets_fail_and_polling_works(
        system, nginx, tmp_path):
    import asyncio

    from tests.integration.conftest import open_stream
    from tests.polling import without_upgrade

    log = tmp_path / "nginx-b.log"
    log.write_text("")
    source = system.add_log("poll-nginx-b", log)
    proxy = nginx([system.web.base_url], edit=without_upgrade)

    async def try_websocket():
        async with open_stream(system, f"/ws/tailf/{source}/", web=proxy):
            pass

    with pytest.raises(Exception):  # noqa: B017 - the handshake fails however websockets says it
        asyncio.run(try_websocket())
    client = PollClient(proxy.url, system.admin_cookie)
    try:
        assert client.start(f"/streams/tailf/{source}/").status_code == 201
        client.status("running")
        append(log, "through the proxy")
        client.until(lambda m: m["type"] == "lines" and "through the proxy" in m["lines"])
        assert client.send({"action": "stop"}).json() == {"closed": {"code": 1000}}
        client.status("stopped")
    finally:
        client.close()


def test_behind_nginx_with_proxy_buffering_every_message_arrives_within_its_poll(
        system, nginx, tmp_path):
    from tests.polling import buffering

    log = tmp_path / "nginx-c.log"
    log.write_text("")
    source = system.add_log("poll-nginx-c", log)
    proxy = nginx([system.web.base_url], edit=buffering)
    client = PollClient(proxy.url, system.admin_cookie)
    try:
        client.start(f"/streams/tailf/{source}/")
        client.status("running")
        for n in range(3):  # each poll waits on the server; a line arrives meanwhile
            with ThreadPoolExecutor(1) as pool:
                pending = pool.submit(client.poll)
                time.sleep(1)  # the scenario: with nothing to send, the poll is still open 1 s on
                assert not pending.done()
                began = time.monotonic()
                append(log, f"buffered {n}")
                body = pending.result(timeout=20)
            assert time.monotonic() - began < 2, "a buffering proxy held the answer back"
            assert [line for m in body["messages"] for line in m.get("lines", [])] == [
                f"buffered {n}"]
        client.send({"action": "stop"})
    finally:
        client.close()


def test_a_second_poll_of_a_stream_takes_over_from_the_first(system, poller, tmp_path):
    log = tmp_path / "takeover.log"
    log.write_text("")
    source = system.add_log("poll-takeover", log)
    client = poller()
    client.start(f"/streams/tailf/{source}/")
    client.status("running")
    after = client.after
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(client.poll_raw, after)  # its answer will be "lost"
        time.sleep(1)  # the scenario: the first poll has waited a while when the second comes
        second = pool.submit(client.poll_raw, after)  # the client asks again
        began = time.monotonic()
        assert first.result(timeout=10).json()["messages"] == []
        assert time.monotonic() - began < 3  # the first gave way within a slice
        append(log, "after the takeover")
        body = second.result(timeout=20).json()
    assert [line for m in body["messages"] for line in m.get("lines", [])] == [
        "after the takeover"]
    client.after = body["next"]
    append(log, "and then")
    client.until(lambda m: m["type"] == "lines" and "and then" in m["lines"])
    assert client.lines() == ["and then"]
    client.send({"action": "stop"})
