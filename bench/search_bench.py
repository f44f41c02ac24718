"""History-search benchmark: the engine against GNU grep on a large log, plain and gzipped.

Run: .venv/bin/python bench/search_bench.py [--mib 600] [--runs 5] [--no-stack]
Writes a log of `--mib` MiB with sparse matches of `FATAL-TOKEN-[0-9]` (one line in 100,000)
in a temporary folder (deleted at the end) and gzips a copy. Then, `--runs` times in turn
(page cache warm for everyone): `grep -c`, the engine in this process, `zgrep -c`, the engine
on the gzip copy; and through a whole installation (Redis, a prefork worker, Daphne):
open → done of a search over the log, open → done over an empty log (the stream's own
start and end), and `grep -c` again in the same moment. Checks that all agree on the number
of matches and prints best and median seconds, CPU seconds, GB/s and the ratio to grep,
with the load average; writes bench/results/search.json.
"""

import argparse
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import re2  # noqa: E402

from bench.common import write_results  # noqa: E402
from tailf.search import scan  # noqa: E402

PATTERN = "FATAL-TOKEN-[0-9]"
MATCH_EVERY = 100_000


def write_log(path, size, seed=7):
    """Write a log-like file of about `size` bytes; every MATCH_EVERY-th line matches."""
    rng = random.Random(seed)
    paths = ["/api/v1/items", "/login", "/static/app.js", "/api/v1/users/42", "/healthz"]
    levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN"]
    target, written, number = size, 0, 0
    with open(path, "w", buffering=1 << 22) as handle:
        while written < target:
            lines = []
            for _ in range(10_000):
                number += 1
                if number % MATCH_EVERY == 0:
                    text = f"FATAL-TOKEN-{number % 10} upstream timed out after 30s"
                else:
                    text = (f"{rng.choice(levels)} GET {rng.choice(paths)} "
                            f"{rng.choice([200, 200, 304, 404])} {rng.randint(1, 999)}ms "
                            f"user={rng.randint(1, 5000)} ua=Mozilla/5.0")
                lines.append(f"2024-05-01T12:{number // 60 % 60:02d}:{number % 60:02d}Z "
                             f"{text} req={number:010d}\n")
            block = "".join(lines)
            handle.write(block)
            written += len(block)
    return number


def timed(call):
    """Run `call`; return (its result, wall seconds, CPU seconds of this process and children)."""
    def cpu():
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    cpu_before, started = cpu(), time.perf_counter()
    result = call()
    return result, time.perf_counter() - started, cpu() - cpu_before


def grep_count(command, path):
    """Return the count printed by `grep -c`-like command."""
    out = subprocess.run(command + [PATTERN, str(path)], capture_output=True, text=True)
    if out.returncode not in (0, 1):
        raise RuntimeError(out.stderr)
    return int(out.stdout.strip())


def engine_count(path):
    """Scan one file with the engine to its end; return the number of matches."""
    done = None
    for event in scan([str(path)], re2.compile(PATTERN), max_matches=10 ** 9,
                      live=not str(path).endswith(".gz")):
        if event[0] == "done":
            done = event
    return done[3]


def measure_websocket_search(source_id, pattern, path=None, harness=None, quiet=False):
    """End-to-end figure through the real stack: open `/ws/tailf/<id>/?search=<pattern>`.

    Starts an installation (Redis, a prefork worker, Daphne; tests/harness.py) unless
    `harness` is given, adds `path` as a log source when `source_id` is None, connects with
    the admin's session cookie and the page's Origin, acknowledges every frame like the
    dashboard, and times from just before the connect to the first `matches` frame and to
    the `progress` frame with `"done": true`. Prints both unless `quiet`; returns (seconds to
    done, matches).
    """
    import asyncio
    import json
    from urllib.parse import quote

    from websockets.asyncio.client import connect

    if harness is None:
        from tests.harness import started_installation

        with tempfile.TemporaryDirectory(prefix="search-bench-stack-") as workdir, \
                started_installation(Path(workdir), workers=({"concurrency": 2},)) as system:
            return measure_websocket_search(source_id, pattern, path, system, quiet)
    if source_id is None:
        source_id = harness.add_log("search-bench", path)
    base = harness.web.base_url
    url = f"ws{base[4:]}/ws/tailf/{source_id}/?search={quote(pattern)}"

    async def run():
        started = time.perf_counter()
        first, received = None, 0
        async with connect(url, additional_headers={"Origin": base,
                                                    "Cookie": harness.admin_cookie},
                           max_size=2 ** 21, open_timeout=30) as socket:
            await socket.send('{"action":"ack","seq":-1}')
            while True:
                message = json.loads(await asyncio.wait_for(socket.recv(), 900))
                if isinstance(message.get("seq"), int):
                    await socket.send('{"action":"ack","seq":%d}' % message["seq"])
                kind = message.get("type")
                if kind == "matches":
                    received += len(message["matches"])
                    if first is None:
                        first = time.perf_counter() - started
                elif kind == "progress" and message.get("done"):
                    return time.perf_counter() - started, first, message["matches"], received
                elif kind == "status" and message.get("state") in ("error", "stopped"):
                    raise RuntimeError(f"search stream ended early: {message}")

    done, first, count, received = asyncio.run(run())
    if received != count:
        raise RuntimeError(f"progress counted {count} matches but {received} arrived")
    first_text = "no match" if first is None else f"{first:.3f}s"
    if not quiet:
        print(f"  websocket search: open -> first match {first_text}, open -> done {done:.3f}s "
              f"({count} matches)", flush=True)
    return done, count


