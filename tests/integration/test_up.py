"""`manage.py up` on the real stack: it serves, and INT/TERM/HUP stop every child in order,
cleanly (exit 0, no traceback, no process left), even with streams open and INT ignored."""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.harness import ROOT
from webapp import embedded

pytestmark = pytest.mark.sqlite_only  # engine tests: see tests/integration/conftest.py

STOP_ORDER = ["demo", "web", "beat", "alerts", "worker", "redis"]


def group_members(pgid):
    """Return the pids of live (non-zombie) processes in this process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


class Up:
    """One `manage.py up` run in a temp folder, with its output collected to a file."""

    def __init__(self, tmp_path, *args, ignore_int=False):
        self.port = embedded.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.output_path = tmp_path / "up.out"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "webapp.settings",
            "TAILBOARD_ENV": "development",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "STATIC_ROOT": str(tmp_path / "static"),
            "REDIS_URL": f"redis://127.0.0.1:{embedded.free_port()}/0",
            "LOG_ROOTS": str(tmp_path / "var" / "demo"),
            "WORKER_CONCURRENCY": "2",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("PORT", None)

        def prepare():
            os.setsid()
            if ignore_int:
                signal.signal(signal.SIGINT, signal.SIG_IGN)

        with open(self.output_path, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "up", "--port", str(self.port),
                 "--feed-port", str(embedded.free_port()), "--var-dir", str(tmp_path / "var"),
                 *args],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=prepare)

    def output(self):
        """Everything `up` and its children printed so far."""
        return self.output_path.read_text(errors="replace")

    def wait_until_serving(self, timeout=120):
        """Wait until the login page answers and `up` said it is up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"up exited early:\n{self.output()}"
            if "Tailboard is up" in self.output():
                try:
                    if httpx.get(self.base + "/accounts/login/", timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.3)
        raise AssertionError(f"up did not serve in {timeout} s:\n{self.output()}")

    def pids(self):
        """The pid of each child, as `up` printed it."""
        return {name: int(pid) for name, pid in
                re.findall(r"^started (\w+) \(pid (\d+)\)", self.output(), re.MULTILINE)}

    def stop_and_check(self, signum, to_group=False, timeout=60):
        """Send the signal, then prove a clean, ordered, complete stop; return the output."""
        pids = self.pids()
        assert set(pids) >= {"web", "worker", "alerts", "beat"}, self.output()
        started = time.monotonic()
        if to_group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        code = self.process.wait(timeout)
        output = self.output()
        assert code == 0, output
        assert time.monotonic() - started < timeout
        assert "Traceback" not in output
        assert "could not withdraw worker" not in output
        assert f"{signal.Signals(signum).name} received" in output
        stopped = re.findall(r"^stopped (\w+) \(pid \d+\)", output, re.MULTILINE)
        assert stopped == [name for name in STOP_ORDER if name in pids], output
        for name, pid in pids.items():
            assert not Path(f"/proc/{pid}").exists() or group_members(pid) == [], (name, pid)
            assert group_members(pid) == [], f"{name}'s process group {pid} outlived up"
        assert group_members(self.process.pid) == []
        return output

    def kill(self):
        """Last resort after a failed test: kill up and every group it printed."""
        for pid in [self.process.pid, *self.pids().values()]:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.process.wait(10)


@pytest.fixture
def up(tmp_path):
    """Factory: start `manage.py up ARGS`; whatever is left is killed afterwards."""
    runs = []

    def start(*args, **kwargs):
        run = Up(tmp_path, *args, **kwargs)
        runs.append(run)
        run.wait_until_serving()
        return run

    yield start
    for run in runs:
        if run.process.poll() is None or any(group_members(p) for p in run.pids().values()):
            run.kill()


def demo_cookie(run):
    """Log in as the printed demo user; return the session cookie header."""
    password = re.search(r"password '([^']+)'", run.output()).group(1)
    with httpx.Client(base_url=run.base, timeout=10) as client:
        client.get("/accounts/login/")
        client.post("/accounts/login/", data={
            "username": "demo", "password": password,
            "csrfmiddlewaretoken": client.cookies["csrftoken"]},
            headers={"Referer": run.base + "/accounts/login/"})
        return f"sessionid={client.cookies['sessionid']}"


async def watch_demo_log(run):
    """Log in as the printed demo user, open the demo log stream, wait for lines; return it."""
    cookie = demo_cookie(run)
    socket = await connect(f"ws://127.0.0.1:{run.port}/ws/tailf/1/?lines=5",
                           additional_headers={"Origin": run.base, "Cookie": cookie})
    deadline = time.monotonic() + 30
    kinds = set()
    while "lines" not in kinds:
        message = json.loads(await asyncio.wait_for(socket.recv(),
                                                    deadline - time.monotonic()))
        kinds.add(message["type"])
    return socket


def stop_with_stream_open(run, signum, to_group=False):
    """Open a demo log stream, then stop `up` with the signal while it streams."""

    async def scenario():
        socket = await watch_demo_log(run)
        try:
            return await asyncio.to_thread(run.stop_and_check, signum, to_group)
        finally:
            await socket.close()

    return asyncio.run(scenario())


