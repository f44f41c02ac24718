"""Soak test on the real system: many connect/disconnect cycles leave nothing behind.

Run: .venv/bin/python bench/soak.py [--cycles 1000] [--parallel 20] [--concurrency 24]

Starts Redis, a prefork worker and Daphne on free 127.0.0.1 ports (tests/harness.py), logs in
over HTTP and runs CYCLES stream connections, PARALLEL at a time, against a log that keeps
getting lines. Each cycle opens /ws/tailf/<id>/, waits for `queued` and (most of the time)
`running` and a `lines` frame, then ends in one of three ways, in turn:

  stop   sends {"action": "stop"} and waits for `status stopped` and the close;
  close  closes the WebSocket cleanly (close frame, no Stop);
  drop   drops the TCP connection without a close frame (every other one with a RST).

One cycle in ten ends right after `queued`, before a worker has taken the task. A cycle that
hangs is dropped after 90 s and counted as an error. Afterwards it waits for the system to
settle and checks: no stream task active or reserved on the worker, no task left on the
queue, no lease left in Redis, no stream record left open; no worker child holding the log or
more sockets than it inherits from the worker, no surviving child with more fds than after
the warm-up; the worker's and Daphne's RSS flat (at most 2 % growth over the second half of
the run). The first cycles grow the heaps to their working size, so `--warmup` cycles (not
counted) run first: Daphne's C allocator keeps growing its working set for about 800
cycles (its Python objects do not grow: tracemalloc), hence the default of 1,000. RSS and
fds are sampled every 100 cycles. Prints a table, writes bench/results/soak.json, exits 1 when a check fails.
"""

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from tests.harness import Harness  # noqa: E402

MODES = ("stop", "close", "drop")
CYCLE_TIMEOUT = 30
CYCLE_DEADLINE = 90


def rss_kib(pid):
    """Return the resident set size of a process in KiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def children(pid):
    """Return the pids of a process's children."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def fd_kinds(pid, log_path):
    """Count a process's open fds by kind: file, socket, pipe, anon_inode, and the soak log."""
    counts = {"file": 0, "socket": 0, "pipe": 0, "anon_inode": 0, "soak_log": 0}
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        kind = target.split(":", 1)[0] if ":" in target else "file"
        counts[kind if kind in counts else "file"] += 1
        if target == str(log_path):
            counts["soak_log"] += 1
    return counts


def snapshot(harness, log_path):
    """Return the processes' figures: RSS and open fds of the worker, its children, Daphne."""
    worker = harness.worker.pid
    kids = {pid: fd_kinds(pid, log_path) for pid in children(worker)}
    kids = {pid: kinds for pid, kinds in kids.items() if kinds is not None}
    child_rss = [rss_kib(pid) for pid in kids]
    daphne = fd_kinds(harness.web.pid, log_path) or {}
    return {
        "worker_main_rss_kib": rss_kib(worker),
        "worker_child_rss_kib_mean": round(sum(child_rss) / len(child_rss)) if child_rss else 0,
        "worker_child_pids": sorted(kids),
        "worker_child_fds": kids,
        "worker_main_fds": fd_kinds(worker, log_path),
        "daphne_rss_kib": rss_kib(harness.web.pid),
        "daphne_fds": sum(daphne.values()) - daphne.get("soak_log", 0),
    }


def child_fd_summary(snap):
    """The largest count of each fd kind over the worker's children."""
    kinds = snap["worker_child_fds"].values()
    return {kind: max((k[kind] for k in kinds), default=0)
            for kind in ("file", "socket", "pipe", "anon_inode", "soak_log")}


def writer(path, stop, rate=50):
    """Append lines at about `rate` lines/s until stopped (so streams carry data)."""
    with open(path, "a", buffering=1) as handle:
        n = 0
        while not stop.is_set():
            handle.write(f"{time.time():.6f} soak line {n}\n")
            n += 1
            time.sleep(1 / rate)


