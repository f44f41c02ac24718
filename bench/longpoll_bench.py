"""Long polling next to the WebSocket on the real system: latency at 100 lines/s, one viewer's
throughput, and the CPU of quiet long-poll viewers.

Run: .venv/bin/python bench/longpoll_bench.py [--quick] [--quiet N (default 200)]
Starts Redis, a prefork worker and Daphne on free 127.0.0.1 ports, logs in over HTTP, and runs
each scenario once over a WebSocket (bench/tail_bench.py's viewer, which acks like the
dashboard) and once over long polling (tests/polling.py's client, which polls like the
dashboard's fallback); prints a table and writes bench/results/longpoll.json.
"""

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import close_run, summary_ms, write_results  # noqa: E402
from scale_bench import cpu_parts  # noqa: E402
from tail_bench import latency, paced_writer, start_writer, throughput  # noqa: E402

from tests.harness import Harness  # noqa: E402
from tests.polling import PollClient  # noqa: E402


def poll_viewer(harness, cookie, source, stop, on_lines=None):
    """Start a long-poll stream and poll until `stop`; return (client, thread, counts)."""
    client = PollClient(harness.web.base_url, cookie)
    client.start(f"/streams/tailf/{source}/?lines=0")
    client.status("running", timeout=30)
    counts = {"delivered": 0, "dropped": 0}

    def run():
        while not stop.is_set() and not client.closed:
            body = client.poll()
            received = time.time()
            for message in body["messages"]:
                if message["type"] == "lines":
                    counts["delivered"] += len(message["lines"])
                    if on_lines:
                        on_lines(message["lines"], received)
                elif message["type"] == "dropped":
                    counts["dropped"] += message["count"]
            client.messages.clear()  # a long run keeps no history

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return client, thread, counts


def finish(client, thread, stop):
    """Stop a long-poll viewer: Stop, then wait for its last poll."""
    stop.set()
    client.send({"action": "stop"})
    thread.join(30)
    client.close()


def poll_latency(harness, cookie, workdir, rate, seconds):
    """Stamped lines at a steady rate over long polling: append-to-answer latency."""
    log = workdir / "poll-latency.log"
    log.write_text("")
    source = harness.add_log("bench-poll-latency", log)
    latencies = []
    stop = threading.Event()
    client, thread, _ = poll_viewer(harness, cookie, source, stop, lambda lines, at: (
        latencies.extend(at - float(line.split()[0]) for line in lines)))
    paced_writer(log, rate, seconds, threading.Event()).join()
    time.sleep(0.5)
    finish(client, thread, stop)
    return summary_ms(latencies)


def poll_throughput(harness, cookie, workdir, total):
    """`total` lines appended as fast as possible: lines/s one long-poll viewer takes."""
    log = workdir / "poll-throughput.log"
    log.write_text("")
    source = harness.add_log("bench-poll-throughput", log)
    stop = threading.Event()
    client, thread, counts = poll_viewer(harness, cookie, source, stop)
    start = time.monotonic()
    writer = start_writer(log, total)
    while counts["delivered"] + counts["dropped"] < total and time.monotonic() - start < 300:
        time.sleep(0.05)
    elapsed = time.monotonic() - start
    writer.wait()
    finish(client, thread, stop)
    return {"lines": total, "seconds": round(elapsed, 3), **counts,
            "delivered_lines_per_s": round(counts["delivered"] / elapsed)}


def poll_quiet(harness, cookie, workdir, viewers, seconds):
    """CPU of the worker (main process and pool), Daphne and Redis while `viewers` long-poll
    streams of a quiet file are open (each viewer's client idles in a 25 s poll)."""
    # In a folder of its own: a stream watches its file's folder, and the installation's
    # SQLite database (written as streams start and end) is in `workdir`.
    (workdir / "quiet").mkdir(exist_ok=True)
    log = workdir / "quiet" / "poll-quiet.log"
    log.write_text("quiet\n")
    source = harness.add_log("bench-poll-quiet", log)
    stop = threading.Event()
    open_ = [poll_viewer(harness, cookie, source, stop) for _ in range(viewers)]
    time.sleep(2)
    before = cpu_parts(harness)
    time.sleep(seconds)
    used = {name: value - before[name] for name, value in cpu_parts(harness).items()}
    stop.set()
    for client, _thread, _ in open_:
        client.send({"action": "stop"})
    for client, thread, _ in open_:
        thread.join(30)
        client.close()
    percent = {f"{name}_cpu_percent": round(100 * value / seconds, 2)
               for name, value in used.items()}
    return {"viewers": viewers, "seconds": seconds, **percent,
            "total_cpu_percent": round(100 * sum(used.values()) / seconds, 2)}


async def main(args):
    """Run every scenario and print the table."""
    workdir = Path(tempfile.mkdtemp(prefix="tailboard-bench-"))
    quiet = args.quiet
    harness = Harness(workdir, STREAM_MAX_PER_USER=quiet + 10, STREAM_LEASE_SECONDS=20)
    try:
        password = harness.create_user("bench", superuser=True)
        harness.worker = harness.start_worker(concurrency=max(4, quiet + 2))
        harness.web = harness.start_daphne()
        cookie = harness.login(harness.web.base_url, "bench", password)
        quick = args.quick
        seconds = 5 if quick else 30
        total = 200_000 if quick else 1_000_000
        results = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "websocket_latency": await latency(harness, cookie, workdir, 100, seconds),
            "poll_latency": await asyncio.to_thread(poll_latency, harness, cookie, workdir,
                                                    100, seconds),
            "websocket_throughput": await throughput(harness, cookie, workdir, total),
            "poll_throughput": await asyncio.to_thread(poll_throughput, harness, cookie,
                                                       workdir, total),
            "poll_quiet": await asyncio.to_thread(poll_quiet, harness, cookie, workdir, quiet,
                                                  seconds),
        }
    finally:
        close_run(harness, workdir)
    written = write_results("longpoll.json", results)
    ws, lp = results["websocket_latency"], results["poll_latency"]
    wt, lt, q = results["websocket_throughput"], results["poll_throughput"], results["poll_quiet"]
    rows = [
        ("latency 100/s, WebSocket", f"p50 {ws['p50_ms']} ms, p99 {ws['p99_ms']} ms",
         f"max {ws['max_ms']} ms over {ws['count']} lines"),
        ("latency 100/s, long poll", f"p50 {lp['p50_ms']} ms, p99 {lp['p99_ms']} ms",
         f"max {lp['max_ms']} ms over {lp['count']} lines"),
        ("throughput, WebSocket", f"{wt['delivered_lines_per_s']:,} lines/s",
         f"{wt['delivered']:,} delivered, {wt['dropped']:,} dropped of {wt['lines']:,}"),
        ("throughput, long poll", f"{lt['delivered_lines_per_s']:,} lines/s",
         f"{lt['delivered']:,} delivered, {lt['dropped']:,} dropped of {lt['lines']:,}"),
        (f"{q['viewers']} quiet long polls", f"{q['total_cpu_percent']} % of a core",
         f"Daphne {q['daphne_cpu_percent']}, worker {q['worker_main_cpu_percent']} + pool "
         f"{q['pool_cpu_percent']}, Redis {q['redis_cpu_percent']} % over {q['seconds']} s"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'scenario'.ljust(width)}  figure  (details)")
    for name, figure, detail in rows:
        print(f"{name.ljust(width)}  {figure}  ({detail})")
    print(f"JSON: {written}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs for a smoke check")
    parser.add_argument("--quiet", type=int, default=200,
                        help="quiet long-poll viewers (each holds a worker process)")
    asyncio.run(main(parser.parse_args()))
