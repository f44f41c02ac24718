"""Container benchmark on the real system: container lines/s streamed end to end, side by side
with the file kind's lines/s in the same run.

Run: .venv/bin/python bench/container_bench.py [--lines N] [--stderr-every K] [--prepared]
Starts Redis, a prefork worker and Daphne on free 127.0.0.1 ports and logs in over HTTP. One
real WebSocket viewer (acknowledging frames like the dashboard) follows, in turn: a log file
while a separate process appends N lines as fast as it can, and a container source
(Kubernetes/CRI layout) while the same writer appends N records in the CRI format conmon
writes. Both writers run the same code: each line is `TIME NNN... PAD` (~130 bytes, TIME in
RFC 3339 with nanoseconds, taken per line), and a container record differs only by its head
(`TIME stdout F NNN... PAD`; with K > 0, every K-th on stderr), so the two writers cost the same
CPU per line (printed), which the 2 cores share with the stream. The container figure counts
parsing, the rebuilt lines (`TIME MESSAGE`, the file kind's lines), per-stream frames and the
rest of the path. With --prepared, each writer makes its lines before the clock starts and then
only writes them (5,000 a write), so the stream has the 2 cores to itself. Prints one table,
with each kind's CPU per line by process; figures also in bench/results/container.json.
"""

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    Viewer,
    close_run,
    cpu_seconds,
    rss_kib,
    worker_child_of,
    write_results,
)

from tests.harness import Harness  # noqa: E402

WRITER = """
import sys, time
path, total, cri, every = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "cri", int(sys.argv[4])
prepared = sys.argv[5] == "prepared"
pad = "x" * 80
chunk = 5000
heads = (" stdout F ", " stderr F ") if cri else (" ", " ")
second, prefix = None, ""

def lines(base):
    global second, prefix
    out = []
    for n in range(base, min(total, base + chunk)):
        now, nanos = divmod(time.time_ns(), 1000000000)
        if now != second:
            second, prefix = now, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        out.append("%s.%09d+00:00%s%012d %s\\n"
                   % (prefix, nanos, heads[every > 0 and n % every == 0], n, pad))
    return "".join(out)

chunks = [lines(base) for base in range(0, total, chunk)] if prepared else None
print("ready", flush=True)
sys.stdin.readline()
with open(path, "a", buffering=1 << 20) as f:
    for index, base in enumerate(range(0, total, chunk)):
        f.write(chunks[index] if prepared else lines(base))
        f.flush()
"""


async def stream_throughput(harness, cookie, path, log, total, cri, every=0, prepared=False):
    """N lines (records) appended as fast as possible while one viewer follows: lines/s.

    `prepared`: the writer makes its lines before the clock starts and then only writes them,
    so it takes next to no CPU from the stream while it is measured.
    """
    stop = asyncio.Event()
    viewer = Viewer(harness, path, cookie)
    task = asyncio.ensure_future(viewer.run(stop))
    await asyncio.wait_for(viewer.running.wait(), 30)
    child = worker_child_of(harness, viewer.task_id)
    daphne = harness.web.pid
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(log), str(total),
                               "cri" if cri else "plain", str(every),
                               "prepared" if prepared else "live"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    await asyncio.to_thread(writer.stdout.readline)  # started (and its lines made, if prepared)
    cpu_before = {"worker child": cpu_seconds(child), "daphne": cpu_seconds(daphne),
                  "writer": cpu_seconds(writer.pid), "bench viewer": time.process_time()}
    start = time.monotonic()
    writer.stdin.write("go\n")
    writer.stdin.close()
    peak_child = 0
    while viewer.delivered + viewer.dropped < total and time.monotonic() - start < 300:
        await asyncio.sleep(0.05)
        peak_child = max(peak_child, rss_kib(child))
    elapsed = time.monotonic() - start
    writer_cpu = cpu_seconds(writer.pid)  # an exited writer keeps its figures until reaped
    await asyncio.to_thread(writer.wait)
    writer.stdout.close()
    cpu_after = {"worker child": cpu_seconds(child), "daphne": cpu_seconds(daphne),
                 "writer": writer_cpu, "bench viewer": time.process_time()}
    stop.set()
    await task
    return {"lines": total, "stderr_every": every, "seconds": round(elapsed, 3),
            "delivered": viewer.delivered, "dropped": viewer.dropped, "frames": viewer.frames,
            "delivered_lines_per_s": round(viewer.delivered / elapsed),
            "cpu_us_per_line": {name: round((cpu_after[name] - cpu_before[name]) / total * 1e6, 2)
                                for name in cpu_before},
            "worker_child_peak_rss_mib": round(peak_child / 1024, 1)}