def drop(ws, reset):
    """Drop the TCP connection under a WebSocket without a close frame (RST if `reset`)."""
    transport = ws.transport
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def cycle(url, headers, n, stats, task_ids):
    """Run one cycle under an overall deadline; a hung one is dropped and reported."""
    progress = {"phase": "connecting", "ws": None}
    attempt = asyncio.ensure_future(run_cycle(url, headers, n, stats, task_ids, progress))
    done, _ = await asyncio.wait({attempt}, timeout=CYCLE_DEADLINE)
    if attempt in done:
        try:
            return attempt.result()
        except Exception as exc:
            raise type(exc)(f"{exc} (while {progress['phase']})") from exc
    if progress["ws"] is not None:
        drop(progress["ws"], reset=True)
    attempt.cancel()
    await asyncio.wait({attempt}, timeout=5)
    raise TimeoutError(f"hung for {CYCLE_DEADLINE} s while {progress['phase']}")


async def run_cycle(url, headers, n, stats, task_ids, progress):
    """Run one connect/disconnect cycle; record its outcome."""
    mode = MODES[n % len(MODES)]
    early = n % 10 == 7
    started = time.monotonic()
    async with connect(url, additional_headers=headers, open_timeout=20,
                       close_timeout=10) as ws:
        progress.update(ws=ws, phase="waiting for queued/running/lines")
        await ws.send('{"action":"ack","seq":-1}')
        seen_running = seen_lines = False
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), CYCLE_TIMEOUT))
            kind = message["type"]
            if kind == "status":
                state = message["state"]
                if state == "queued":
                    task_ids.append(message["task_id"])
                    stats["queued"].append(time.monotonic() - started)
                    if early:
                        break
                elif state == "running":
                    seen_running = True
                    stats["running"].append(time.monotonic() - started)
                else:
                    raise RuntimeError(f"unexpected status: {message}")
            elif kind == "lines":
                seen_lines = True
                await ws.send('{"action":"ack","seq":%d}' % message["seq"])
            if seen_running and seen_lines:
                break
        progress["phase"] = f"ending ({mode})"
        if mode == "stop":
            await ws.send('{"action":"stop"}')
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), CYCLE_TIMEOUT))
                if message["type"] == "status" and message["state"] == "stopped":
                    break
            try:
                await asyncio.wait_for(ws.recv(), CYCLE_TIMEOUT)
            except ConnectionClosed:
                pass
            if ws.close_code != 1000:
                raise RuntimeError(f"stop closed with {ws.close_code}")
        elif mode == "close":
            await ws.close()
        else:
            drop(ws, reset=(n // len(MODES)) % 2 == 0)
    stats["modes"][mode] += 1
    stats["early"] += early
    stats["seconds"].append(time.monotonic() - started)


async def soak(harness, url, headers, cycles, parallel, on_progress):
    """Run the cycles, `parallel` at a time; return stats."""
    stats = {"modes": {mode: 0 for mode in MODES}, "early": 0, "seconds": [], "errors": [],
             "queued": [], "running": []}
    task_ids = []
    counter = iter(range(cycles))

    async def runner():
        for n in counter:
            try:
                await cycle(url, headers, n, stats, task_ids)
            except Exception as exc:
                stats["errors"].append(f"cycle {n}: {type(exc).__name__}: {exc}")
            done = sum(stats["modes"].values()) + len(stats["errors"])
            if done % 100 == 0:
                on_progress(done)

    await asyncio.gather(*(runner() for _ in range(parallel)))
    stats["task_ids"] = task_ids
    return stats


def settle(harness, log_path=None, concurrency=None, timeout=40):
    """Wait until the worker is quiet again; return seconds.

    Quiet: no stream task active or reserved, no lease left and, when given, the pool back
    at full strength with no child holding the log (a terminated child finishes its
    `finally` and exits a moment after the revoke; one still holding the log after the
    timeout is a leak, and the fd check then fails).
    """
    started = time.monotonic()
    hostname = harness.worker.hostname

    def quiet():
        inspect = harness.celery.control.inspect(destination=[hostname], timeout=1.0)
        active = sum(len(t) for t in (inspect.active() or {}).values())
        reserved = sum(len(t) for t in (inspect.reserved() or {}).values())
        leases = len(harness.redis.keys("tailboard:lease:*"))
        if active or reserved or leases:
            return False
        if concurrency is None:
            return True
        pool = children(harness.worker.pid)
        holding = [pid for pid in pool if (fd_kinds(pid, log_path) or {}).get("soak_log")]
        return len(pool) == concurrency and not holding

    harness.wait_for(quiet, timeout, interval=0.5)
    return time.monotonic() - started


def explain_leaks(harness, snap):
    """Print what each worker child still holding the log is doing (fds, stack, log lines)."""
    import shutil
    import subprocess

    holders = [pid for pid, kinds in snap["worker_child_fds"].items()
               if kinds and kinds["soak_log"]]
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    for pid in holders:
        print(f"\nworker child {pid} still holds the log:")
        for name in sorted(os.listdir(f"/proc/{pid}/fd"), key=int):
            try:
                print(f"  fd {name} -> {os.readlink(f'/proc/{pid}/fd/{name}')}")
            except OSError:
                pass
        if Path(spy).exists():
            dump = subprocess.run([spy, "dump", "--locals", "--pid", str(pid)],
                                  capture_output=True, text=True, timeout=60)
            print(dump.stdout or dump.stderr)


def log_findings(process):
    """The warning and error lines of a process's log (timestamps cut off), counted."""
    counts = {}
    for line in process.log_path.read_text(errors="replace").splitlines():
        if " WARNING " in line or " ERROR " in line or " CRITICAL " in line:
            text = line.split(" ", 2)[-1]
            counts[text] = counts.get(text, 0) + 1
    return counts


def open_records(harness):
    """Return how many stream records are still open."""
    out = harness.shell("from webapp.models import Stream\n"
                        "print(Stream.objects.filter(ended__isnull=True).count())")
    return int(out.strip().splitlines()[-1])


def end_reasons(harness, task_ids):
    """Count the recorded task ends by their first word(s)."""
    counts = {}
    for task_id in task_ids:
        value = harness.task_end(task_id)
        key = "none (discarded as revoked before it ran)" if value is None else \
            value.split(" ", 1)[1].split(":")[0].split(" (")[0]
        counts[key] = counts.get(key, 0) + 1
    return counts


def quantiles(values):
    """p50, p90 and max of durations in seconds, as whole milliseconds."""
    if not values:
        return {"p50": None, "p90": None, "max": None}
    ordered = sorted(values)

    def pick(q):
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000)

    return {"p50": pick(0.5), "p90": pick(0.9), "max": round(ordered[-1] * 1000)}


def mib(kib):
    """KiB as MiB text."""
    return f"{kib / 1024:.1f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=24,
                        help="worker processes (each open stream holds one)")
    parser.add_argument("--warmup", type=int, default=1000,
                        help="uncounted cycles first, until the heaps reach working size")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "soak.json"))
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="tailboard-soak-")
    harness = Harness(workdir, STREAM_MAX_PER_USER=args.parallel * 5,
                      STREAM_MAX_TOTAL=args.parallel * 10, LOG_LEVEL="WARNING")
    stop_writer = threading.Event()
    try:
        password = harness.create_user("soak", superuser=True)
        harness.worker = harness.start_worker(concurrency=args.concurrency)
        harness.web = harness.start_daphne()
        cookie = harness.login(harness.web.base_url, "soak", password)
        log = Path(workdir) / "soak.log"
        log.write_text("")
        source = harness.add_log("soak", log)
        threading.Thread(target=writer, args=(log, stop_writer), daemon=True).start()
        url = "ws" + harness.web.base_url[4:] + f"/ws/tailf/{source}/?lines=5"
        headers = {"Origin": harness.web.base_url, "Cookie": cookie}
        time.sleep(1)

        before = snapshot(harness, log)
        print(f"soak: {args.cycles} cycles, {args.parallel} at a time, worker concurrency "
              f"{args.concurrency}; warm-up {args.warmup} cycles", flush=True)
        asyncio.run(soak(harness, url, headers, args.warmup, args.parallel, lambda n: None))
        settle(harness)
        warm = snapshot(harness, log)
        samples = []

        def progress(done):
            figures = snapshot(harness, log)
            samples.append({"cycles": done, "daphne_rss_kib": figures["daphne_rss_kib"],
                            "daphne_fds": figures["daphne_fds"],
                            "worker_main_rss_kib": figures["worker_main_rss_kib"],
                            "worker_child_rss_kib_mean": figures["worker_child_rss_kib_mean"]})
            print(f"  {done:5d} cycles  Daphne RSS {mib(figures['daphne_rss_kib'])} MiB, "
                  f"{figures['daphne_fds']} fds; worker RSS {mib(figures['worker_main_rss_kib'])}"
                  f" MiB + children {mib(figures['worker_child_rss_kib_mean'])} MiB each",
                  flush=True)

        started = time.monotonic()
        stats = asyncio.run(soak(harness, url, headers, args.cycles, args.parallel, progress))
        elapsed = time.monotonic() - started
        settle_seconds = settle(harness, log, args.concurrency)
        after = snapshot(harness, log)
        explain_leaks(harness, after)

        inspect = harness.celery.control.inspect(destination=[harness.worker.hostname],
                                                 timeout=2.0)
        active = sum(len(t) for t in (inspect.active() or {}).values())
        reserved = sum(len(t) for t in (inspect.reserved() or {}).values())
        queued = harness.redis.llen("tailf")
        leases = len(harness.redis.keys("tailboard:lease:*"))
        still_open = open_records(harness)
        survivors = set(warm["worker_child_pids"]) & set(after["worker_child_pids"])
        # Pool processes now outlive their tasks (orderly revoke): one that had not run a
        # task yet at the warm-up gains the per-process Redis connection with its first, so
        # each survivor is held to the most any child held of each kind after the warm-up.
        steady = {}
        for fds in warm["worker_child_fds"].values():
            for kind, count in fds.items():
                steady[kind] = max(steady.get(kind, 0), count)
        grew = {pid: {kind: after["worker_child_fds"][pid][kind] - steady.get(kind, 0)
                      for kind in after["worker_child_fds"][pid]
                      if after["worker_child_fds"][pid][kind] > steady.get(kind, 0)}
                for pid in survivors}
        grew = {pid: kinds for pid, kinds in grew.items() if kinds}
        children_warm, children_after = child_fd_summary(warm), child_fd_summary(after)
        main_sockets = after["worker_main_fds"]["socket"]
        half = samples[len(samples) // 2 - 1] if len(samples) >= 2 else None
        last = samples[-1] if samples else None
        seconds = stats["seconds"]
        result = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "cycles": args.cycles, "parallel": args.parallel,
            "worker_concurrency": args.concurrency, "warmup_cycles": args.warmup,
            "completed": sum(stats["modes"].values()), "errors": stats["errors"][:20],
            "error_count": len(stats["errors"]), "modes": stats["modes"],
            "ended_before_running": stats["early"],
            "elapsed_s": round(elapsed, 1),
            "cycles_per_s": round(len(seconds) / elapsed, 1) if elapsed else None,
            "cycle_ms": quantiles(seconds),
            "to_queued_ms": quantiles(stats["queued"]),
            "to_running_ms": quantiles(stats["running"]),
            "settle_s": round(settle_seconds, 1),
            "tasks": len(stats["task_ids"]), "task_ends": end_reasons(harness, stats["task_ids"]),
            "after": {"active_tasks": active, "reserved_tasks": reserved,
                      "queued_messages": queued, "leases": leases, "open_records": still_open},
            "worker_children": {"warm": len(warm["worker_child_pids"]),
                                "after": len(after["worker_child_pids"]),
                                "same_pids": len(survivors)},
            "worker_child_fds_max": {"warm": children_warm, "after": children_after,
                                     "survivors_that_grew": grew},
            "worker_main_fds": {"warm": warm["worker_main_fds"], "after": after["worker_main_fds"]},
            "daphne_fds": {"start": before["daphne_fds"], "warm": warm["daphne_fds"],
                           "after": after["daphne_fds"]},
            "worker_main_rss_kib": {k: snap["worker_main_rss_kib"] for k, snap in
                                    (("start", before), ("warm", warm), ("after", after))},
            "worker_child_rss_kib_mean": {k: snap["worker_child_rss_kib_mean"] for k, snap in
                                          (("start", before), ("warm", warm), ("after", after))},
            "daphne_rss_kib": {k: snap["daphne_rss_kib"] for k, snap in
                               (("start", before), ("warm", warm), ("after", after))},
            "samples": samples,
            "log_findings": {"worker": log_findings(harness.worker),
                             "daphne": log_findings(harness.web)},
        }

        def flat(key):
            """No more than 2 % growth of a sampled figure over the second half of the run."""
            return bool(half and last and last[key] <= half[key] * 1.02)

        checks = {
            "every cycle completed": not stats["errors"],
            "0 active stream tasks": active == 0,
            "0 reserved tasks, 0 queued messages": reserved == 0 and queued == 0,
            "0 leases left": leases == 0,
            "0 stream records left open": still_open == 0,
            "0 leaked fds in worker children (no log fd, no socket beyond the inherited ones, "
            "no survivor grew)": not grew and children_after["soak_log"] == 0
                and children_after["socket"] <= main_sockets
                and sum(after["worker_main_fds"].values())
                <= sum(warm["worker_main_fds"].values()) + 2,
            "worker RSS not growing (main: <= 2 % over the 2nd half; children: <= +10 %)":
                flat("worker_main_rss_kib") and after["worker_child_rss_kib_mean"]
                <= warm["worker_child_rss_kib_mean"] * 1.10,
            "Daphne RSS not growing (<= 2 % over the 2nd half)": flat("daphne_rss_kib"),
        }
        result["checks"] = checks
        print_table(result, checks)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwritten to {args.out}")
        return 0 if all(checks.values()) else 1
    finally:
        stop_writer.set()
        harness.close()
        shutil.rmtree(workdir, ignore_errors=True)


