"""Shared pieces of the benchmarks: process figures and a WebSocket stream reader."""

import asyncio
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import connect  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def close_run(harness, workdir):
    """Stop a benchmark's installation and remove its work folder."""
    harness.close()
    shutil.rmtree(workdir, ignore_errors=True)


def write_results(name, results):
    """Write a benchmark's figures as bench/results/NAME (JSON, not committed); return the path."""
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    path.write_text(json.dumps(results, indent=2))
    return path


def rss_kib(pid, field="VmRSS"):
    """Return a memory figure of a process in KiB (VmRSS now, VmHWM peak)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def cpu_seconds(pid):
    """Return user+system CPU seconds used by a process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid):
    """Return the pids of a process's children."""
    try:
        return [int(p) for p in
                Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def percentile(values, p):
    """Return the p-th percentile (nearest rank) of values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]


def summary_ms(latencies):
    """Return p50/p99/max of latencies in milliseconds."""
    return {"count": len(latencies), "p50_ms": round(percentile(latencies, 50) * 1000, 2),
            "p99_ms": round(percentile(latencies, 99) * 1000, 2),
            "max_ms": round(max(latencies) * 1000, 2) if latencies else None,
            "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None}


class Viewer:
    """A real WebSocket viewer that acknowledges frames like the dashboard does."""

    def __init__(self, harness, path, cookie, ack=True):
        self.harness = harness
        self.url = "ws" + harness.web.base_url[4:] + path
        self.cookie = cookie
        self.ack = ack
        self.delivered = 0
        self.frames = 0  # `lines` frames received
        self.last_at = None  # wall-clock time the last lines arrived
        self.dropped = 0
        self.task_id = None
        self.running = asyncio.Event()
        self.on_lines = None
        self.socket = None

    async def run(self, stop):
        """Read frames until `stop` is set or the socket closes."""
        async with connect(self.url, additional_headers={
                "Origin": self.harness.web.base_url, "Cookie": self.cookie},
                max_size=2 ** 21, open_timeout=20) as socket:
            self.socket = socket
            if self.ack:
                await socket.send('{"action":"ack","seq":-1}')
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(socket.recv(), 0.5)
                except asyncio.TimeoutError:
                    continue
                received = time.time()
                message = json.loads(raw)
                kind = message["type"]
                if kind == "lines":
                    self.delivered += len(message["lines"])
                    self.frames += 1
                    self.last_at = received
                    if self.on_lines:
                        self.on_lines(message["lines"], received)
                    if self.ack:
                        await socket.send('{"action":"ack","seq":%d}' % message["seq"])
                elif kind == "dropped":
                    self.dropped += message["count"]
                elif kind == "status":
                    if message["state"] == "queued":
                        self.task_id = message["task_id"]
                    elif message["state"] == "running":
                        self.running.set()
                    elif message["state"] in ("error", "stopped"):
                        raise RuntimeError(f"stream ended: {message}")
            await socket.send('{"action":"stop"}')


def worker_child_of(harness, task_id):
    """Return the pid of the worker child running a task."""
    replies = harness.celery.control.inspect(timeout=2).active() or {}
    for tasks in replies.values():
        for task in tasks:
            if task["id"] == task_id:
                return task["worker_pid"]
    return None