def test_no_demo_run_tells_how_to_create_a_login_and_stops_on_ctrl_c(up):
    """--no-demo prints the createsuperuser hint; Ctrl-C (INT to the group) stops it all."""
    run = up("--no-demo")
    assert ".venv/bin/python manage.py createsuperuser" in run.output()
    assert "password" not in run.output()
    assert "demo" not in run.pids()
    run.stop_and_check(signal.SIGINT, to_group=True)


@pytest.mark.parametrize("signum,to_group", [
    (signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGHUP, False)],
    ids=["ctrl-c", "term", "hup"])
def test_demo_run_with_a_stream_open_stops_cleanly_in_order(up, signum, to_group):
    """With a log stream open, each stop signal stops demo, web, beat, alerts, worker, Redis;
    exit 0."""
    run = up()
    stop_with_stream_open(run, signum, to_group)


def test_the_demo_feed_on_loopback_is_allowed_explicitly_and_delivers_entries(up):
    """Feeds reach internal addresses only through FEED_INTERNAL_ALLOW: `up` gives its worker
    the demo feed's 127.0.0.1 (and says so), and the demo feed's entries arrive."""
    run = up()
    assert "demo feed: the worker's FEED_INTERNAL_ALLOW is 127.0.0.1" in run.output()

    async def first_entries():
        cookie = demo_cookie(run)
        async with connect(f"ws://127.0.0.1:{run.port}/ws/feeds/1/?entries=3",
                           additional_headers={"Origin": run.base, "Cookie": cookie}) as socket:
            deadline = time.monotonic() + 40
            while True:
                message = json.loads(await asyncio.wait_for(socket.recv(),
                                                            deadline - time.monotonic()))
                assert message["type"] != "notice" or "internal" not in message["message"]
                if message["type"] == "entries" and message["entries"]:
                    return message["entries"]

    entries = asyncio.run(first_entries())
    assert [entry["title"] for entry in entries][-1].startswith("Deploy #")
    run.stop_and_check(signal.SIGTERM)


def test_up_prints_the_log_roots_a_plain_shell_needs_to_agree_with_it(up, tmp_path):
    """`sources add-log` in another shell, with the line `up` prints, accepts the demo folder
    that `up` reads (without it, LOG_ROOTS would default to /var/log and refuse it)."""
    run = up("--no-demo")
    roots = re.search(r"export LOG_ROOTS=(\S+)", run.output())
    assert roots, run.output()
    assert roots.group(1) == str(tmp_path / "var" / "demo")
    env = {key: value for key, value in os.environ.items() if key != "LOG_ROOTS"}
    env.update(DJANGO_SETTINGS_MODULE="webapp.settings", TAILBOARD_ENV="development",
               DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", LOG_ROOTS=roots.group(1))
    added = subprocess.run([sys.executable, "manage.py", "sources", "add-log", "second-demo",
                            str(tmp_path / "var" / "demo" / "second.log")],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    run.stop_and_check(signal.SIGINT, to_group=True)


def test_ctrl_c_stops_a_run_started_with_int_ignored(up):
    """Started like `nohup`/`cmd &` with SIGINT ignored, INT still stops everything."""
    run = up(ignore_int=True)
    stop_with_stream_open(run, signal.SIGINT)


def test_other_host_warns_about_production_and_still_serves(up):
    """--host 0.0.0.0 listens everywhere and points at docs/deploy.md."""
    run = up("--no-demo", "--host", "0.0.0.0")
    assert "docs/deploy.md" in run.output()
    assert "listening on 0.0.0.0" in run.output()
    run.stop_and_check(signal.SIGTERM)


def test_stop_signal_during_startup_still_stops_what_was_started(tmp_path):
    """TERM while `up` is still starting children: exit 0, every started child gone."""
    run = Up(tmp_path, "--no-demo")
    try:
        deadline = time.monotonic() + 120
        while "started worker" not in run.output():
            assert time.monotonic() < deadline and run.process.poll() is None, run.output()
            time.sleep(0.05)
        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(60) == 0, run.output()
        assert "Traceback" not in run.output()
        for name, pid in run.pids().items():
            assert group_members(pid) == [], f"{name} outlived up"
    finally:
        if run.process.poll() is None:
            run.kill()


def test_a_child_that_cannot_start_stops_the_others_and_fails(tmp_path):
    """Web cannot bind its port: `up` says so, stops the rest in order, exits non-zero."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = Up(tmp_path, "--no-demo", "--port", str(port))  # the last --port wins
        try:
            code = run.process.wait(120)
        finally:
            if run.process.poll() is None:
                run.kill()
    output = run.output()
    assert code != 0
    assert "web exited with code" in output
    assert re.findall(r"^stopped (\w+) ", output, re.MULTILINE) == ["web", "beat", "alerts",
                                                                     "worker", "redis"]
    for name, pid in run.pids().items():
        assert group_members(pid) == [], f"{name} outlived up"