def interleaved(calls, runs):
    """Run each (name, call) once per round, `runs` rounds; return {name: (result, [(wall,
    cpu), ...])}. Taking turns puts every measurement in the same moments of a busy box."""
    found = {name: (None, []) for name, _ in calls}
    for _ in range(runs):
        for name, call in calls:
            result, wall, cpu = timed(call)
            found[name] = (result, found[name][1] + [(wall, cpu)])
            print(f"  {name}: {wall:.3f}s (CPU {cpu:.3f}s)", flush=True)
    return found


def stack_runs(log, empty, runs):
    """open → done through a whole installation, for the log and an empty log, with grep -c."""
    from tests.harness import started_installation

    with tempfile.TemporaryDirectory(prefix="search-bench-stack-") as workdir, \
            started_installation(Path(workdir), workers=({"concurrency": 2},)) as system:
        sources = {"big": system.add_log("search-bench", log),
                   "empty": system.add_log("search-bench-empty", empty)}
        measure_websocket_search(sources["empty"], PATTERN, harness=system, quiet=True)  # warm
        return interleaved([
            ("grep -c (plain, beside the stack)", lambda: grep_count(["grep", "-c"], log)),
            ("open -> done (plain)", lambda: measure_websocket_search(
                sources["big"], PATTERN, harness=system, quiet=True)[1]),
            ("open -> done (empty log)", lambda: measure_websocket_search(
                sources["empty"], PATTERN, harness=system, quiet=True)[1]),
        ], runs)


def main():
    """Write the log, run every measurement, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=600)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-stack", action="store_true",
                        help="skip the measurements through Daphne and the worker")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="search-bench-"))
    try:
        log = folder / "app.log"
        empty = folder / "empty.log"
        empty.write_bytes(b"")
        started = time.perf_counter()
        lines = write_log(log, args.mib * 1024 * 1024)
        gz = folder / "app.log.1.gz"
        with open(gz, "wb") as out:
            subprocess.run(["gzip", "-c", str(log)], stdout=out, check=True)
        size = log.stat().st_size
        print(f"wrote {lines} lines, {size / 2 ** 20:.0f} MiB "
              f"(gzip {gz.stat().st_size / 2 ** 20:.0f} MiB) in "
              f"{time.perf_counter() - started:.1f}s", flush=True)
        grep_count(["grep", "-c"], log)  # warm the page cache
        load_before = os.getloadavg()
        found = interleaved([
            ("grep -c (plain)", lambda: grep_count(["grep", "-c"], log)),
            ("engine (plain)", lambda: engine_count(log)),
            ("zgrep -c (gzip)", lambda: grep_count(["zgrep", "-c"], gz)),
            ("engine (gzip)", lambda: engine_count(gz)),
        ], args.runs)
        if not args.no_stack:
            found.update(stack_runs(log, empty, args.runs))
        load_after = os.getloadavg()
        report(found, size, args, load_before, load_after)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


BASES = {"engine (plain)": "grep -c (plain)", "engine (gzip)": "zgrep -c (gzip)",
         "open -> done (plain)": "grep -c (plain, beside the stack)",
         "open -> done (empty log)": "grep -c (plain, beside the stack)"}


def report(found, size, args, load_before, load_after):
    """Print the table (ratios of bests, and the median of the ratios run by run)."""
    print(f"\nload average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
          f"({os.cpu_count()} CPUs); best and median of {args.runs} runs taken in turn")
    print(f"{'measurement':34} {'matches':>7} {'best s':>7} {'median s':>8} {'CPU s':>6} "
          f"{'GB/s':>5} {'x grep':>6} {'x grep (median)':>15}")
    rows = {}
    for name, (count, runs) in found.items():
        walls = [wall for wall, _ in runs]
        base = found.get(BASES.get(name, ""), (None, None))[1]
        ratio = min(walls) / min(wall for wall, _ in base) if base else None
        paired = statistics.median(wall / other for (wall, _), (other, _) in zip(runs, base, strict=False)) \
            if base else None
        rows[name] = {"matches": count, "wall": walls, "cpu": [cpu for _, cpu in runs],
                      "x_grep_best": ratio, "x_grep_median_of_pairs": paired}
        print(f"{name:34} {count:7d} {min(walls):7.3f} {statistics.median(walls):8.3f} "
              f"{min(cpu for _, cpu in runs):6.3f} "
              f"{'' if 'empty' in name else f'{size / min(walls) / 1e9:5.2f}':>5} "
              f"{'' if ratio is None else f'{ratio:6.2f}':>6} "
              f"{'' if paired is None else f'{paired:15.2f}':>15}")
    counts = {count for name, (count, _) in found.items() if "empty" not in name}
    print("\ncounts agree" if len(counts) == 1 else f"\nCOUNTS DIFFER: {counts}")
    print("GB/s is of the uncompressed size for every row; CPU s of the stack rows is this "
          "process's only (the worker and Daphne are apart).")
    path = write_results("search.json", {
        "pattern": PATTERN, "bytes": size, "runs": args.runs, "rows": rows,
        "loadavg_before": load_before, "loadavg_after": load_after,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "kernel": platform.release()},
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
