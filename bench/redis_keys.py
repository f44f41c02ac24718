"""Churn leaves Redis clean: what 1,000 stream start/stop cycles leave in Redis, key by key.

Run: .venv/bin/python bench/redis_keys.py [--cycles 1000] [--warmup 100] [--parallel 20]
                                         [--restarts 3]

Starts Redis, two prefork workers run as in production (with gossip and mingle, unlike the
tests' workers) and Daphne (`tests/harness.py`), runs `--warmup` cycles of `bench/soak.py`
(stop, clean close, dropped connection, one in ten before `running`), restarts the second
worker `--restarts` times (each start is a mingle round: a broadcast and the replies), lets
the system settle and takes a census of every key (SCAN, TYPE, TTL, DBSIZE). Then it runs
`--cycles` more, restarts the worker again and takes the census again. Keys are grouped by
pattern (ids and numbers replaced by `*`). Exit 1 when a group of keys without a TTL has
more keys afterwards, or more members in its sets, sorted sets or lists; groups with a TTL
may grow (they expire: the table says by when), and so may the fields of the metrics hashes
(one per label set and histogram bucket: bounded).
Prints a table; writes bench/results/redis_keys.json.
"""

import argparse
import asyncio
import json
import re
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import soak as churn  # noqa: E402

from tests.harness import Harness  # noqa: E402

ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
                r"|[0-9a-f]{16,}|[A-Za-z0-9]{12,}(?=!)|\d+")


def pattern(key):
    """The key with ids, random channel names and numbers replaced by `*`."""
    return ID.sub("*", key)


def census(client):
    """Return {pattern: {"keys", "without_ttl", "max_ttl_s", "type", "members"}} and DBSIZE."""
    groups = defaultdict(lambda: {"keys": 0, "without_ttl": 0, "max_ttl_s": 0, "type": "",
                                  "members": 0})
    for raw in client.scan_iter(count=1000):
        key = raw.decode(errors="replace")
        pipe = client.pipeline(transaction=False)
        pipe.type(raw).ttl(raw)
        kind, ttl = pipe.execute()
        kind = kind.decode()
        size = {"set": client.scard, "zset": client.zcard, "hash": client.hlen,
                "list": client.llen}.get(kind, lambda _key: 1)(raw)
        group = groups[pattern(key)]
        group["keys"] += 1
        group["type"] = kind
        if kind == "string" and "sample" not in group:
            group["sample"] = client.get(raw)[:300].decode(errors="replace")
        group["members"] += size
        if ttl == -1:
            group["without_ttl"] += 1
        elif ttl > 0:
            group["max_ttl_s"] = max(group["max_ttl_s"], ttl)
    return dict(groups), client.dbsize()


def production_worker(harness, name, concurrency):
    """Start a worker as docker-compose runs one (gossip and mingle on); wait until it serves."""
    log_path = harness.workdir / f"worker-{name}.log"
    process = harness.spawn(f"worker-{name}", [
        sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--pool=prefork",
        "-c", str(concurrency), "-Q", "tailf,feeds", "-n", f"{name}@tailboard-keys",
        "-l", "info"])
    process.hostname = f"{name}@tailboard-keys"
    process.log_start = log_path.stat().st_size if log_path.exists() else 0
    return harness.wait_worker(process, timeout=120)


def restart(harness, process, name, concurrency, times):
    """Stop and start a worker `times` times (each start runs mingle); return the last one."""
    for _ in range(times):
        harness.stop(process)
        process = production_worker(harness, name, concurrency)
    return process


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "redis_keys.json"))
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="tailboard-keys-")
    harness = Harness(workdir, STREAM_MAX_PER_USER=args.parallel * 5,
                      STREAM_MAX_TOTAL=args.parallel * 10, LOG_LEVEL="WARNING")
    stop_writer = threading.Event()
    try:
        password = harness.create_user("keys", superuser=True)
        harness.worker = production_worker(harness, "w1", args.concurrency)
        second = production_worker(harness, "w2", 2)
        harness.web = harness.start_daphne()
        cookie = harness.login(harness.web.base_url, "keys", password)
        log = Path(workdir) / "keys.log"
        log.write_text("")
        source = harness.add_log("keys", log)
        threading.Thread(target=churn.writer, args=(log, stop_writer), daemon=True).start()
        url = "ws" + harness.web.base_url[4:] + f"/ws/tailf/{source}/?lines=5"
        headers = {"Origin": harness.web.base_url, "Cookie": cookie}

        print(f"redis keys: warm-up {args.warmup} cycles, {args.parallel} at a time", flush=True)
        warm_stats = asyncio.run(churn.soak(harness, url, headers, args.warmup, args.parallel,
                                            lambda n: None))
        second = restart(harness, second, "w2", 2, args.restarts)
        churn.settle(harness)
        before, size_before = census(harness.redis)

        print(f"redis keys: {args.cycles} cycles", flush=True)
        started = time.monotonic()
        stats = asyncio.run(churn.soak(harness, url, headers, args.cycles, args.parallel,
                                       lambda n: print(f"  {n} cycles", flush=True)))
        elapsed = time.monotonic() - started
        second = restart(harness, second, "w2", 2, args.restarts)
        churn.settle(harness)
        after, size_after = census(harness.redis)
    finally:
        stop_writer.set()
        harness.close()

    rows = []
    for name in sorted(set(before) | set(after)):
        was, now = before.get(name, {}), after.get(name, {})
        rows.append({"pattern": name, "type": now.get("type") or was.get("type"),
                     "keys_before": was.get("keys", 0), "keys_after": now.get("keys", 0),
                     "without_ttl_before": was.get("without_ttl", 0),
                     "without_ttl_after": now.get("without_ttl", 0),
                     "members_before": was.get("members", 0),
                     "members_after": now.get("members", 0),
                     "max_ttl_s": now.get("max_ttl_s", 0)})
    # A group of keys without a TTL fails when it has more keys, or when its sets, sorted sets
    # or lists hold more members (ids piling up). Hashes are the metrics (one field per label
    # set and bucket) and the worker registry (one per worker name): bounded, reported.
    grew = [row for row in rows if row["without_ttl_after"] > row["without_ttl_before"]
            or (row["without_ttl_after"] and row["type"] in ("set", "zset", "list")
                and row["members_after"] > row["members_before"])]
    result = {"cycles": args.cycles, "warmup": args.warmup, "parallel": args.parallel,
              "worker_restarts": 2 * args.restarts, "completed": sum(stats["modes"].values()),
              "errors": stats["errors"][:20] + warm_stats["errors"][:5],
              "elapsed_s": round(elapsed, 1), "dbsize_before": size_before,
              "dbsize_after": size_after, "keys": rows,
              "grew_without_ttl": [row["pattern"] for row in grew]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))

    print(f"\n{result['completed']} cycles in {elapsed:.0f} s, {len(stats['errors'])} errors; "
          f"DBSIZE {size_before} -> {size_after}")
    print(f"{'pattern':58} {'type':5} {'keys':>11} {'no TTL':>9} {'members':>13} {'max TTL':>8}")
    for row in rows:
        print(f"{row['pattern'][:58]:58} {row['type'][:5]:5} "
              f"{row['keys_before']:>5}->{row['keys_after']:<5} "
              f"{row['without_ttl_before']:>3}->{row['without_ttl_after']:<4} "
              f"{row['members_before']:>6}->{row['members_after']:<6} {row['max_ttl_s']:>7}s")
    if grew:
        print("GREW without a TTL: " + ", ".join(result["grew_without_ttl"]))
    else:
        print("no key without a TTL grew")
    return 1 if grew or stats["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
