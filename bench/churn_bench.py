"""Churn benchmark: connect → running while 20 streams keep cycling (start, run, stop).

Run: .venv/bin/python bench/churn_bench.py [--cycles 400] [--parallel 20] [--concurrency 24]
                                           [--hold SECONDS]
Starts Redis, a prefork worker and Daphne on free 127.0.0.1 ports (`tests/harness.py`),
logs in, and runs `--parallel` loops that each open a stream on its own log, wait for
`queued`, `running` and one relayed line, keep it `--hold` seconds (default 0: back to back,
which saturates the two cores, so each start also waits for the CPU the other loops use),
then end it (Stop, then a plain close, in turn).
Prints connect → queued, connect → task received (the worker's log), connect → running
p50/p90/p99/max, how many pool processes were forked during the run, and writes
bench/results/churn.json.
"""

import argparse
import asyncio
import datetime
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    children,
    close_run,
    cpu_seconds,
    percentile,
    worker_child_of,
    write_results,
)
from websockets.asyncio.client import connect  # noqa: E402

from tests.harness import Harness  # noqa: E402

RECEIVED = re.compile(r"^(\S+ \S+) INFO celery.worker.strategy Task \S+\[([0-9a-f-]+)\] received")


def dump_task(harness, task_id):
    """Return py-spy's dump of the pool process running a task (for a cycle that hangs)."""
    pid = worker_child_of(harness, task_id)
    if not pid:
        return "(task not active on the worker)"
    spy = str(Path(sys.executable).with_name("py-spy"))
    result = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True,
                            timeout=30)
    return f"pid {pid}:\n{result.stdout}{result.stderr}"


def cpu_by_process(harness):
    """Return CPU seconds used so far by Daphne, the worker's main process, its pool, Redis
    and this client."""
    pool = children(harness.worker.pid)
    return {"daphne": cpu_seconds(harness.web.pid), "worker_main": cpu_seconds(harness.worker.pid),
            "worker_pool": sum(cpu_seconds(pid) for pid in pool),
            "redis": cpu_seconds(harness.redis_process.pid), "client": cpu_seconds(os.getpid())}


def figures(values):
    """p50/p90/p99/max in ms."""
    return {"count": len(values),
            **{f"p{p}_ms": round(percentile(values, p) * 1000, 1) for p in (50, 90, 99)},
            "max_ms": round(max(values) * 1000, 1) if values else None}


async def cycle(harness, cookie, source, log, how, samples, hold=0.0):
    """One stream: connect, queued, running, a line, `hold` seconds more, then end it `how`."""
    url = "ws" + harness.web.base_url[4:] + f"/ws/tailf/{source}/?lines=0"
    started_wall, started = time.time(), time.monotonic()
    async with connect(url, additional_headers={"Origin": harness.web.base_url,
                                                "Cookie": cookie}, open_timeout=30) as socket:
        queued = running = None
        task_id = None
        marker = None
        while True:
            phase = "running" if queued else "queued"
            phase = "the marked line" if running else phase
            try:
                message = json.loads(await asyncio.wait_for(socket.recv(), 30))
            except asyncio.TimeoutError:
                stack = await asyncio.to_thread(dump_task, harness, task_id)
                raise RuntimeError(f"no {phase} within 30 s (task {task_id})\n{stack}") from None
            if message["type"] == "status":
                if message["state"] == "queued":
                    queued = time.monotonic() - started
                    task_id = message["task_id"]
                elif message["state"] == "running":
                    running = time.monotonic() - started
                    marker = f"mark {task_id}"
                    with open(log, "a") as handle:
                        handle.write(marker + "\n")
                else:
                    raise RuntimeError(f"stream ended early: {message}")
            elif message["type"] == "lines" and marker in message["lines"]:
                delivered = time.monotonic() - started
                break
        if hold:
            await asyncio.sleep(hold)
        stopped = None
        if how == "stop":
            stop_at = time.monotonic()
            await socket.send('{"action":"stop"}')
            while True:
                try:
                    message = json.loads(await asyncio.wait_for(socket.recv(), 30))
                except asyncio.TimeoutError:
                    raise RuntimeError(f"no stopped within 30 s (task {task_id})") from None
                if message["type"] == "status" and message["state"] == "stopped":
                    stopped = time.monotonic() - stop_at
                    break
    samples.append({"task_id": task_id, "wall": started_wall, "queued": queued,
                    "running": running, "line": delivered - running, "stop": stopped,
                    "how": how})


