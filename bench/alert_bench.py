"""Alert rule load on the real system, side by side with a viewer's stream of the same log.

Run: .venv/bin/python bench/alert_bench.py [--rate 100000] [--seconds 20] [--cooldown 5] [--quick]
Starts Redis, a prefork worker on the alert queues with celery beat, a prefork worker for
streams, Daphne, a JSON webhook receiver on loopback, one rule whose pattern matches every line
and one real WebSocket viewer (acknowledging frames like the dashboard) on the same source; then
a second viewer whose stream filters the same pattern (`grep`); then appends lines at `--rate`
lines/s. Prints, for the rule task's pool process and each stream's, the CPU seconds per second
and the peak memory, with the rule / stream ratio; and for the rule
how many alerts arrived (one per cooldown is right) and what the last one said was suppressed.
The figures go to bench/results/alerts.json.
"""

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    Viewer,
    close_run,
    cpu_seconds,
    rss_kib,
    worker_child_of,
    write_results,
)
from tail_bench import open_viewer, start_writer  # noqa: E402

from tests.alertreceivers import WebhookServer  # noqa: E402
from tests.harness import Harness  # noqa: E402


def start_rule(harness, source_id, cooldown, hook):
    """Create a rule matching every line of the source; wait until it runs; return its pid."""
    rule_id = int(harness.shell(
        "from alerts.models import AlertRule, AlertDestination\n"
        f"r = AlertRule.objects.create(name='every line', kind='log', source_id={source_id},"
        f" pattern='x', cooldown={cooldown})\n"
        f"r.destinations.add(AlertDestination.objects.create(name='hook', url={hook.url!r}))\n"
        "print(r.pk)\n").strip().splitlines()[-1])

    def running():
        state = json.loads(harness.manage("alerts", "list", "--json"))[0]["state"]
        return "following" in state

    assert harness.wait_for(running, 60, 0.5), "the rule did not start"
    task_id = harness.redis.get(f"tailboard:alert:lease:{rule_id}").decode()
    return worker_child_of(harness, task_id)


