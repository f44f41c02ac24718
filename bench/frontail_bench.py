"""Tailboard side by side with frontail 4.9.2 on the same file, in the same run.

Run: .venv/bin/python bench/frontail_bench.py [--quick] [--cache DIR]
Installs frontail 4.9.2 as bench/frontail/package-lock.json pins it (with `npm ci`, once per
lock) into a cache folder, starts it and the real Tailboard stack (Redis, a prefork worker,
Daphne: `tests/harness.py`) on free 127.0.0.1 ports, both following one log file, and
measures:

- latency: stamped lines appended at 100 lines/s, each line's append → frame time taken
  where it arrives (p50/p99/max), twice: with both viewers connected at once (each system
  also works on the other's lines, so they slow each other down), and each system alone, in
  alternating blocks (Tailboard's viewer closed while frontail is measured; frontail's
  processes stopped with SIGSTOP while Tailboard is measured);
- throughput: lines appended as fast as a writer process can (`--repeat` runs each, median
  printed), each system measured alone (frontail first, then frontail is stopped and
  Tailboard measured, on the same file): lines delivered per second from the first line's
  own time stamp to the last arrival, and lines lost (delivered short of what was written
  once the stream went quiet for 5 s).

frontail speaks socket.io 2 (Engine.IO v3): the client here opens the raw WebSocket
`/socket.io/?EIO=3&transport=websocket`, joins the namespace frontail names after the md5
of its file list, and reads `42/<ns>,["line","..."]` packets — the same packets its web
page receives. Prints both side by side and writes bench/results/frontail.json.
"""

import argparse
import asyncio
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import close_run, summary_ms, write_results  # noqa: E402
from tail_bench import open_viewer, paced_writer, start_writer  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from tests.harness import Harness  # noqa: E402
from webapp import embedded  # noqa: E402

PINNED = Path(__file__).resolve().parent / "frontail"  # package.json + package-lock.json
QUIET_SECONDS = 5


def install_frontail(cache):
    """Install frontail and its dependencies as bench/frontail/package-lock.json pins them
    into `cache` with `npm ci` (again only when the lock changes); return its CLI script."""
    cache = Path(cache)
    cli = cache / "node_modules" / "frontail" / "bin" / "frontail"
    lock = (PINNED / "package-lock.json").read_bytes()
    installed = cache / "package-lock.json"
    if not cli.exists() or not installed.exists() or installed.read_bytes() != lock:
        cache.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(PINNED / name, cache / name)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=cache,
                       check=True, stdout=subprocess.DEVNULL)
    return cli