def print_table(result, checks):
    """Print the figures and the checks."""
    def span(figures, unit=" MiB", scale=mib):
        return " -> ".join(scale(figures[k]) for k in ("start", "warm", "after")) + unit

    fds = result["worker_child_fds_max"]
    rows = [
        ("cycles completed", f"{result['completed']} of {result['cycles']} "
                             f"(errors: {result['error_count']})"),
        ("ends: stop / close / drop", " / ".join(str(result["modes"][m]) for m in MODES)),
        ("ended before running", str(result["ended_before_running"])),
        ("elapsed", f"{result['elapsed_s']} s ({result['cycles_per_s']} cycles/s)"),
        ("cycle, ms (p50/p90/max)", "{p50}/{p90}/{max}".format(**result["cycle_ms"])),
        ("connect to queued, ms", "{p50}/{p90}/{max}".format(**result["to_queued_ms"])),
        ("connect to running, ms", "{p50}/{p90}/{max}".format(**result["to_running_ms"])),
        ("settled after", f"{result['settle_s']} s"),
        ("task ends", ", ".join(f"{k}: {v}" for k, v in sorted(result["task_ends"].items()))),
        ("active / reserved / queued", "{active_tasks} / {reserved_tasks} / {queued_messages}"
                                       .format(**result["after"])),
        ("leases / open records", "{leases} / {open_records}".format(**result["after"])),
        ("worker children (same pids)", "{warm} -> {after} ({same_pids})".format(
            **result["worker_children"])),
        ("max fds in a child, warm", ", ".join(f"{k} {v}" for k, v in fds["warm"].items())),
        ("max fds in a child, end", ", ".join(f"{k} {v}" for k, v in fds["after"].items())),
        ("worker main fds", "{} -> {}".format(*(sum(result["worker_main_fds"][k].values())
                                                for k in ("warm", "after")))),
        ("Daphne fds", span(result["daphne_fds"], "", str)),
        ("worker main RSS", span(result["worker_main_rss_kib"])),
        ("worker child RSS (mean)", span(result["worker_child_rss_kib_mean"])),
        ("Daphne RSS", span(result["daphne_rss_kib"])),
        ("log warnings/errors: worker, Daphne", ", ".join(
            str(sum(result["log_findings"][name].values())) for name in ("worker", "daphne"))),
    ]
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    print()
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    for error in result["errors"]:
        print(f"  {error}")
    for name, findings in result["log_findings"].items():
        for text, count in sorted(findings.items(), key=lambda item: -item[1])[:10]:
            print(f"  {name} log, {count}x: {text[:200]}")


if __name__ == "__main__":
    sys.exit(main())
