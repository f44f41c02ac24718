#!/usr/bin/env python3
"""Take the README screenshots: a busy dashboard (three live logs and a feed), dark and light,
one merged pane, and the phone layout.

Runs the real system with the test Harness (Redis, a prefork worker, Daphne), writes realistic
lines into three log files while Debian's Chromium looks at the dashboard, and saves
docs/screenshots/dashboard-dark.png, dashboard-light.png, merged-pane.png (two logs and a feed
in one pane) and phone.png (390×844).

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--seconds 12]
"""

import argparse
import random
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlencode
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.feedserver import LOCAL_FEEDS, FeedServer  # noqa: E402
from tests.harness import Harness  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
SIZE = {"width": 1600, "height": 960}
MERGED_SIZE = {"width": 1280, "height": 760}
PHONE_SIZE = {"width": 390, "height": 844}

API = [
    ("INFO", "GET /api/v2/orders?status=open 200 {ms}ms user=u{n} region=eu-west-1"),
    ("INFO", "POST /api/v2/checkout 201 {ms}ms cart={n} items=3"),
    ("INFO", "GET /api/v2/catalog/items/{n} 200 {ms}ms cache=hit"),
    ("DEBUG", "upstream pool stats active=12 idle=4 waiting=0 host=orders-{k}"),
    ("WARN", "slow upstream orders-{k}: {ms}ms > 500ms budget (GET /api/v2/orders/{n})"),
    ("INFO", "GET /healthz 200 1ms"),
    ("ERROR", "upstream payments-{k} returned 503 after {ms}ms: circuit half-open, retrying"),
    ("INFO", "PATCH /api/v2/users/{n}/prefs 204 {ms}ms"),
]
PAYMENTS = [
    ("INFO", "charge ch_{n}{k}x authorised amount=EUR {ms}.00 card=visa"),
    ("INFO", "webhook delivered evt_{n} to merchant m_{k} in {ms}ms"),
    ("WARN", "gateway latency p99={ms}ms above SLO (400ms) for acquirer=adyen"),
    ("ERROR", "charge ch_{n}{k}x failed: gateway timeout after {ms}ms (attempt 2/3)"),
    ("INFO", "refund re_{n} settled amount=EUR {k}.50"),
    ("DEBUG", "idempotency key ik_{n} reused, returning cached response"),
]
WORKER = [
    ("INFO", "task reports.generate[{n}] succeeded in {s}s: rows=48{k}1"),
    ("INFO", "task email.send[{n}] received"),
    ("INFO", "task email.send[{n}] succeeded in 0.{ms}s"),
    ("WARN", "task thumbnails.render[{n}] retry in 10s: S3 throttled (SlowDown)"),
    ("INFO", "queue depth default={k} priority=0 reports=3"),
    ("DEBUG", "prefetch count adjusted to 4 (load 0.{k}7)"),
    ("ERROR", "task invoices.sync[{n}] raised ConnectionResetError: peer closed connection"),
]
FEED_ITEMS = [
    ("Deploy #{n}: checkout-service v2.{n} rolled out to 100% of hosts",
     "Canary healthy for 15 minutes; error rate 0.02%, p99 312 ms. Rolled by alice via Argo."),
    ("Incident resolved: elevated 5xx on api-gateway",
     "Payments upstream recovered after a failover of the primary acquirer. 23 minutes of impact."),
    ("Deploy #{n}: worker-pool scaled from 16 to 24 processes",
     "Queue depth stayed above 400 for 10 minutes; autoscaler raised the concurrency."),
    ("Maintenance: PostgreSQL minor upgrade tonight 22:00 UTC",
     "Expect a 30-second read-only window on the orders database."),
    ("Deploy #{n}: search-indexer v5.1.{n} rolled back",
     "Latency regression in the suggest endpoint; rolled back automatically by the canary."),
]


def line(level, template, now):
    """Render one log line with a timestamp."""
    text = template.format(ms=random.randint(3, 980), n=random.randint(10000, 99999),
                           k=random.randint(1, 9), s=round(random.uniform(0.2, 9.5), 2))
    return f"{now.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z {level:<5} {text}"


def pick(messages):
    """Choose a message, mostly INFO, now and then a warning or an error."""
    weights = [8 if level == "INFO" else 2 if level == "DEBUG" else 1.2 if level == "WARN"
               else 0.7 for level, _ in messages]
    return random.choices(messages, weights)[0]


def write_logs(files, stop):
    """Append lines to each (path, messages, per_second) until stop is set."""
    while not stop.is_set():
        now = datetime.now(timezone.utc)
        for path, messages, rate in files:
            count = max(0, int(random.gauss(rate / 10, rate / 30)))
            with open(path, "a") as handle:
                for _ in range(count):
                    handle.write(line(*pick(messages), now) + "\n")
        time.sleep(0.1)


