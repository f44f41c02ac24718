"""Two Daphne processes behind nginx's round robin: long polls of one stream land on either
process and lose nothing; killing one Daphne ends only the WebSocket streams it served (their
tasks end with their leases) while long-poll streams go on through the other."""

import asyncio
import signal
import threading
import time

from tests.integration.conftest import Client, open_stream
from tests.polling import PollClient


def append(path, *lines):
    """Append whole lines to a file."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


def poll_upstreams(proxy):
    """The Daphne addresses nginx sent long polls to."""
    return {line.rsplit("upstream=", 1)[1] for line in proxy.access_log()
            if "/streams/poll/" in line and "upstream=" in line}


def test_long_polls_land_on_both_daphnes_and_survive_one_dying(system, nginx, tmp_path):
    log = tmp_path / "two.log"
    log.write_text("")
    source = system.add_log("two-daphnes", log)
    other = system.start_daphne("web-other")
    proxy = nginx([system.web.base_url, other.base_url])
    client = PollClient(proxy.url, system.admin_cookie)
    try:
        assert client.start(f"/streams/tailf/{source}/").status_code == 201
        task_id = client.status("queued")["task_id"]
        client.status("running")
        for n in range(8):
            append(log, f"line {n}")
            client.until(lambda m, n=n: m["type"] == "lines" and f"line {n}" in m["lines"])
        assert len(poll_upstreams(proxy)) == 2, proxy.access_log()[-10:]
        assert client.lines() == [f"line {n}" for n in range(8)]

        async def websocket_on_the_other():
            async with open_stream(system, f"/ws/tailf/{source}/", web=other) as socket:
                ws = Client(socket)
                ws_task = (await ws.status("queued"))["task_id"]
                await ws.status("running")
                system.stop(other, signal.SIGKILL)
                try:
                    await ws.until(lambda m: False, timeout=10)
                except Exception:
                    pass
                return ws_task

        stop_polling = threading.Event()

        def keep_polling():  # the viewer goes on polling meanwhile, through nginx
            while not stop_polling.is_set() and not client.closed:
                client.poll()

        poller = threading.Thread(target=keep_polling)
        poller.start()
        try:
            ws_task = asyncio.run(websocket_on_the_other())
            ended = system.wait_for(lambda: system.task_end(ws_task), 15)
            assert ended, "the task of the dead Daphne's WebSocket kept running"
            append(log, "after the kill")
            assert system.wait_for(lambda: "after the kill" in client.lines(), 10)
        finally:
            stop_polling.set()
            poller.join(30)
        assert client.lines() == [f"line {n}" for n in range(8)] + ["after the kill"]
        assert task_id in system.active_task_ids(system.worker)
        assert system.task_end(task_id) is None
        began = time.monotonic()
        assert client.send({"action": "stop"}).json() == {"closed": {"code": 1000}}
        client.status("stopped")
        assert system.wait_for(lambda: system.task_end(task_id), 3)
        assert time.monotonic() - began < 5
    finally:
        client.close()
        system.stop(other)
