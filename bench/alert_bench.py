"""Alert rule load on the real system: a pattern matching every line of a fast log.

Run: .venv/bin/python bench/alert_bench.py [--rate 100000] [--seconds 20] [--cooldown 5]
Starts Redis, a prefork worker on the alert queues and celery beat, a JSON webhook receiver on
loopback, one rule whose pattern matches every line, and appends lines at `--rate` lines/s.
Prints how many lines were written, how many alerts arrived (one per cooldown is right), the
rule task's CPU seconds per second and its memory; the figures go to bench/results/alerts.json.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import close_run, cpu_seconds, rss_kib, worker_child_of, write_results  # noqa: E402
from tail_bench import start_writer  # noqa: E402

from tests.alertreceivers import WebhookServer  # noqa: E402
from tests.harness import Harness  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--cooldown", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="alert-bench-"))
    hook = WebhookServer()
    harness = Harness(workdir / "tb", ALERT_INTERNAL_ALLOW="127.0.0.1", ALERT_SUPERVISE_SECONDS="2")
    try:
        log = workdir / "tb" / "busy.log"
        log.write_text("")
        harness.start_worker("alerts", queues="tailf.alerts,alerts", concurrency=2)
        harness.spawn("beat", [sys.executable, "-m", "celery", "-A", "celery_app", "beat",
                               "-s", str(workdir / "beat-schedule")])
        source_id = harness.add_log("busy", str(log))
        rule_id = int(harness.shell(
            "from alerts.models import AlertRule, AlertDestination\n"
            f"r = AlertRule.objects.create(name='every line', kind='log', source_id={source_id},"
            f" pattern='x', cooldown={args.cooldown})\n"
            f"r.destinations.add(AlertDestination.objects.create(name='hook', url={hook.url!r}))\n"
            "print(r.pk)\n").strip().splitlines()[-1])

        def running():
            state = json.loads(harness.manage("alerts", "list", "--json"))[0]["state"]
            return "following" in state

        assert harness.wait_for(running, 60, 0.5), "the rule did not start"
        task_id = harness.redis.get(f"tailboard:alert:lease:{rule_id}").decode()
        pid = worker_child_of(harness, task_id)
        cpu_before, started = cpu_seconds(pid), time.monotonic()
        total = int(args.rate * args.seconds)
        writer = start_writer(log, total, args.rate)
        peak_rss = 0
        while writer.poll() is None:
            peak_rss = max(peak_rss, rss_kib(pid))
            time.sleep(0.5)
        time.sleep(2)
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(pid) - cpu_before
        results = {
            "rate_lines_per_s": args.rate, "seconds": round(elapsed, 1), "lines": total,
            "cooldown_s": args.cooldown, "alerts": len(hook.received),
            "alerts_expected_at_most": int(elapsed // args.cooldown) + 1,
            "task_cpu_s_per_s": round(cpu / elapsed, 3), "task_rss_mib": round(peak_rss / 1024, 1),
            "task_rss_peak_mib": round(rss_kib(pid, "VmHWM") / 1024, 1),
            "suppressed_in_last_alert": hook.received[-1]["message"].split("\n")[1]
            if hook.received else None,
        }
        for name, value in results.items():
            print(f"{name:28} {value}")
        write_results("alerts.json", results)
    finally:
        hook.close()
        close_run(harness, workdir)


if __name__ == "__main__":
    main()
