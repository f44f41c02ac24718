"""Container streams end to end: podman + runc writing CRI logs (conmon), a real prefork
worker, Redis and Daphne. Two pods, stderr kept apart, a restart, a rotation, a pod going away,
history search, and a reconnect that neither loses nor repeats a line."""

import os
import re
import shutil

import pytest

pytestmark = pytest.mark.sqlite_only  # engine tests: see tests/integration/conftest.py

LOOP = ("i=0; while [ $i -lt {n} ]; do i=$((i+1)); echo {name} $i; "
        "if [ $((i % 5)) -eq 0 ]; then echo {name} err $i >&2; fi; sleep {pause}; done; sleep 60")


def add_container(system, name, *args):
    """Add a container source with the `sources` CLI; return its id."""
    return system.add_container(name, *args)


async def read(client, predicate, timeout=20):
    """Read messages (acknowledging lines frames) until predicate(all read) holds."""
    start = len(client.messages)

    def done(message):
        return predicate(client.messages[start:])

    while True:
        message = await client.until(lambda m: True, timeout)
        if message["type"] in ("lines", "matches"):
            await client.send({"action": "ack", "seq": message["seq"]})
        if done(message):
            return client.messages[start:]


def lines_of(messages, container=None):
    """[(file, stream, message)] of the lines frames (the runtime timestamp left off)."""
    return [(m["file"], m["stream"], line.split(" ", 1)[1]) for m in messages
            if m["type"] == "lines" and (container is None or m["file"] == container)
            for line in m["lines"]]


def notices_of(messages):
    return [m["message"] for m in messages if m["type"] == "notice"]


def numbers(entries, name):
    return [int(text.split()[-1]) for _, stream, text in entries
            if stream == "stdout" and re.fullmatch(rf"{name} \d+", text)]


async def test_two_pods_restart_rotation_stderr_and_a_pod_gone(system, stream, tmp_path,
                                                                podman):
    pods = tmp_path / "pods"
    web = podman.run(str(pods / "shop_web-1_u1/app/0.log"),
                     LOOP.format(n=100000, name="web", pause=0.02), detach=True)
    podman.run(str(pods / "shop_db-1_u2/pg/0.log"), "echo db ready; echo db warn >&2")
    source = add_container(system, "shop", "--pods-dir", str(pods), "--namespace", "shop",
                           "--pod", "*", "--queue", "tailf")
    async with stream(f"/ws/container/{source}/?lines=500") as client:
        seen = await read(client, lambda ms: any(m.get("state") == "running" for m in ms))
        assert ("shop/db-1/pg", "stdout", "db ready") in lines_of(seen)
        assert ("shop/db-1/pg", "stderr", "db warn") in lines_of(seen)
        seen += await read(client, lambda ms: len(numbers(lines_of(ms), "web")) >= 20)
        assert any(m["type"] == "lines" and m["stream"] == "stderr" and
                   m["file"] == "shop/web-1/app" for m in seen)
        podman.run(str(pods / "shop_db-1_u2/pg/1.log"), "echo db again")
        seen += await read(client, lambda ms: ("shop/db-1/pg", "stdout", "db again")
                           in lines_of(ms))
        assert "container shop/db-1/pg restarted (restart 1); following its new log" \
            in notices_of(seen)
        live = pods / "shop_web-1_u1/app/0.log"
        os.rename(live, f"{live}.20261206-151500")
        podman.kill(web)
        podman.run(str(live), "echo web after rotation")
        seen += await read(client, lambda ms: ("shop/web-1/app", "stdout", "web after rotation")
                           in lines_of(ms))
        sent = numbers(lines_of(seen), "web")
        assert sent == list(range(sent[0], sent[-1] + 1)), "a web line lost or repeated"
        with open(f"{live}.20261206-151500") as rotated:
            written = [line.split(" ", 3)[3].rstrip("\n") for line in rotated]
        assert numbers([("", "stdout", text) for text in written], "web")[-1] == sent[-1]
        shutil.rmtree(pods / "shop_db-1_u2")
        seen += await read(client, lambda ms: any("shop/db-1/pg is gone" in text
                                                  for text in notices_of(ms)))


async def test_history_search_through_rotated_files_shows_messages(system, stream, tmp_path,
                                                                    podman):
    pods = tmp_path / "pods"
    live = pods / "ns_api-1_u1/api/0.log"
    podman.run(str(live), "echo request 1 ok; echo request 2 failed >&2")
    os.rename(live, f"{live}.20261206-100000")
    podman.run(str(live), "echo request 3 failed; echo request 4 ok")
    source = add_container(system, "api", "--pods-dir", str(pods), "--namespace", "ns",
                           "--pod", "api-*")
    async with stream(f"/ws/container/{source}/?search=%5Erequest+%5Cd+failed%24&rotated=1"
                      ) as client:
        seen = await read(client, lambda ms: any(m.get("state") == "stopped" for m in ms))
    found = [(os.path.basename(m["file"]), item["line_no"], item["line"].split(" ", 1)[1])
             for m in seen if m["type"] == "matches" for item in m["matches"]]
    assert found == [("0.log.20261206-100000", 2, "request 2 failed"),
                     ("0.log", 1, "request 3 failed")]
    assert all(re.match(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00 ", item["line"])
               for m in seen if m["type"] == "matches" for item in m["matches"])


def unseen(held, fresh, window=20):
    """What the dashboard does on a reconnect (logview.js unseenLines), per container."""
    if not held:
        return fresh, False
    for j in range(len(fresh) - 1, -1, -1):
        depth = min(window, j + 1, len(held))
        if fresh[j - depth + 1:j + 1] == held[-depth:]:
            return fresh[j + 1:], False
    return fresh, bool(fresh)


async def test_a_reconnect_resumes_each_container_without_loss_or_repeat(system, stream,
                                                                         tmp_path, podman):
    pods = tmp_path / "pods"
    for pod in ("a", "b"):
        podman.run(str(pods / f"ns_{pod}_u{pod}/main/0.log"),
                   LOOP.format(n=100000, name=pod, pause=0.01), detach=True)
    source = add_container(system, "resume", "--pods-dir", str(pods), "--namespace", "ns",
                           "--pod", "*")
    held = {}  # the dashboard matches each container's stdout and stderr on their own
    async with stream(f"/ws/container/{source}/?lines=0") as client:
        seen = await read(client, lambda ms: all(len(numbers(lines_of(ms, f"ns/{p}/main"), p))
                                                 >= 30 for p in "ab"))
        for m in seen:
            if m["type"] == "lines":
                held.setdefault((m["file"], m["stream"]), []).extend(m["lines"])
    import asyncio

    await asyncio.sleep(1.5)  # lines written while no viewer is connected
    async with stream(f"/ws/container/{source}/?lines=1000") as client:
        seen = await read(client, lambda ms: any(m.get("state") == "running" for m in ms))
        seen += await read(client, lambda ms: all(
            len(numbers(lines_of(ms, f"ns/{p}/main"), p)) >= 10 for p in "ab"))
    for pod, output in [(pod, output) for pod in "ab" for output in ("stdout", "stderr")]:
        key = (f"ns/{pod}/main", output)
        backlog = [line for m in seen if m["type"] == "lines" and (m["file"], m["stream"]) == key
                   for line in m["lines"]]
        fresh, gap = unseen(held[key][-50:], backlog)
        assert not gap, key
        everything = held[key] + fresh
        got = [int(line.split()[-1]) for line in everything]
        step = 1 if output == "stdout" else 5
        assert got == list(range(got[0], got[-1] + 1, step)), f"{key}: lost or repeated lines"
        assert len(set(everything)) == len(everything)