def backfill(path, messages, count):
    """Write `count` lines of history, spread over the last few minutes."""
    start = datetime.now(timezone.utc) - timedelta(seconds=count // 4)
    with open(path, "w") as handle:
        for i in range(count):
            handle.write(line(*pick(messages), start + timedelta(milliseconds=250 * i)) + "\n")


def feed_xml(count, newest=480, revised=None):
    """An RSS document with `count` deploy/incident items, newest first.

    `revised` (an item number) gets a new summary, so the feed marks it "updated".
    """
    now = datetime.now(timezone.utc)
    items = []
    for i in range(count):
        number = newest - i
        title, summary = FEED_ITEMS[number % len(FEED_ITEMS)]
        if number == revised:
            summary += " Update: follow-up review scheduled for Monday."
        items.append(
            f"<item><guid>ops-{number}</guid><title>{escape(title.format(n=number))}</title>"
            f"<link>https://status.example.com/events/{number}</link>"
            f"<pubDate>{format_datetime(now - timedelta(minutes=17 * (newest - number) + 3))}"
            "</pubDate>"
            f"<description>{escape(summary)}</description></item>")
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            "<title>Ops events</title><link>https://status.example.com/</link>"
            f"<description>Deploys and incidents</description>{''.join(items)}"
            "</channel></rss>").encode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--seconds", type=float, default=16, help="stream before shooting")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory(prefix="tailboard-shots-") as tmp:
        tmp = Path(tmp)
        harness = Harness(tmp / "system", FEED_INTERNAL_ALLOW=LOCAL_FEEDS)
        feed = FeedServer()
        stop = threading.Event()
        try:
            feed.raw = feed_xml(8)
            logs = [(tmp / "api-gateway.log", API, 28), (tmp / "payments.log", PAYMENTS, 9),
                    (tmp / "workers.log", WORKER, 14)]
            ids = []
            for path, messages, _ in logs:
                backfill(path, messages, 400)
                ids.append(harness.add_log(path.stem, path, "--group", "ops"))
            feed_id = harness.add_feed("ops-events", feed.url, "--interval", "5", "--group", "ops")
            password = harness.create_user("alice", groups=["ops"])
            harness.start_worker(concurrency=6)
            web = harness.start_daphne()
            writer = threading.Thread(target=write_logs, args=(logs, stop), daemon=True)
            writer.start()
            panes = urlencode([("p", urlencode(spec)) for spec in (
                {"src": f"tailf:{ids[0]}", "lines": 200, "hl": "checkout, returned 503, slow upstream",
                 "run": 1},
                {"src": f"tailf:{ids[1]}", "lines": 200, "run": 1},
                {"src": f"tailf:{ids[2]}", "lines": 200, "filter": "/task \\w+/", "run": 1},
                {"src": f"feeds:{feed_id}", "entries": 8, "run": 1},
            )])
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                     args=["--no-sandbox", "--disable-gpu"])
                context = browser.new_context(viewport=SIZE, color_scheme="dark",
                                              timezone_id="Europe/Berlin")
                page = context.new_page()
                page.goto(web.base_url + "/accounts/login/")
                page.fill("#id_username", "alice")
                page.fill("#id_password", password)
                page.click("button[type=submit]")
                page.wait_for_url(web.base_url + "/")
                page.goto(f"{web.base_url}/#{panes}")
                expect(page.locator(".status[data-state=running]")).to_have_count(4,
                                                                                  timeout=30000)
                time.sleep(args.seconds / 2)
                feed.raw = feed_xml(8, newest=481, revised=478)
                time.sleep(args.seconds / 2)
                page.locator(".pane").nth(1).locator(".output").hover()
                page.mouse.wheel(0, -260)
                time.sleep(2.5)
                page.mouse.move(5, 5)
                page.screenshot(path=str(out / "dashboard-dark.png"))
                page.click("#theme-toggle")
                time.sleep(1.2)
                page.screenshot(path=str(out / "dashboard-light.png"))
                context.close()

                merged = urlencode([("p", urlencode([
                    ("src", f"tailf:{ids[0]}"), ("src", f"tailf:{ids[1]}"),
                    ("src", f"feeds:{feed_id}"), ("lines", 40), ("entries", 3),
                    ("hl", "returned 503, failed"), ("time", "local"), ("run", 1)]))])
                shots = [(MERGED_SIZE, merged, "merged-pane.png", 3),
                         (PHONE_SIZE, urlencode([("p", urlencode([
                             ("src", f"tailf:{ids[1]}"), ("src", f"tailf:{ids[2]}"),
                             ("lines", 30), ("run", 1)]))]), "phone.png", 2)]
                for size, hash_, name, running in shots:
                    context = browser.new_context(viewport=size, color_scheme="dark",
                                                  timezone_id="Europe/Berlin",
                                                  device_scale_factor=2 if size is PHONE_SIZE else 1,
                                                  is_mobile=size is PHONE_SIZE)
                    shot = context.new_page()
                    shot.goto(web.base_url + "/accounts/login/")
                    shot.fill("#id_username", "alice")
                    shot.fill("#id_password", password)
                    shot.click("button[type=submit]")
                    shot.wait_for_url(web.base_url + "/")
                    shot.goto(f"{web.base_url}/#{hash_}")
                    expect(shot.locator(".status[data-state=running]")).to_have_count(
                        running, timeout=30000)
                    time.sleep(args.seconds / 2)
                    shot.mouse.move(5, 5)
                    shot.screenshot(path=str(out / name))
                    context.close()
                browser.close()
        finally:
            stop.set()
            feed.close()
            harness.close()
    print(f"wrote dashboard-dark.png, dashboard-light.png, merged-pane.png and phone.png in {out}")


if __name__ == "__main__":
    main()
