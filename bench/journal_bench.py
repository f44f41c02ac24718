"""Journal benchmark on the real system: journal entries/s streamed end to end, side by side
with the file kind's lines/s in the same run.

Run: .venv/bin/python bench/journal_bench.py [--entries N]
Starts Redis, a prefork worker and Daphne on free 127.0.0.1 ports and logs in over HTTP.
Journal: N entries (~100-byte messages) are written beforehand with systemd-journal-remote;
one real WebSocket viewer (acknowledging frames like the dashboard) opens the journal source
with `after=` the first entry's cursor and reads the other N - 1 entries as fast as the stream
sends them (systemd-python reader, short-iso lines, frames, Redis, Daphne, WebSocket). File:
the same viewer follows a log file while a separate process appends N lines as fast as it can
(tail_bench's throughput scenario). Prints one table; figures also in bench/results/journal.json.

The machine is often shared, so wall-clock rates move with its load; each kind's CPU time per
1,000 items, by process (worker, Daphne, Redis, the viewer), does not, and says where the
time goes.
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
from common import Viewer, children, close_run, cpu_seconds, write_results  # noqa: E402
from tail_bench import throughput  # noqa: E402

from tests import journalfiles as jf  # noqa: E402
from tests.harness import Harness  # noqa: E402

BASE_USEC = 1765033445_000000


def write_journal(folder, total):
    """Write `total` entries into folder/system.journal; return the first entry's cursor."""
    from systemd.journal import Reader

    folder.mkdir()
    path = folder / "system.journal"
    pad = "x" * 80
    entries = (jf.entry(f"{n:012d} {pad}", usec=BASE_USEC + n, unit="bench.service",
                        ident="bench", pid=4242, priority=6 if n % 10 else 3)
               for n in range(total))
    subprocess.run([jf.JOURNAL_REMOTE, f"--output={path}", "-"], input=jf.export(entries),
                   check=True, capture_output=True)
    reader = Reader(path=str(folder))
    reader.seek_head()
    reader._next()
    cursor = reader._get_cursor()
    reader.close()
    return cursor


def cpu_now(harness):
    """CPU seconds used so far by the worker (all its processes), Daphne, Redis, the viewer."""
    worker = harness.worker.pid
    return {"worker": sum(cpu_seconds(pid) for pid in [worker, *children(worker)]),
            "daphne": cpu_seconds(harness.web.pid),
            "redis": cpu_seconds(harness.redis_process.pid),
            "viewer": time.process_time()}


def cpu_per_thousand(before, after, items):
    """CPU milliseconds per 1,000 items, by process, between two cpu_now() readings."""
    return {name: round(1e6 * (after[name] - before[name]) / items, 1) for name in before}


async def measured(harness, phase, items):
    """Run a phase (the file kind's throughput); return its result with `cpu_ms_per_1000`."""
    before = cpu_now(harness)
    result = await phase
    result["cpu_ms_per_1000"] = cpu_per_thousand(before, cpu_now(harness), items)
    return result


async def journal_throughput(harness, cookie, workdir, total):
    """Stream N - 1 entries already on disk after a cursor: delivered entries/s."""
    folder = workdir / "journal"
    started = time.monotonic()
    cursor = await asyncio.to_thread(write_journal, folder, total)
    written_in = time.monotonic() - started
    out = harness.manage("sources", "add-journal", "bench-journal", "--directory", str(folder))
    source = int(out.strip().splitlines()[-1])
    cpu_before = cpu_now(harness)  # the streaming only, not the writing
    stop = asyncio.Event()
    viewer = Viewer(harness, f"/ws/journal/{source}/?after={cursor}", cookie)
    first = []
    viewer.on_lines = lambda lines, at: first or first.append((at, len(lines)))
    opened = time.time()
    task = asyncio.ensure_future(viewer.run(stop))
    wanted = total - 1
    while viewer.delivered + viewer.dropped < wanted and time.time() - opened < 300:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    stop.set()
    await task
    cpu = cpu_per_thousand(cpu_before, cpu_now(harness), wanted)
    whole = viewer.last_at - opened
    bulk = viewer.last_at - first[0][0]
    return {"entries": wanted, "delivered": viewer.delivered, "dropped": viewer.dropped,
            "seconds_from_open": round(whole, 3), "seconds_first_to_last": round(bulk, 3),
            "delivered_entries_per_s": round(viewer.delivered / whole),
            "delivered_entries_per_s_after_first_frame":
                round((viewer.delivered - first[0][1]) / bulk) if bulk > 0 else None,
            "written_with_journal_remote_seconds": round(written_in, 1),
            "cpu_ms_per_1000": cpu}


async def main(args):
    """Run both kinds on one installation and print the table."""
    workdir = Path(tempfile.mkdtemp(prefix="tailboard-journal-bench-"))
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
            "journal": await journal_throughput(harness, cookie, workdir, args.entries),
            "file": await measured(harness, throughput(harness, cookie, workdir, args.entries),
                                   args.entries),
        }
    finally:
        close_run(harness, workdir)
    written = write_results("journal.json", results)
    j, f = results["journal"], results["file"]
    rows = [
        ("journal", f"{j['delivered_entries_per_s']:,} entries/s delivered",
         f"{j['delivered']:,} of {j['entries']:,} in {j['seconds_from_open']} s from open, "
         f"{j['delivered_entries_per_s_after_first_frame']:,}/s after the first frame; "
         f"{j['dropped']:,} dropped"),
        ("file", f"{f['delivered_lines_per_s']:,} lines/s delivered",
         f"{f['delivered']:,} of {f['lines']:,} in {f['seconds']} s; {f['dropped']:,} dropped"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'kind'.ljust(width)}  figure  (details)")
    for name, figure, detail in rows:
        print(f"{name.ljust(width)}  {figure}  ({detail})")
    print("CPU ms per 1,000 items: " + "; ".join(
        f"{name} " + ", ".join(f"{proc} {ms}"
                               for proc, ms in results[name]["cpu_ms_per_1000"].items())
        for name in ("journal", "file")))
    print(f"load average at start: {results['machine']['load_average_at_start']}")
    print(f"JSON: {written}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000,
                        help="journal entries, and file lines, to stream (default 200000)")
    asyncio.run(main(parser.parse_args()))
