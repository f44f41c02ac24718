"""Required-literal prefilter benchmark: CPU time of a history search with and without it.

Run: .venv/bin/python bench/literal_bench.py [--runs 3]
Two checks, each on a log written to a temporary folder (deleted at the end), timed in CPU
seconds of this process (best of `--runs`):
- absent literal: `a[ab]{20}c` against `a[ab]{20}[cd]` on 8000 lines of random a/b. RE2's DFA
  gives up on both and crawls at NFA speed; the first has a required "c" that the file does
  not hold, so the prefilter skips it with memchr. Expected: at least 5 times faster.
- dense literal: a literal found in every line of 100,000; the prefilter hands the search
  back to RE2. Expected: no more than 1.5 times (+ 20 ms) the time without the prefilter.
Prints the timings and exits 1 when a check fails. The unit tests (tests/unit/
test_search_literal.py) prove the results are the same with and without the prefilter and
which searches use it; this script measures what it saves.
"""

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import re2  # noqa: E402

from tailf.literal import required_literals  # noqa: E402
from tailf.search import scan  # noqa: E402
from tests.prefilter import search_all  # noqa: E402


def cpu_best(runs, work):
    """The least CPU time (seconds) of `runs` calls of work(); work's last result too."""
    best, result = None, None
    for _ in range(runs):
        started = time.process_time()
        result = work()
        spent = time.process_time() - started
        best = spent if best is None else min(best, spent)
    return best, result


def absent_literal(folder, runs):
    """The literal the text lacks: the search skips what RE2 would crawl through."""
    rng = random.Random(5)
    path = folder / "absent.log"
    path.write_bytes(b"".join(
        bytes(rng.choice(b"ab") for _ in range(100)) + b"\n" for _ in range(2000)) * 4)
    timings = {}
    for pattern in ("a[ab]{20}c", "a[ab]{20}[cd]"):  # the same work for RE2; one needs a "c"
        timings[pattern], events = cpu_best(
            runs, lambda pattern=pattern: list(scan([str(path)], re2.compile(pattern),
                                                     live=False)))
        assert events[-1][3] == 0
    ok = timings["a[ab]{20}c"] < timings["a[ab]{20}[cd]"] / 5
    return ok, timings


def dense_literal(folder, runs):
    """A literal in every line: the search hands back to RE2 and costs about the same."""
    path = folder / "dense.log"
    path.write_bytes(b"".join(b"2024-05-01 INFO GET /api/v1/items req=%010d\n" % n
                              for n in range(100_000)))
    pattern = re2.compile("INFO GET /api/v1/items req=00000[1x][0-9]{2}[7y][0-4]$")
    assert required_literals(pattern) == ["INFO GET /api/v1/items req=00000"]
    timings = {}
    for literal in (True, False):
        timings[literal], events = cpu_best(runs, lambda literal=literal: search_all(
            path, pattern, literal, live=False, max_matches=10 ** 6))
        assert events[-1][3] == 500
    ok = timings[True] < 1.5 * timings[False] + 0.02
    return ok, {"with prefilter": timings[True], "without": timings[False]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory() as folder:
        for check in (absent_literal, dense_literal):
            ok, timings = check(Path(folder), args.runs)
            shown = ", ".join(f"{name}: {seconds * 1000:.1f} ms CPU"
                              for name, seconds in timings.items())
            print(f"{check.__name__}: {'ok' if ok else 'FAILED'} ({shown})")
            failed |= not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
