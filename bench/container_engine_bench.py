"""The container engine alone beside the file engine, in one process: records (lines) per second.

Run: .venv/bin/python bench/container_engine_bench.py [--lines N] [--rounds R] [--profile]
Each round, three followers in turn, each on its own temp folder: a `Follower` over a plain
log (`TIME NNN... MESSAGE`, ~130 bytes), a `ContainerFollower` over a Kubernetes/CRI layout
whose log holds the same lines as CRI records (`TIME stdout F NNN... MESSAGE`), and the same
with every tenth record on stderr. N lines are appended at once after `start()`; the figure is
N over the time `poll()` takes to hand them all over (no Redis, no viewer). `--profile` prints
cProfile's top functions of each. Prints one line per round with the load average.
"""

import argparse
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from containers.follow import ContainerFollower  # noqa: E402
from containers.layout import CriLayout  # noqa: E402
from tailf.follow import Follower  # noqa: E402

PAD = "x" * 80


def cri_record(n, every=0):
    """One CRI record as conmon writes it (every `every`-th on stderr)."""
    stream = "stderr" if every and n % every == 0 else "stdout"
    return "2026-12-06T15:12:34.%09d+00:00 %s F %012d %s\n" % (n, stream, n, PAD)


def plain_line(n):
    """The same line without the CRI head."""
    return "2026-12-06T15:12:34.%09d+00:00 %012d %s\n" % (n, n, PAD)


def run(kind, total, every=0, profile=False):
    """Lines (records) per second that one follower's poll() hands over."""
    folder = tempfile.mkdtemp(prefix="tailboard-engine-bench-")
    if kind == "file":
        path = os.path.join(folder, "app.log")
        open(path, "w").close()
        follower = Follower(path, backlog=0, roots=[folder])
        data = "".join(plain_line(n) for n in range(total))
    else:
        path = os.path.join(folder, "pods", "ns_w_u1", "app", "0.log")
        os.makedirs(os.path.dirname(path))
        open(path, "w").close()
        follower = ContainerFollower(CriLayout(os.path.join(folder, "pods"), "ns", "*"),
                                     backlog=0, roots=[folder])
        data = "".join(cri_record(n, every) for n in range(total))
    follower.start()
    with open(path, "a") as handle:
        handle.write(data)
    got = 0
    profiler = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    while got < total:
        for event in follower.poll():
            if event[0] == "lines":
                got += len(event[1]) if kind == "file" else len(event[1].lines)
    if profiler:
        profiler.disable()
    took = time.perf_counter() - start
    follower.close()
    shutil.rmtree(folder)  # the log: 65 MB for 500,000 lines
    if profiler:
        print(f"--- {kind}{f' (stderr every {every})' if every else ''}")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(8)
    return total / took


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    for _ in range(args.rounds):
        file = run("file", args.lines, profile=args.profile)
        cri = run("container", args.lines, profile=args.profile)
        mixed = run("container", args.lines, every=10, profile=args.profile)
        print(f"file {file:,.0f} lines/s  container {cri:,.0f} records/s ({cri / file:.0%})  "
              f"stderr every 10 {mixed:,.0f} records/s ({mixed / file:.0%})  "
              f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
