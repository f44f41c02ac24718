"""Scale benchmark: many concurrent streams on one box, each receiving 1 line/s.

Run: .venv/bin/python bench/scale_bench.py [--streams 200] [--seconds 60] [--ceiling] [--idle]
Starts Redis, one prefork worker with enough children, and Daphne; ramps to N streams (in
steps of 20), then for `--seconds` appends one stamped line per second to every stream's
file and measures append-to-frame latency, the memory of all worker processes and Daphne,
and CPU, also per stream (with `--idle`, nothing is appended: what open, quiet streams
cost). `--ceiling` keeps adding streams in steps until p99 exceeds 1 s (or the worker runs
out of children). Figures go to stdout and bench/results/scale*.json.
"""

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    Viewer,
    children,
    close_run,
    cpu_seconds,
    rss_kib,
    summary_ms,
    write_results,
)

from tests.harness import Harness  # noqa: E402

RAMP_STEP = 20

WRITER = """
import sys, time
files = [open(p, "a", buffering=1) for p in open(sys.argv[1]).read().split()]
seconds = int(sys.argv[2])
start = time.monotonic()
for tick in range(seconds):
    for index, handle in enumerate(files):
        delay = start + tick + index / len(files) - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        handle.write("%.6f scale %d %s\\n" % (time.time(), tick, "y" * 60))
"""


def pss_kib(pid):
    """Return a process's proportional set size in KiB (shared pages split fairly)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def system_used_mib():
    """Return the machine's memory in use (MemTotal - MemAvailable) in MiB."""
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return (int(info["MemTotal"].split()[0]) - int(info["MemAvailable"].split()[0])) // 1024


def inotify_limit():
    """Return the per-user limit of inotify instances (one per open tail stream)."""
    return int(Path("/proc/sys/fs/inotify/max_user_instances").read_text())


def memory(harness):
    """Return RSS and PSS totals (MiB) of the worker's processes and of Daphne."""
    pids = [harness.worker.pid, *children(harness.worker.pid)]
    return {"worker_processes": len(pids),
            "system_used_mib": system_used_mib(),
            "worker_rss_mib": round(sum(rss_kib(p) for p in pids) / 1024),
            "worker_pss_mib": round(sum(pss_kib(p) for p in pids) / 1024),
            "daphne_rss_mib": round(rss_kib(harness.web.pid) / 1024),
            "redis_rss_mib": round(rss_kib(harness.redis_process.pid) / 1024)}


def machine_ticks():
    """Return the machine's CPU ticks from /proc/stat: (busy, steal, total), all cores."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    steal = fields[7] if len(fields) > 7 else 0
    total = sum(fields[:8])
    return total - idle - steal, steal, total


def cpu_parts(harness):
    """Return CPU seconds used so far by the worker's main process, its pool, Daphne, Redis."""
    return {"worker_main": cpu_seconds(harness.worker.pid),
            "pool": sum(cpu_seconds(p) for p in children(harness.worker.pid)),
            "daphne": cpu_seconds(harness.web.pid),
            "redis": cpu_seconds(harness.redis_process.pid)}