async def file_throughput(harness, cookie, workdir, total, prepared):
    """The file kind: a log file and the writer's plain lines."""
    log = workdir / "throughput.log"
    log.write_text("")
    source = harness.add_log("bench-throughput", log)
    return await stream_throughput(harness, cookie, f"/ws/tailf/{source}/?lines=0", log, total,
                                   cri=False, prepared=prepared)


async def container_throughput(harness, cookie, workdir, total, every, prepared):
    """The container kind: one container's CRI log and the writer's records."""
    pods = workdir / "pods"
    log = pods / "bench_writer-1_u1" / "app" / "0.log"
    log.parent.mkdir(parents=True)
    log.write_text("")
    out = harness.manage("sources", "add-container", "bench-container", "--pods-dir", str(pods),
                         "--namespace", "bench", "--pod", "*")
    source = int(out.strip().splitlines()[-1])
    return await stream_throughput(harness, cookie, f"/ws/container/{source}/?lines=0", log,
                                   total, cri=True, every=every, prepared=prepared)


async def main(args):
    """Run both kinds on one installation and print the table."""
    workdir = Path(tempfile.mkdtemp(prefix="tailboard-container-bench-"))
    harness = Harness(workdir, STREAM_MAX_PER_USER=50)
    try:
        password = harness.create_user("bench", superuser=True)
        harness.worker = harness.start_worker(concurrency=2)
        harness.web = harness.start_daphne()
        cookie = harness.login(harness.web.base_url, "bench", password)
        results = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform(),
                        "load_average_at_start": os.getloadavg()},
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "writer": "prepared" if args.prepared else "live",
            "file": await file_throughput(harness, cookie, workdir, args.lines, args.prepared),
            "container": await container_throughput(harness, cookie, workdir, args.lines,
                                                    args.stderr_every, args.prepared),
        }
    finally:
        close_run(harness, workdir)
    c, f = results["container"], results["file"]
    results["container_to_file"] = round(c["delivered_lines_per_s"]
                                         / max(1, f["delivered_lines_per_s"]), 3)
    written = write_results("container.json", results)
    names = list(f["cpu_us_per_line"])
    print(f"{'kind':9}  delivered lines/s  CPU µs per line: "
          + ", ".join(names) + "  (details)")
    for name, r in (("file", f), ("container", c)):
        cpu = "  ".join(f"{r['cpu_us_per_line'][each]:>5.2f}" for each in names)
        print(f"{name:9}  {r['delivered_lines_per_s']:>17,}  {cpu}  ({r['delivered']:,} of "
              f"{r['lines']:,} in {r['seconds']} s, {r['frames']:,} frames; "
              f"{r['dropped']:,} dropped)")
    print(f"container / file: {results['container_to_file']:.0%}"
          f" (stderr every {c['stderr_every'] or 'never'}; writers {results['writer']})")
    print(f"load average at start: {results['machine']['load_average_at_start']}")
    print(f"JSON: {written}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=300_000,
                        help="lines to stream per kind (default 300000)")
    parser.add_argument("--stderr-every", type=int, default=0,
                        help="every K-th container line on stderr (default 0: none)")
    parser.add_argument("--prepared", action="store_true",
                        help="writers make their lines before the clock starts")
    asyncio.run(main(parser.parse_args()))
