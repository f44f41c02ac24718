"""Tail benchmark on the real system: throughput, latency, idle cost, isolation.

Run: .venv/bin/python bench/tail_bench.py [--quick]
Starts Redis, a prefork worker and Daphne on free 127.0.0.1 ports, logs in over HTTP, opens
real WebSocket viewers (which acknowledge frames like the dashboard) and prints a table;
the figures are also written to bench/results/tail.json.
"""

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    Viewer,
    close_run,
    cpu_seconds,
    rss_kib,
    summary_ms,
    worker_child_of,
    write_results,
)

from tests.harness import Harness  # noqa: E402

PAYLOAD = "x" * 80

WRITER = """
import sys, time
path, total, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
pad = "x" * 80
chunk = 5000
start = time.monotonic()
with open(path, "a", buffering=1 << 20) as f:
    for base in range(0, total, chunk):
        f.write("".join("%012d %s %s\\n" % (n, "%.6f" % time.time(), pad) for n in range(base, min(total, base + chunk))))
        f.flush()
        if rate:
            ahead = (base + chunk) / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
"""


def start_writer(path, total, rate=0.0):
    """Append `total` lines of ~100 bytes from a separate process (rate lines/s, 0 = max)."""
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(total), str(rate)])


def paced_writer(path, rate, seconds, stop):
    """Append stamped lines at `rate` lines/s from a thread."""
    def run():
        with open(path, "a", buffering=1) as handle:
            start = time.monotonic()
            n = 0
            while not stop.is_set() and time.monotonic() - start < seconds:
                handle.write(f"{time.time():.6f} paced {n} {PAYLOAD}\n")
                n += 1
                delay = start + n / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


async def open_viewer(harness, source, cookie, **kwargs):
    """Open a viewer on a log source and wait until it runs."""
    stop = asyncio.Event()
    viewer = Viewer(harness, f"/ws/tailf/{source}/?lines=0", cookie, **kwargs)
    task = asyncio.ensure_future(viewer.run(stop))
    await asyncio.wait_for(viewer.running.wait(), 30)
    return viewer, stop, task


async def throughput(harness, cookie, workdir, total):
    """1,000,000 lines appended as fast as possible: delivered lines/s and drops."""
    log = workdir / "throughput.log"
    log.write_text("")
    source = harness.add_log("bench-throughput", log)
    viewer, stop, task = await open_viewer(harness, source, cookie)
    child = worker_child_of(harness, viewer.task_id)
    daphne = harness.web.pid
    start = time.monotonic()
    writer = start_writer(log, total)
    peak_child = peak_daphne = 0
    while viewer.delivered + viewer.dropped < total and time.monotonic() - start < 300:
        await asyncio.sleep(0.05)
        peak_child = max(peak_child, rss_kib(child))
        peak_daphne = max(peak_daphne, rss_kib(daphne))
    elapsed = time.monotonic() - start
    await asyncio.to_thread(writer.wait)
    stop.set()
    await task
    return {"lines": total, "seconds": round(elapsed, 3),
            "delivered": viewer.delivered, "dropped": viewer.dropped,
            "delivered_lines_per_s": round(viewer.delivered / elapsed),
            "worker_child_peak_rss_mib": round(peak_child / 1024, 1),
            "daphne_peak_rss_mib": round(peak_daphne / 1024, 1)}


async def latency(harness, cookie, workdir, rate, seconds, name="latency"):
    """Stamped lines at a steady rate: append-to-frame latency."""
    log = workdir / f"{name}.log"
    log.write_text("")
    source = harness.add_log(f"bench-{name}", log)
    latencies = []
    viewer, stop, task = await open_viewer(harness, source, cookie)
    viewer.on_lines = lambda lines, at: latencies.extend(at - float(line.split()[0])
                                                         for line in lines)
    done = threading.Event()
    await asyncio.to_thread(paced_writer(log, rate, seconds, done).join)
    await asyncio.sleep(0.5)
    stop.set()
    await task
    return summary_ms(latencies)


