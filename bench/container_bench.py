"""Container benchmark on the real system: container lines/s streamed end to end, side by side
with the file kind's lines/s in the same run.

Run: .venv/bin/python bench/container_bench.py [--lines N] [--stderr-every K]
Starts Redis, a prefork worker and Daphne on free 127.0.0.1 ports and logs in over HTTP. One
real WebSocket viewer (acknowledging frames like the dashboard) follows, in turn: a log file
while a separate process appends N lines (~100 bytes) as fast as it can (tail_bench's
throughput scenario), and a container source (Kubernetes/CRI layout) while the same kind of
process appends N records in the CRI format conmon writes (`TIME stdout F MESSAGE`, the same
~100-byte messages; every K-th on stderr, 0: none), so the container figure counts parsing,
per-stream frames and the rest of the path. Prints one table; figures also in
bench/results/container.json.
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
from common import Viewer, close_run, rss_kib, worker_child_of, write_results  # noqa: E402
from tail_bench import throughput  # noqa: E402

from tests.harness import Harness  # noqa: E402

WRITER = """
import sys, time
path, total, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pad = "x" * 80
chunk = 5000
def record(n):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".%09d+00:00" % (n % 10**9)
    stream = "stderr" if every and n % every == 0 else "stdout"
    return "%s %s F %012d %s\\n" % (stamp, stream, n, pad)
with open(path, "a", buffering=1 << 20) as f:
    for base in range(0, total, chunk):
        f.write("".join(record(n) for n in range(base, min(total, base + chunk))))
        f.flush()
"""


async def container_throughput(harness, cookie, workdir, total, every):
    """N CRI records appended as fast as possible to one container's log: delivered lines/s."""
    pods = workdir / "pods"
    log = pods / "bench_writer-1_u1" / "app" / "0.log"
    log.parent.mkdir(parents=True)
    log.write_text("")
    out = harness.manage("sources", "add-container", "bench-container", "--pods-dir", str(pods),
                         "--namespace", "bench", "--pod", "*")
    source = int(out.strip().splitlines()[-1])
    stop = asyncio.Event()
    viewer = Viewer(harness, f"/ws/container/{source}/?lines=0", cookie)
    task = asyncio.ensure_future(viewer.run(stop))
    await asyncio.wait_for(viewer.running.wait(), 30)
    child = worker_child_of(harness, viewer.task_id)
    start = time.monotonic()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(log), str(total), str(every)])
    peak_child = 0
    while viewer.delivered + viewer.dropped < total and time.monotonic() - start < 300:
        await asyncio.sleep(0.05)
        peak_child = max(peak_child, rss_kib(child))
    elapsed = time.monotonic() - start
    await asyncio.to_thread(writer.wait)
    stop.set()
    await task
    return {"lines": total, "stderr_every": every, "seconds": round(elapsed, 3),
            "delivered": viewer.delivered, "dropped": viewer.dropped,
            "delivered_lines_per_s": round(viewer.delivered / elapsed),
            "worker_child_peak_rss_mib": round(peak_child / 1024, 1)}


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
            "file": await throughput(harness, cookie, workdir, args.lines),
            "container": await container_throughput(harness, cookie, workdir, args.lines,
                                                    args.stderr_every),
        }
    finally:
        close_run(harness, workdir)
    c, f = results["container"], results["file"]
    results["container_to_file"] = round(c["delivered_lines_per_s"]
                                         / max(1, f["delivered_lines_per_s"]), 3)
    written = write_results("container.json", results)
    rows = [("file", f), ("container", c)]
    print(f"{'kind':9}  delivered lines/s  (details)")
    for name, r in rows:
        print(f"{name:9}  {r['delivered_lines_per_s']:>17,}  ({r['delivered']:,} of "
              f"{r['lines']:,} in {r['seconds']} s; {r['dropped']:,} dropped)")
    print(f"container / file: {results['container_to_file']:.0%}"
          f" (stderr every {c['stderr_every'] or 'never'})")
    print(f"load average at start: {results['machine']['load_average_at_start']}")
    print(f"JSON: {written}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=300_000,
                        help="lines to stream per kind (default 300000)")
    parser.add_argument("--stderr-every", type=int, default=0,
                        help="every K-th container line on stderr (default 0: none)")
    asyncio.run(main(parser.parse_args()))