def start_frontail(cli, path, workdir):
    """Start frontail on `path` on a free port; return (process, port) once it serves."""
    port = embedded.free_port()
    log = open(workdir / "frontail.log", "ab")
    process = subprocess.Popen(["node", str(cli), "--host", "127.0.0.1", "--port", str(port),
                                "--number", "0", "--disable-usage-stats", str(path)],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    import socket
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("frontail did not start")


def stop_frontail(process):
    """Stop frontail and its `tail` child."""
    os.killpg(process.pid, 15)
    process.wait(10)


class FrontailViewer:
    """A raw Engine.IO v3 / socket.io 2 client of frontail's line feed."""

    def __init__(self, port, path):
        self.url = f"ws://127.0.0.1:{port}/socket.io/?EIO=3&transport=websocket"
        self.namespace = "/" + hashlib.md5(str(path).encode()).hexdigest()
        self.prefix = f'42{self.namespace},["line",'
        self.delivered = 0
        self.last_at = None  # wall-clock time the last line arrived
        self.on_lines = None
        self.joined = asyncio.Event()

    async def run(self, stop):
        """Read line events until `stop` is set."""
        async with connect(self.url, max_size=2 ** 24) as socket:
            opened = json.loads((await socket.recv())[1:])
            await socket.send(f"40{self.namespace},")
            ping_every = opened.get("pingInterval", 25000) / 1000
            next_ping = time.monotonic() + ping_every
            while not stop.is_set():
                if time.monotonic() >= next_ping:
                    await socket.send("2")
                    next_ping = time.monotonic() + ping_every
                try:
                    raw = await asyncio.wait_for(socket.recv(), 0.5)
                except asyncio.TimeoutError:
                    continue
                received = time.time()
                if raw.startswith(f"40{self.namespace}"):
                    self.joined.set()
                elif raw.startswith(self.prefix):
                    self.delivered += 1
                    self.last_at = received
                    if self.on_lines:
                        line = json.loads(raw[len(self.namespace) + 3:])[1]
                        self.on_lines([line], received)


def collect(bucket):
    """An `on_lines` callback adding each paced line's append → arrival time to `bucket`."""
    def on_lines(lines, at):
        bucket.extend(at - float(line.split()[0]) for line in lines if " paced " in line)
    return on_lines


async def latency_alone(harness, source, cookie, frontail, theirs, log, rounds, seconds):
    """Each system's latency with the other idle, in alternating blocks; {name: [seconds]}.

    Tailboard's blocks open a fresh viewer while frontail's processes are stopped
    (SIGSTOP); frontail's blocks start once it has caught up on the lines it missed, with
    no Tailboard stream open.
    """
    found = {"tailboard": [], "frontail": []}
    for _ in range(rounds):
        os.killpg(frontail.pid, signal.SIGSTOP)
        try:
            ours, stop, task = await open_viewer(harness, source, cookie)
            await asyncio.sleep(0.5)
            ours.on_lines = collect(found["tailboard"])
            await asyncio.to_thread(paced_writer(log, 100, seconds, threading.Event()).join)
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(task, return_exceptions=True)
        finally:
            os.killpg(frontail.pid, signal.SIGCONT)
        await wait_quiet(theirs, float("inf"), 30, quiet=1)
        theirs.on_lines = collect(found["frontail"])
        await asyncio.to_thread(paced_writer(log, 100, seconds, threading.Event()).join)
        await asyncio.sleep(0.5)
        theirs.on_lines = None
    return found


async def wait_quiet(viewer, target, limit, quiet=QUIET_SECONDS):
    """Wait until `target` lines arrived or none arrived for `quiet` seconds."""
    start = last_at = time.monotonic()
    last = viewer.delivered
    while viewer.delivered < target and time.monotonic() - start < limit:
        await asyncio.sleep(0.05)
        if viewer.delivered != last:
            last, last_at = viewer.delivered, time.monotonic()
        elif time.monotonic() - last_at > quiet:
            break


async def throughput(viewer, log, total):
    """Append `total` lines as fast as possible; return delivered lines/s and losses.

    The rate is taken from the first line's own time stamp (the writer stamps each line as
    it formats it) to the arrival of the last line, both wall-clock: neither the writer
    process's start nor the 50 ms polling below is counted.
    """
    before = viewer.delivered
    offset = log.stat().st_size
    writer = start_writer(log, total)
    start = time.monotonic()
    await wait_quiet(_Offset(viewer, before), total, 600)
    await asyncio.to_thread(writer.wait)
    with open(log, "rb") as handle:
        handle.seek(offset)
        first_stamp = float(handle.readline().split()[1])
    delivered = viewer.delivered - before
    dropped = getattr(viewer, "dropped", 0)
    elapsed = (viewer.last_at or first_stamp) - first_stamp
    return {"lines": total, "delivered": delivered, "dropped_reported": dropped,
            "lost": total - delivered - dropped, "seconds": round(elapsed, 3),
            "delivered_lines_per_s": round(delivered / max(elapsed, 1e-6)),
            "wall_seconds": round(time.monotonic() - start, 2)}


async def repeated_throughput(viewer, log, total, times):
    """Measure throughput `times` times; the figures of the median run, plus all runs'
    rates and the losses of all runs together."""
    runs = [await throughput(viewer, log, total) for _ in range(times)]
    middle = sorted(runs, key=lambda run: run["delivered_lines_per_s"])[len(runs) // 2]
    return {**middle, "runs_lines_per_s": [run["delivered_lines_per_s"] for run in runs],
            "lost": sum(run["lost"] for run in runs),
            "delivered": sum(run["delivered"] for run in runs),
            "lines": total * times}


class _Offset:
    """A view of a viewer's delivered count from a starting point."""

    def __init__(self, viewer, base):
        self.viewer, self.base = viewer, base

    @property
    def delivered(self):
        return self.viewer.delivered - self.base


async def main(args):
    """Run both systems on one file and print the comparison."""
    workdir = Path(tempfile.mkdtemp(prefix="tailboard-frontail-"))
    cli = install_frontail(Path(args.cache))
    log = workdir / "shared.log"
    log.write_text("")
    harness = Harness(workdir, STREAM_MAX_PER_USER=10)
    frontail = None
    try:
        password = harness.create_user("bench", superuser=True)
        source = harness.add_log("shared", log)
        harness.worker = harness.start_worker(concurrency=2)
        harness.web = harness.start_daphne()
        cookie = harness.login(harness.web.base_url, "bench", password)
        frontail, port = start_frontail(cli, log, workdir)
        load_before = os.getloadavg()

        stop = asyncio.Event()
        theirs = FrontailViewer(port, log)
        theirs_task = asyncio.ensure_future(theirs.run(stop))
        ours, ours_stop, ours_task = await open_viewer(harness, source, cookie)
        await asyncio.wait_for(theirs.joined.wait(), 30)
        await asyncio.sleep(1)

        seconds = 5 if args.quick else 30
        latencies = {"tailboard": [], "frontail": []}
        for name, viewer in (("tailboard", ours), ("frontail", theirs)):
            viewer.on_lines = collect(latencies[name])
        await asyncio.to_thread(paced_writer(log, 100, seconds, threading.Event()).join)
        await asyncio.sleep(1)
        for viewer in (ours, theirs):
            viewer.on_lines = None
        latency = {name: summary_ms(values) for name, values in latencies.items()}
        latency["lines_written"] = 100 * seconds
        ours_stop.set()
        await ours_task

        rounds, block = (1, 3) if args.quick else (3, 10)
        alone = await latency_alone(harness, source, cookie, frontail, theirs, log, rounds,
                                    block)
        latency_alone_figures = {name: summary_ms(values) for name, values in alone.items()}
        latency_alone_figures["lines_written"] = 100 * rounds * block

        # Throughput: each system alone. The other viewer is closed first.
        total = 100_000 if args.quick else args.lines
        stop.set()
        await asyncio.gather(theirs_task, return_exceptions=True)
        stop = asyncio.Event()
        theirs = FrontailViewer(port, log)
        task = asyncio.ensure_future(theirs.run(stop))
        await asyncio.wait_for(theirs.joined.wait(), 30)
        frontail_tp = await repeated_throughput(theirs, log, total, args.repeat)
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        # frontail's `tail -F` and node would go on reading every line appended below
        # (with no viewer connected), taking CPU from the system being measured.
        stop_frontail(frontail)
        frontail = None

        ours, ours_stop, task = await open_viewer(harness, source, cookie)
        tailboard_tp = await repeated_throughput(ours, log, total, args.repeat)
        ours_stop.set()
        await asyncio.gather(task, return_exceptions=True)
        results = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "node": subprocess.run(["node", "--version"], capture_output=True,
                                               text=True).stdout.strip(),
                        "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
            "latency_100_per_s": latency,
            "latency_alone_100_per_s": latency_alone_figures,
            "throughput": {"tailboard": tailboard_tp, "frontail": frontail_tp},
        }
    finally:
        if frontail is not None:
            stop_frontail(frontail)
        close_run(harness, workdir)
    written = write_results("frontail.json", results)
    lat, tp = results["latency_100_per_s"], results["throughput"]
    ratio = (tp["tailboard"]["delivered_lines_per_s"]
             / max(1, tp["frontail"]["delivered_lines_per_s"]))
    print(f"load average {results['machine']['loadavg_before'][0]:.2f} → "
          f"{results['machine']['loadavg_after'][0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'':28}{'Tailboard':>28}{'frontail 4.9.2':>28}")
    print(f"{'latency together p50 / p99':28}"
          f"{lat['tailboard']['p50_ms']:>14} / {lat['tailboard']['p99_ms']:<8} ms "
          f"{lat['frontail']['p50_ms']:>14} / {lat['frontail']['p99_ms']:<8} ms")
    print(f"{'latency lines seen':28}{lat['tailboard']['count']:>28}{lat['frontail']['count']:>28}"
          f"  (of {lat['lines_written']})")
    alone = results["latency_alone_100_per_s"]
    print(f"{'latency alone p50 / p99':28}"
          f"{alone['tailboard']['p50_ms']:>14} / {alone['tailboard']['p99_ms']:<8} ms "
          f"{alone['frontail']['p50_ms']:>14} / {alone['frontail']['p99_ms']:<8} ms")
    print(f"{'latency alone lines seen':28}{alone['tailboard']['count']:>28}"
          f"{alone['frontail']['count']:>28}  (of {alone['lines_written']} each)")
    print(f"{'throughput lines/s, median':28}{tp['tailboard']['delivered_lines_per_s']:>28,}"
          f"{tp['frontail']['delivered_lines_per_s']:>28,}  (× {ratio:.1f})")
    print(f"{'throughput runs':28}"
          f"{', '.join(f'{r:,}' for r in tp['tailboard']['runs_lines_per_s']):>28}"
          f"{', '.join(f'{r:,}' for r in tp['frontail']['runs_lines_per_s']):>28}")
    print(f"{'delivered / lost':28}"
          f"{tp['tailboard']['delivered']:>18,} / {tp['tailboard']['lost']:<7,}"
          f"{tp['frontail']['delivered']:>18,} / {tp['frontail']['lost']:<7,}")
    print(f"JSON: {written}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs for a smoke check")
    parser.add_argument("--lines", type=int, default=300_000,
                        help="lines appended for the throughput runs (each system)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="throughput runs per system; the median is printed (default 3)")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "tailboard-bench"),
                        help="where npm installs frontail")
    asyncio.run(main(parser.parse_args()))