class Fleet:
    """N log files, N viewers, one writer thread stamping a line per file per second."""

    def __init__(self, harness, cookie, workdir, idle=False):
        self.harness = harness
        self.idle = idle
        self.cookie = cookie
        self.workdir = workdir
        self.files = []
        self.viewers = []
        self.tasks = []
        self.stop = asyncio.Event()
        self.latencies = []
        self.recording = False

    async def add(self, count):
        """Open `count` more streams and wait until they all run."""
        new = []
        first = len(self.files)
        paths = [self.workdir / f"scale-{n}.log" for n in range(first, first + count)]
        for path in paths:
            path.write_text("")
        ids = await asyncio.to_thread(self.harness.add_logs,
                                      [(path.stem, path) for path in paths])
        for path, source in zip(paths, ids, strict=False):
            viewer = Viewer(self.harness, f"/ws/tailf/{source}/?lines=0", self.cookie)
            viewer.on_lines = self.record
            self.files.append(path)
            self.viewers.append(viewer)
            self.tasks.append(asyncio.ensure_future(viewer.run(self.stop)))
            new.append(viewer)
        await asyncio.wait_for(asyncio.gather(*(v.running.wait() for v in new)), 120)

    def record(self, lines, received):
        """Collect append-to-frame latencies while recording."""
        if self.recording:
            self.latencies.extend(received - float(line.split()[0]) for line in lines)

    def write_for(self, seconds):
        """Append one stamped line per file per second from a separate process."""
        if self.idle:
            time.sleep(seconds)
            return
        listing = self.workdir / "files.txt"
        listing.write_text("\n".join(str(path) for path in self.files))
        subprocess.run([sys.executable, "-c", WRITER, str(listing), str(seconds)], check=True)

    async def measure(self, seconds):
        """Write for `seconds` and return latency, memory and CPU figures."""
        self.latencies = []
        self.recording = True
        cpu_before = cpu_parts(self.harness)
        machine_before = machine_ticks()
        me_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        writer = threading.Thread(target=self.write_for, args=(seconds,), daemon=True)
        writer.start()
        while writer.is_alive():
            await asyncio.sleep(0.5)
        await asyncio.sleep(1)
        self.recording = False
        elapsed = time.monotonic() - started
        parts = {name: used - cpu_before[name]
                 for name, used in cpu_parts(self.harness).items()}
        busy, steal, ticks = (after - before for after, before
                              in zip(machine_ticks(), machine_before, strict=False))
        me = resource.getrusage(resource.RUSAGE_SELF)
        client = (me.ru_utime + me.ru_stime) - (me_before.ru_utime + me_before.ru_stime)
        # Memory is read once the latencies are taken, with every stream still open: reading
        # smaps_rollup of hundreds of processes takes their mmap locks and stalls them.
        held = await asyncio.to_thread(memory, self.harness)
        expected = 0 if self.idle else len(self.files) * seconds
        total = sum(parts.values())
        return {"streams": len(self.viewers), "seconds": seconds, **summary_ms(self.latencies),
                "lines_expected": expected, **held,
                "cpu_percent_of_one_core": round(100 * total / elapsed, 1),
                "cpu_ms_per_stream_second": round(1000 * total / elapsed / len(self.viewers), 3),
                **{f"{name}_cpu_percent": round(100 * used / elapsed, 1)
                   for name, used in parts.items()},
                "bench_client_cpu_percent": round(100 * client / elapsed, 1),
                # the whole machine, every process: how near the cores were to full, and
                # how much the hypervisor took (steal) - the figures above swing with both
                "machine_busy_percent_of_all_cores": round(100 * busy / max(1, ticks), 1),
                "machine_steal_percent": round(100 * steal / max(1, ticks), 1)}

    async def close(self):
        """Stop every viewer."""
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def main(args):
    """Ramp, measure, and optionally look for the ceiling."""
    workdir = Path(tempfile.mkdtemp(prefix="tailboard-scale-"))
    limit = args.max_streams if args.ceiling else args.streams
    harness = Harness(workdir, STREAM_MAX_PER_USER=limit + 10, STREAM_MAX_TOTAL=limit + 10,
                      CHANNEL_CAPACITY=max(5000, 10 * limit))
    results = []
    try:
        password = harness.create_user("bench", superuser=True)
        used_before = system_used_mib()
        started = time.monotonic()
        harness.worker = harness.start_worker(concurrency=limit + 4)
        worker_ready = round(time.monotonic() - started, 1)
        harness.web = harness.start_daphne()
        cookie = harness.login(harness.web.base_url, "bench", password)
        base = memory(harness)
        base["inotify_max_user_instances"] = inotify_limit()
        if base["inotify_max_user_instances"] < limit + 10:
            print(f"note: fs.inotify.max_user_instances is {inotify_limit()}: streams beyond it "
                  "fall back to polling (up to 100 ms added latency); see docs/scaling.md")
        base["system_used_before_worker_mib"] = used_before
        print(f"worker with {limit + 4} children ready in {worker_ready} s; idle: {base}")
        fleet = Fleet(harness, cookie, workdir, idle=args.idle)
        target = args.streams
        while True:
            ramp_start = time.monotonic()
            while len(fleet.viewers) < target:
                await fleet.add(min(RAMP_STEP, target - len(fleet.viewers)))
            ramp = round(time.monotonic() - ramp_start, 1)
            figures = await fleet.measure(args.seconds)
            figures["ramp_seconds"] = ramp
            figures["system_used_by_tailboard_mib"] = (figures["system_used_mib"]
                                                       - used_before)
            results.append(figures)
            print(json.dumps(figures))
            if not args.ceiling or figures["p99_ms"] > 1000 or target >= args.max_streams:
                break
            target = min(args.max_streams, target + args.step)
        await fleet.close()
    finally:
        close_run(harness, workdir)
    name = "scale-ceiling.json" if args.ceiling else "scale-idle.json" if args.idle else \
        "scale.json"
    written = write_results(name,
                            {"idle_worker": base, "worker_ready_seconds": worker_ready,
                             "runs": results})
    print(f"{'streams':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'worker RSS':>11} "
          f"{'worker PSS':>11} {'Daphne RSS':>11} {'RAM used':>11} {'CPU %':>6}")
    for r in results:
        p50, p99, top = ("—" if r[k] is None or r[k] != r[k] else r[k]  # none with --idle
                         for k in ("p50_ms", "p99_ms", "max_ms"))
        print(f"{r['streams']:>8} {p50:>8} {p99:>8} {top:>8} "
              f"{r['worker_rss_mib']:>7} MiB {r['worker_pss_mib']:>7} MiB "
              f"{r['daphne_rss_mib']:>7} MiB {r['system_used_by_tailboard_mib']:>7} MiB "
              f"{r['cpu_percent_of_one_core']:>6}")
    print(f"JSON: {written}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--ceiling", action="store_true")
    parser.add_argument("--step", type=int, default=100)
    parser.add_argument("--max-streams", type=int, default=800)
    parser.add_argument("--idle", action="store_true", help="append nothing: quiet streams")
    asyncio.run(main(parser.parse_args()))