async def idle(harness, cookie, workdir, seconds):
    """CPU used by an open stream on a file nobody writes to."""
    log = workdir / "idle.log"
    log.write_text("quiet\n")
    source = harness.add_log("bench-idle", log)
    viewer, stop, task = await open_viewer(harness, source, cookie)
    child = worker_child_of(harness, viewer.task_id)
    await asyncio.sleep(2)
    before_child, before_web = cpu_seconds(child), cpu_seconds(harness.web.pid)
    await asyncio.sleep(seconds)
    used_child = cpu_seconds(child) - before_child
    used_web = cpu_seconds(harness.web.pid) - before_web
    stop.set()
    await task
    return {"seconds": seconds, "worker_child_cpu_percent": round(100 * used_child / seconds, 3),
            "daphne_cpu_percent": round(100 * used_web / seconds, 3)}


async def isolation(harness, cookie, workdir, seconds, firehose_lines):
    """A slow 10 lines/s viewer's latency while another viewer takes a firehose."""
    hose = workdir / "firehose.log"
    hose.write_text("")
    hose_source = harness.add_log("bench-firehose", hose)
    hose_viewer, hose_stop, hose_task = await open_viewer(harness, hose_source, cookie)
    writer = start_writer(hose, firehose_lines, rate=firehose_lines / seconds)
    result = await latency(harness, cookie, workdir, 10, seconds, name="isolated")
    await asyncio.to_thread(writer.wait)
    hose_stop.set()
    await hose_task
    result["firehose_delivered"] = hose_viewer.delivered
    result["firehose_dropped"] = hose_viewer.dropped
    return result


async def main(args):
    """Run every scenario and print the table."""
    workdir = Path(tempfile.mkdtemp(prefix="tailboard-bench-"))
    harness = Harness(workdir, STREAM_MAX_PER_USER=50)
    try:
        password = harness.create_user("bench", superuser=True)
        harness.worker = harness.start_worker(concurrency=4)
        harness.web = harness.start_daphne()
        cookie = harness.login(harness.web.base_url, "bench", password)
        quick = args.quick
        results = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "throughput": await throughput(harness, cookie, workdir,
                                           200_000 if quick else 1_000_000),
            "latency": await latency(harness, cookie, workdir, 100, 5 if quick else 30),
            "idle": await idle(harness, cookie, workdir, 5 if quick else 30),
            "isolation": await isolation(harness, cookie, workdir, 5 if quick else 30,
                                         500_000 if quick else 3_000_000),
        }
    finally:
        close_run(harness, workdir)
    written = write_results("tail.json", results)
    t, lat, idle_, iso = (results[k] for k in ("throughput", "latency", "idle", "isolation"))
    rows = [
        ("throughput", f"{t['delivered_lines_per_s']:,} lines/s delivered",
         f"{t['delivered']:,} delivered, {t['dropped']:,} dropped of {t['lines']:,}; "
         f"peak RSS worker child {t['worker_child_peak_rss_mib']} MiB, "
         f"Daphne {t['daphne_peak_rss_mib']} MiB"),
        ("latency 100/s", f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms",
         f"max {lat['max_ms']} ms over {lat['count']} lines"),
        ("idle stream", f"{idle_['worker_child_cpu_percent']} % core (worker child)",
         f"Daphne {idle_['daphne_cpu_percent']} % over {idle_['seconds']} s"),
        ("isolation 10/s", f"p50 {iso['p50_ms']} ms, p99 {iso['p99_ms']} ms",
         f"max {iso['max_ms']} ms; firehose viewer got {iso['firehose_delivered']:,} "
         f"lines, {iso['firehose_dropped']:,} dropped"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'scenario'.ljust(width)}  figure  (details)")
    for name, figure, detail in rows:
        print(f"{name.ljust(width)}  {figure}  ({detail})")
    print(f"JSON: {written}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs for a smoke check")
    asyncio.run(main(parser.parse_args()))