async def loop(harness, cookie, source, log, count, samples, errors, hold=0.0):
    """Run `count` cycles one after another.

    With a hold, the loops start spread over the hold and each hold varies by ±50 %, as
    people's clicks do; otherwise all 20 would connect in the same instant every time.
    """
    if hold:
        await asyncio.sleep(random.uniform(0, hold))
    for n in range(count):
        try:
            await cycle(harness, cookie, source, log, ("stop", "close")[n % 2], samples,
                        hold * random.uniform(0.5, 1.5))
        except Exception as exc:
            errors.append(repr(exc))


def received_times(worker_log):
    """Return {task id: epoch seconds the worker logged it received}."""
    out = {}
    for line in worker_log.read_text().splitlines():
        found = RECEIVED.match(line)
        if found:
            stamp = datetime.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f")
            out[found.group(2)] = stamp.timestamp()
    return out


async def main(args):
    """Run the churn and print the figures."""
    workdir = Path(tempfile.mkdtemp(prefix="tailboard-churn-"))
    harness = Harness(workdir, STREAM_MAX_PER_USER=args.parallel + 5,
                      STREAM_MAX_TOTAL=args.parallel + 5)
    try:
        password = harness.create_user("bench", superuser=True)
        sources = []
        for n in range(args.parallel):
            log = workdir / f"churn-{n}.log"
            log.write_text("")
            sources.append((harness.add_log(f"churn-{n}", log), log))
        harness.worker = harness.start_worker(concurrency=args.concurrency)
        harness.web = harness.start_daphne()
        cookie = harness.login(harness.web.base_url, "bench", password)
        await asyncio.sleep(1)
        warm, errors = [], []
        if not args.fresh:
            await asyncio.gather(*(loop(harness, cookie, s, log, 2, warm, errors)
                                   for s, log in sources))
        pids_before = set(children(harness.worker.pid))
        samples = []
        per_loop = max(1, args.cycles // args.parallel)
        began = time.monotonic()
        cpu_before = cpu_by_process(harness)
        load_before = os.getloadavg()
        await asyncio.gather(*(loop(harness, cookie, s, log, per_loop, samples, errors,
                                    args.hold) for s, log in sources))
        elapsed = time.monotonic() - began
        cpu_after = cpu_by_process(harness)
        load_after = os.getloadavg()
        await asyncio.sleep(1.5)
        pids_after = set(children(harness.worker.pid))
        received = received_times(harness.worker.log_path)
        to_received = [received[s["task_id"]] - s["wall"] for s in samples
                       if s["task_id"] in received]
        results = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "loadavg_before": load_before, "loadavg_after": load_after},
            "parallel": args.parallel, "worker_concurrency": args.concurrency,
            "hold_seconds": args.hold, "fresh": args.fresh,
            "cycles": len(samples), "errors": errors[:10], "error_count": len(errors),
            "seconds": round(elapsed, 1),
            "cycles_per_s": round(len(samples) / elapsed, 1),
            "connect_to_queued": figures([s["queued"] for s in samples]),
            "connect_to_received": figures(to_received),
            "connect_to_running": figures([s["running"] for s in samples]),
            "running_to_first_line": figures([s["line"] for s in samples]),
            "stop_to_stopped": figures([s["stop"] for s in samples if s["stop"] is not None]),
            "cpu_ms_per_cycle": {name: round((cpu_after[name] - cpu_before[name]) * 1000
                                             / max(1, len(samples)), 2) for name in cpu_after},
            "pool_processes_replaced": len(pids_before - pids_after),
            "pool_processes": len(pids_after),
        }
    finally:
        close_run(harness, workdir)
    written = write_results("churn.json", results)
    print(f"{results['cycles']} cycles, {results['parallel']} at a time, held {args.hold} s, "
          f"{results['cycles_per_s']} cycles/s, errors {results['error_count']}, load "
          f"{results['machine']['loadavg_before'][0]:.2f} → "
          f"{results['machine']['loadavg_after'][0]:.2f}")
    for name in ("connect_to_queued", "connect_to_received", "connect_to_running",
                 "running_to_first_line", "stop_to_stopped"):
        f = results[name]
        print(f"{name:20} p50 {f['p50_ms']} ms  p90 {f['p90_ms']} ms  p99 {f['p99_ms']} ms  "
              f"max {f['max_ms']} ms")
    cpu = results["cpu_ms_per_cycle"]
    print("CPU ms per cycle: " + ", ".join(f"{name} {ms}" for name, ms in cpu.items())
          + f" (all {sum(cpu.values()):.1f})")
    print(f"pool processes replaced during the run: {results['pool_processes_replaced']} of "
          f"{results['pool_processes']}")
    print(f"JSON: {written}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=400)
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--fresh", action="store_true",
                        help="no warm-up cycles: the first streams meet pool processes that "
                             "never ran a task (a system just started)")
    parser.add_argument("--hold", type=float, default=0.0,
                        help="seconds each stream stays open after its line (0: back to back)")
    asyncio.run(main(parser.parse_args()))
