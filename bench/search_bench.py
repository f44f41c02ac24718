"""History-search benchmark: the engine against GNU grep on a large log, plain and gzipped.

Run: .venv/bin/python bench/search_bench.py [--mb 600] [--runs 3] [--keep DIR]
Writes a log of about `--mb` MB with sparse matches in a temporary folder (deleted at the
end), gzips a copy, then times `grep -c`, `zgrep -c` and the engine (in this process, same
pattern) on both, checks that all agree on the number of matches, and prints seconds, GB/s
and the ratio to grep (best of `--runs`; page cache warm for everyone).
"""

import argparse
import random
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

from tailf.search import scan  # noqa: E402

PATTERN = "ERROR 5[0-9][0-9] upstream"
MATCH_EVERY = 50_000


def write_log(path, megabytes, seed=7):
    """Write a log-like file of about `megabytes` MB; every MATCH_EVERY-th line matches."""
    rng = random.Random(seed)
    paths = ["/api/v1/items", "/login", "/static/app.js", "/api/v1/users/42", "/healthz"]
    levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN"]
    target, written, number = megabytes * 1_000_000, 0, 0
    with open(path, "w", buffering=1 << 22) as handle:
        while written < target:
            lines = []
            for _ in range(10_000):
                number += 1
                if number % MATCH_EVERY == 0:
                    text = f"ERROR 50{number % 10} upstream timed out after 30s"
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


def timed(call, runs):
    """Run `call` `runs` times; return (its result, best seconds, median seconds)."""
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return result, min(times), statistics.median(times)


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


def measure_websocket_search(source_id, pattern, path=None, harness=None):
    """End-to-end figure through the real stack: open `/ws/tailf/<id>/?search=<pattern>`.

    Starts an installation (Redis, a prefork worker, Daphne; tests/harness.py) unless
    `harness` is given, adds `path` as a log source when `source_id` is None, connects with
    the admin's session cookie and the page's Origin, acknowledges every frame like the
    dashboard, and times from just before the connect to the first `matches` frame and to
    the `progress` frame with `"done": true`. Prints both; returns (seconds to done, matches).
    """
    import asyncio
    import json
    from urllib.parse import quote

    from websockets.asyncio.client import connect

    if harness is None:
        from tests.harness import started_installation

        with tempfile.TemporaryDirectory(prefix="search-bench-stack-") as workdir, \
                started_installation(Path(workdir), workers=({"concurrency": 2},)) as system:
            return measure_websocket_search(source_id, pattern, path, system)
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
    print(f"  websocket search: open -> first match {first_text}, open -> done {done:.3f}s "
          f"({count} matches)", flush=True)
    return done, count


def main():
    """Write the log, run every measurement, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=600)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="search-bench-"))
    try:
        log = folder / "app.log"
        started = time.perf_counter()
        lines = write_log(log, args.mb)
        gz = folder / "app.log.1.gz"
        with open(gz, "wb") as out:
            subprocess.run(["gzip", "-c", str(log)], stdout=out, check=True)
        print(f"wrote {lines} lines, {log.stat().st_size / 1e6:.0f} MB "
              f"(gzip {gz.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f}s",
              flush=True)
        grep_count(["grep", "-c"], log)  # warm the page cache
        rows = []
        for name, call, path in [
            ("grep -c (plain)", lambda: grep_count(["grep", "-c"], log), log),
            ("engine (plain)", lambda: engine_count(log), log),
            ("zgrep -c (gzip)", lambda: grep_count(["zgrep", "-c"], gz), gz),
            ("engine (gzip)", lambda: engine_count(gz), gz),
        ]:
            count, best, median = timed(call, args.runs)
            rows.append((name, count, best, median, log.stat().st_size))
            print(f"  {name}: {best:.3f}s", flush=True)
        seconds, count = measure_websocket_search(None, PATTERN, log)
        rows.append(("websocket search (plain)", count, seconds, seconds, log.stat().st_size))
        grep_best = {"plain": rows[0][2], "gzip": rows[2][2]}
        print()
        print(f"{'measurement':26} {'matches':>8} {'best s':>8} {'median s':>9} "
              f"{'GB/s':>6} {'x grep':>7}")
        for name, count, best, median, size in rows:
            base = grep_best["gzip" if "gzip" in name else "plain"]
            print(f"{name:26} {count:8d} {best:8.3f} {median:9.3f} {size / best / 1e9:6.2f} "
                  f"{best / base:7.2f}")
        counts = {row[1] for row in rows}
        print("\ncounts agree" if len(counts) == 1 else f"\nCOUNTS DIFFER: {counts}")
        print("GB/s is of the uncompressed size for every row.")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