async def measure(harness, args, workdir, hook):
    """Run the rule and the viewer on one log written at `rate`; return the figures."""
    password = harness.create_user("bench", superuser=True)
    log = workdir / "tb" / "busy.log"
    log.write_text("")
    source_id = harness.add_log("busy", str(log))
    rule_pid = await asyncio.to_thread(start_rule, harness, source_id, args.cooldown, hook)
    cookie = harness.login(harness.web.base_url, "bench", password)
    viewer, stop, task = await open_viewer(harness, source_id, cookie)
    stream_pid = await asyncio.to_thread(worker_child_of, harness, viewer.task_id)
    grep_viewer = Viewer(harness, f"/ws/tailf/{source_id}/?lines=0&grep=x", cookie)
    grep_task = asyncio.ensure_future(grep_viewer.run(stop))
    await asyncio.wait_for(grep_viewer.running.wait(), 30)
    grep_pid = await asyncio.to_thread(worker_child_of, harness, grep_viewer.task_id)
    assert len({rule_pid, stream_pid, grep_pid}) == 3, "two tasks share a pool process"
    pids = {"rule": rule_pid, "stream": stream_pid, "grep_stream": grep_pid}
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    rss_before = {name: rss_kib(pid) for name, pid in pids.items()}
    started = time.monotonic()
    total = int(args.rate * args.seconds)
    writer = start_writer(log, total, args.rate)
    peak = dict.fromkeys(pids, 0)
    while writer.poll() is None:
        for name, pid in pids.items():
            peak[name] = max(peak[name], rss_kib(pid))
        await asyncio.sleep(0.25)
    await asyncio.sleep(2)
    elapsed = time.monotonic() - started
    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    stop.set()
    await task
    await grep_task
    rows = {name: {"pid": pid, "cpu_s_per_s": round(cpu[name] / elapsed, 3),
                   "rss_before_mib": round(rss_before[name] / 1024, 1),
                   "rss_peak_sampled_mib": round(peak[name] / 1024, 1),
                   "rss_hwm_mib": round(rss_kib(pid, "VmHWM") / 1024, 1)}
            for name, pid in pids.items()}
    rows["stream"].update(delivered=viewer.delivered, dropped=viewer.dropped)
    rows["grep_stream"].update(delivered=grep_viewer.delivered, dropped=grep_viewer.dropped)
    last = hook.received[-1]["message"].split("\n") if hook.received else []
    rows["rule"].update(alerts=len(hook.received),
                        alerts_expected_at_most=int(elapsed // args.cooldown) + 1,
                        suppressed_in_last_alert=next(
                            (text for text in last if "suppressed" in text or
                             "not alerted" in text), None))
    return {"rate_lines_per_s": args.rate, "lines": total, "seconds": round(elapsed, 1),
            "cooldown_s": args.cooldown, "rule": rows["rule"], "stream": rows["stream"],
            "grep_stream": rows["grep_stream"],
            "ratio_cpu": round(cpu["rule"] / cpu["stream"], 2) if cpu["stream"] else None,
            "ratio_rss_peak": round(peak["rule"] / peak["stream"], 2) if peak["stream"] else None,
            "ratio_cpu_to_grep_stream": round(cpu["rule"] / cpu["grep_stream"], 2)
            if cpu["grep_stream"] else None,
            "ratio_rss_peak_to_grep_stream": round(peak["rule"] / peak["grep_stream"], 2)
            if peak["grep_stream"] else None}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--cooldown", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="10 s of writing instead of 20")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 10
    workdir = Path(tempfile.mkdtemp(prefix="alert-bench-"))
    hook = WebhookServer()
    harness = Harness(workdir / "tb", ALERT_INTERNAL_ALLOW="127.0.0.1", ALERT_SUPERVISE_SECONDS="2")
    try:
        harness.start_worker("alerts", queues="tailf.alerts,alerts", concurrency=2)
        harness.worker = harness.start_worker("streams", concurrency=2)
        harness.spawn("beat", [sys.executable, "-m", "celery", "-A", "celery_app", "beat",
                               "-s", str(workdir / "beat-schedule")])
        harness.web = harness.start_daphne()
        results = asyncio.run(measure(harness, args, workdir, hook))
    finally:
        hook.close()
        close_run(harness, workdir)
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "loadavg_after": os.getloadavg()}
    written = write_results("alerts.json", results)
    rule, stream, grep = results["rule"], results["stream"], results["grep_stream"]
    print(f"{results['lines']:,} lines at {results['rate_lines_per_s']:,.0f} lines/s, every line "
          f"matching, over {results['seconds']} s; cooldown {results['cooldown_s']} s")
    print(f"{'pool process':14} {'CPU s/s':>8} {'peak RSS MiB':>13} {'HWM MiB':>8}  details")
    print(f"{'rule task':14} {rule['cpu_s_per_s']:>8} {rule['rss_peak_sampled_mib']:>13} "
          f"{rule['rss_hwm_mib']:>8}  {rule['alerts']} alerts (at most "
          f"{rule['alerts_expected_at_most']}); last: {rule['suppressed_in_last_alert']}")
    print(f"{'viewer stream':14} {stream['cpu_s_per_s']:>8} {stream['rss_peak_sampled_mib']:>13} "
          f"{stream['rss_hwm_mib']:>8}  {stream['delivered']:,} delivered, "
          f"{stream['dropped']:,} dropped")
    print(f"{'grep=x stream':14} {grep['cpu_s_per_s']:>8} {grep['rss_peak_sampled_mib']:>13} "
          f"{grep['rss_hwm_mib']:>8}  {grep['delivered']:,} delivered, "
          f"{grep['dropped']:,} dropped")
    print(f"{'rule / stream':14} {results['ratio_cpu']:>8} {results['ratio_rss_peak']:>13}")
    print(f"{'rule / grep':14} {results['ratio_cpu_to_grep_stream']:>8} "
          f"{results['ratio_rss_peak_to_grep_stream']:>13}")
    print(f"JSON: {written}")


if __name__ == "__main__":
    main()
