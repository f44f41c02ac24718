"""The shared metrics: record functions on a real Redis, the exposition text, /metrics auth."""

import asyncio
import logging
import math
import multiprocessing
import threading

import pytest
import redis
import redis.asyncio as aioredis
from django.contrib.auth.models import User
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from webapp import embedded, metrics, metrics_view
from webapp.models import Ending, Stream
from webapp.streams import workers

LOG = {"kind": "log", "queue": "tailf"}
TOKEN = "metrics-token-" + "t" * 30


def families(text):
    """Parse an exposition back into {family name: family}."""
    if isinstance(text, bytes):
        text = text.decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family, suffix=""):
    """Return {(sorted label items): value} of a family's samples named name + suffix."""
    return {tuple(sorted(sample.labels.items())): sample.value for sample in family.samples
            if sample.name == family.name + suffix}


def scrape_text(redis_client):
    """Render what Redis holds now (no database part)."""
    return metrics_view.render(metrics_view.Scrape(series=metrics.snapshot(redis_client),
                                                   up={"redis": True}))


@pytest.fixture
def aclient(redis_server, redis_client):
    """An asyncio client of the same Redis."""
    return aioredis.Redis.from_url(redis_server)


@pytest.fixture
def dead_redis():
    """A sync client of a port nobody listens on."""
    client = redis.Redis.from_url(f"redis://127.0.0.1:{embedded.free_port()}/0",
                                  socket_connect_timeout=1, socket_timeout=1)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def fresh_warnings():
    """Each test sees the first warning of every metric."""
    metrics._last_warning.clear()


@pytest.fixture
def warnings_seen(caplog):
    """caplog on the (non-propagating) tailboard.metrics logger, from WARNING up."""
    logger = logging.getLogger("tailboard.metrics")
    logger.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.WARNING)
    yield caplog
    logger.removeHandler(caplog.handler)


def test_counters_add_up_across_sync_and_async_writers(redis_client, aclient):
    assert metrics.record(redis_client, "lines_sent", LOG, 12)
    assert metrics.record(redis_client, "lines_sent", LOG)

    async def more():
        assert await metrics.arecord(aclient, "lines_sent", LOG, 30)
        assert await metrics.arecord(aclient, "entries_sent", {"kind": "feed",
                                                               "queue": "feeds"}, 4)
        await aclient.aclose()

    asyncio.run(more())
    series = metrics.snapshot(redis_client)
    assert series["lines_sent"] == {("log", "tailf"): 43}
    assert series["entries_sent"] == {("feed", "feeds"): 4}
    assert series["dropped_lines"] == {}


async def test_async_snapshot_reads_what_was_written(redis_client, aclient):
    await metrics.arecord(aclient, "feed_fetches", {"result": "not_modified"}, 2)
    await metrics.aobserve(aclient, "connect_to_running_seconds", LOG, 0.3)
    series = await metrics.asnapshot(aclient)
    await aclient.aclose()
    assert series["feed_fetches"] == {("not_modified",): 2}
    buckets, total = series["connect_to_running_seconds"][("log", "tailf")]
    assert dict(buckets)["0.25"] == 0 and dict(buckets)["0.5"] == 1 and total == 0.3


def test_histogram_buckets_are_cumulative_with_sum_and_count(redis_client):
    for value in (0.01, 0.05, 0.3, 3, 7, 1000):
        assert metrics.observe(redis_client, "connect_to_running_seconds", LOG, value)
    family = families(scrape_text(redis_client))["tailboard_connect_to_running_seconds"]
    assert family.type == "histogram"
    buckets = {dict(labels)["le"]: value
               for labels, value in samples(family, "_bucket").items()}
    assert buckets["0.05"] == 2 and buckets["0.25"] == 2 and buckets["0.5"] == 3
    assert buckets["2.5"] == 3 and buckets["5.0"] == 4 and buckets["10.0"] == 5
    assert buckets["300.0"] == 5 and buckets["+Inf"] == 6
    labels = (("kind", "log"), ("queue", "tailf"))
    assert samples(family, "_count")[labels] == 6
    assert math.isclose(samples(family, "_sum")[labels], 1010.36)


def test_exposition_has_every_counter_with_its_labels(redis_client):
    metrics.record(redis_client, "dropped_lines", LOG, 5000)
    metrics.record(redis_client, "stream_ends", {"kind": "log", "ending": Ending.TOO_SLOW})
    metrics.record(redis_client, "stream_ends", {"kind": "log", "ending": "viewer_stop"}, 3)
    metrics.record(redis_client, "streams_refused", {"kind": "feed", "code": 4429})
    metrics.record(redis_client, "feed_fetches", {"result": "error"})
    parsed = families(scrape_text(redis_client))
    assert samples(parsed["tailboard_dropped_lines"], "_total") == {
        (("kind", "log"), ("queue", "tailf")): 5000}
    assert samples(parsed["tailboard_stream_ends"], "_total") == {
        (("ending", "too_slow"), ("kind", "log")): 1,
        (("ending", "viewer_stop"), ("kind", "log")): 3}
    assert samples(parsed["tailboard_streams_refused"], "_total") == {
        (("code", "4429"), ("kind", "feed")): 1}
    assert samples(parsed["tailboard_feed_fetches"], "_total") == {(("result", "error"),): 1}
    assert parsed["tailboard_lines_sent"].type == "counter"
    assert samples(parsed["tailboard_metrics_source_up"]) == {(("source", "redis"),): 1}


def test_hostile_label_values_come_back_intact_or_cut(redis_client):
    nasty = 'a"b\\c\nd|e]},{"x":1}\u00e9\u2028'
    huge = "q" * 10_000
    assert metrics.record(redis_client, "lines_sent", {"kind": nasty, "queue": huge}, 7)
    parsed = families(scrape_text(redis_client))
    assert samples(parsed["tailboard_lines_sent"], "_total") == {
        (("kind", nasty), ("queue", "q" * metrics.MAX_LABEL_CHARS)): 7}
    assert metrics.observe(redis_client, "connect_to_running_seconds",
                           {"kind": nasty, "queue": "x|0.05"}, 0.01)
    family = families(scrape_text(redis_client))["tailboard_connect_to_running_seconds"]
    assert samples(family, "_count") == {(("kind", nasty), ("queue", "x|0.05")): 1}


@pytest.mark.parametrize("name, labels, amount", [
    ("no_such_metric", LOG, 1),
    ("lines_sent", {"kind": "log"}, 1),
    ("lines_sent", {**LOG, "extra": "x"}, 1),
    ("lines_sent", ["log", "tailf"], 1),
    ("lines_sent", LOG, -1),
    ("lines_sent", LOG, 1.5),
    ("lines_sent", LOG, True),
    ("lines_sent", LOG, "12"),
    ("stream_ends", {"kind": "log", "ending": "made_up"}, 1),
    ("feed_fetches", {"result": "fine"}, 1),
    ("connect_to_running_seconds", LOG, 1),
])
def test_bad_counter_calls_write_nothing_and_do_not_raise(redis_client, warnings_seen, name,
                                                          labels, amount, settings):
    settings.RAISE_CONTAINED_ERRORS = False  # production: contained; the suite raises them
    assert metrics.record(redis_client, name, labels, amount) is False
    assert "could not record" in warnings_seen.text
    assert redis_client.keys("tailboard:metrics:*") == []


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.5, "1", None, True])
def test_bad_observations_write_nothing_and_do_not_raise(redis_client, value, settings):
    settings.RAISE_CONTAINED_ERRORS = False
    assert metrics.observe(redis_client, "connect_to_running_seconds", LOG, value) is False
    assert metrics.observe(redis_client, "lines_sent", LOG, 1.0) is False
    assert redis_client.keys("tailboard:metrics:*") == []


def test_a_bad_metric_call_fails_the_test_suite(redis_client):
    with pytest.raises(metrics.MetricError, match="no such metric"):
        metrics.record(redis_client, "no_such_metric", LOG)
    assert redis_client.keys("tailboard:metrics:*") == []


def test_writes_to_an_unreachable_redis_are_logged_once_a_minute_not_raised(dead_redis,
                                                                             warnings_seen):
    for _ in range(3):
        assert metrics.record(dead_redis, "lines_sent", LOG, 1) is False
    assert metrics.observe(dead_redis, "connect_to_running_seconds", LOG, 1) is False
    warnings = [r for r in warnings_seen.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "ConnectionError" in warnings[0].getMessage()


async def test_async_writes_to_an_unreachable_redis_do_not_raise():
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{embedded.free_port()}/0",
                                     socket_connect_timeout=1)
    try:
        assert await metrics.arecord(client, "lines_sent", LOG, 1) is False
        assert await metrics.aobserve(client, "connect_to_running_seconds", LOG, 1) is False
    finally:
        await client.aclose()


def test_a_key_of_the_wrong_type_spoils_only_its_own_metric(redis_client):
    redis_client.set(metrics.METRICS["dropped_lines"].key, "not a hash")
    assert metrics.record(redis_client, "dropped_lines", LOG, 1) is False
    metrics.record(redis_client, "lines_sent", LOG, 2)
    series = metrics.snapshot(redis_client)
    assert "dropped_lines" not in series and series["lines_sent"] == {("log", "tailf"): 2}
    assert "tailboard_dropped_lines" not in families(scrape_text(redis_client))


def test_fields_that_are_not_ours_are_skipped(redis_client):
    key = metrics.METRICS["lines_sent"].key
    redis_client.hset(key, mapping={"garbage": 5, '["log"]': 1, '["a",2]': 1,
                                    '["log","tailf"]': "NaN", '["x","y"]': "nope",
                                    '["feed","feeds"]': 9})
    hist = metrics.METRICS["connect_to_running_seconds"].key
    redis_client.hset(hist, mapping={'["log","tailf"]|count': 2, '["log","tailf"]|sum': 1.5,
                                     '["log","tailf"]|0.7': 1, '["log","tailf"]|1.0': 1,
                                     "nolabels|count": 4})
    series = metrics.snapshot(redis_client)
    assert series["lines_sent"] == {("feed", "feeds"): 9}
    buckets, total = series["connect_to_running_seconds"][("log", "tailf")]
    assert dict(buckets)["1.0"] == 1 and dict(buckets)["+Inf"] == 2 and total == 1.5
    families(scrape_text(redis_client))


def test_tally_writes_many_adds_in_one_flush(redis_client):
    tally = metrics.Tally()
    for _ in range(1000):
        tally.add("lines_sent", LOG, 3)
    tally.add("entries_sent", {"kind": "feed", "queue": "feeds"}, 2)
    tally.add("lines_sent", {"kind": "log"}, 1)
    tally.add("connect_to_running_seconds", LOG, 1)
    assert redis_client.keys("tailboard:metrics:*") == []
    assert tally.flush(redis_client) and tally.pending == {}
    series = metrics.snapshot(redis_client)
    assert series["lines_sent"] == {("log", "tailf"): 3000}
    assert series["entries_sent"] == {("feed", "feeds"): 2}
    assert tally.flush(redis_client)
    assert metrics.snapshot(redis_client)["lines_sent"] == {("log", "tailf"): 3000}


def test_a_failed_flush_keeps_the_counts_for_the_next(redis_client, dead_redis):
    tally = metrics.Tally()
    tally.add("dropped_lines", LOG, 10)
    assert tally.flush(dead_redis) is False
    tally.add("dropped_lines", LOG, 5)
    assert tally.flush(redis_client)
    assert metrics.snapshot(redis_client)["dropped_lines"] == {("log", "tailf"): 15}


async def test_async_flush_writes_and_keeps_counts_on_failure(redis_client, aclient):
    dead = aioredis.Redis.from_url(f"redis://127.0.0.1:{embedded.free_port()}/0",
                                   socket_connect_timeout=1)
    tally = metrics.Tally()
    tally.add("lines_sent", LOG, 4)
    assert await tally.aflush(dead) is False
    await dead.aclose()
    assert await tally.aflush(aclient)
    await aclient.aclose()
    assert metrics.snapshot(redis_client)["lines_sent"] == {("log", "tailf"): 4}


def add_from_process(url, count):
    client = redis.Redis.from_url(url)
    for _ in range(count):
        metrics.record(client, "lines_sent", LOG, 1)
        metrics.observe(client, "connect_to_running_seconds", LOG, 0.2)


def test_concurrent_writers_in_threads_and_processes_lose_nothing(redis_server, redis_client):
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=add_from_process, args=(redis_server, 200))
                 for _ in range(3)]
    threads = [threading.Thread(target=add_from_process, args=(redis_server, 200))
               for _ in range(3)]
    for worker in processes + threads:
        worker.start()
    for worker in processes + threads:
        worker.join(60)
    assert all(process.exitcode == 0 for process in processes)
    series = metrics.snapshot(redis_client)
    assert series["lines_sent"] == {("log", "tailf"): 1200}
    buckets, total = series["connect_to_running_seconds"][("log", "tailf")]
    assert dict(buckets)["0.1"] == 0 and dict(buckets)["0.25"] == 1200
    assert dict(buckets)["+Inf"] == 1200 and math.isclose(total, 240.0)


def test_feed_fetch_result_names_each_outcome():
    from feeds.upstream import FeedState

    def state(outcome, not_modified=False):
        return FeedState(url="http://x/", seq=1, fetched_at=0, outcome=outcome,
                         not_modified=not_modified)

    assert metrics.feed_fetch_result(state("ok")) == "ok"
    assert metrics.feed_fetch_result(state("ok", True)) == "not_modified"
    assert metrics.feed_fetch_result(state("error")) == "error"
    assert metrics.feed_fetch_result(state("gone")) == "gone"
    assert metrics.feed_fetch_result(state("weird")) == "error"


@pytest.fixture
def sources(db):
    """Log sources on two queues (one disabled) and a feed source."""
    from feeds.models import FeedSource
    from tailf.models import LogSource

    LogSource.objects.create(name="a", path="/var/log/a.log", queue="tailf")
    LogSource.objects.create(name="b", path="/var/log/b.log", queue="tailf")
    LogSource.objects.create(name="lonely", path="/var/log/c.log", queue="tailf.lonely")
    LogSource.objects.create(name="off", path="/var/log/d.log", queue="tailf.off",
                             enabled=False)
    FeedSource.objects.create(name="news", url="http://example.org/rss")


def open_stream(kind, queue, n, ended=False):
    from django.utils import timezone

    return Stream.objects.create(
        username="u", kind=kind, source_id=1, source_name="s", queue=queue,
        task_id=f"{kind}-{queue}-{n}-{ended}", channel_name="c",
        ended=timezone.now() if ended else None, ending="disconnect" if ended else "")


def test_gauges_count_open_streams_sources_and_workers_per_queue(sources, redis_client,
                                                                settings):
    settings.METRICS_TOKEN = TOKEN
    for n in range(3):
        open_stream("log", "tailf", n)
    open_stream("log", "tailf", 9, ended=True)
    open_stream("feed", "feeds", 0)
    open_stream("log", "tailf.off", 0)
    workers.announce(redis_client, "w1@h", ["tailf", "feeds"])
    workers.announce(redis_client, "w2@h", ["tailf"])
    workers.announce(redis_client, "old@h", ["tailf.lonely"], now=1)
    metrics.record(redis_client, "lines_sent", LOG, 1)
    response = get_metrics(Client(), HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    parsed = families(response.content)
    assert samples(parsed["tailboard_open_streams"]) == {
        (("kind", "feed"), ("queue", "feeds")): 1, (("kind", "log"), ("queue", "tailf")): 3,
        (("kind", "log"), ("queue", "tailf.lonely")): 0,
        (("kind", "log"), ("queue", "tailf.off")): 1}
    assert samples(parsed["tailboard_sources_enabled"]) == {
        (("kind", "feed"), ("queue", "feeds")): 1, (("kind", "log"), ("queue", "tailf")): 2,
        (("kind", "log"), ("queue", "tailf.lonely")): 1}
    assert samples(parsed["tailboard_workers_online"]) == {
        (("queue", "feeds"),): 1, (("queue", "tailf"),): 2, (("queue", "tailf.lonely"),): 0,
        (("queue", "tailf.off"),): 0}
    assert samples(parsed["tailboard_metrics_source_up"]) == {
        (("source", "database"),): 1, (("source", "redis"),): 1, (("source", "workers"),): 1}
    assert samples(parsed["tailboard_lines_sent"], "_total") == {
        (("kind", "log"), ("queue", "tailf")): 1}


def test_a_scrape_without_redis_still_shows_the_database_and_says_so(sources, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{embedded.free_port()}/0"
    settings.METRICS_TOKEN = TOKEN
    open_stream("log", "tailf", 0)
    response = get_metrics(Client(), HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    parsed = families(response.content)
    assert samples(parsed["tailboard_metrics_source_up"]) == {
        (("source", "database"),): 1, (("source", "redis"),): 0, (("source", "workers"),): 0}
    assert samples(parsed["tailboard_open_streams"])[(("kind", "log"), ("queue", "tailf"))] == 1
    assert "tailboard_lines_sent" not in parsed and "tailboard_workers_online" not in parsed


def get_metrics(client, **headers):
    """GET /metrics with the test client."""
    return client.get("/metrics", **headers)


@pytest.fixture
def metrics_settings(settings, redis_client, db):
    """A METRICS_TOKEN and a real Redis with one counter in it."""
    settings.METRICS_TOKEN = TOKEN
    metrics.record(redis_client, "lines_sent", LOG, 3)
    return settings


def assert_refused(response, status):
    assert response.status_code == status
    assert b"tailboard_" not in response.content and b"tailf" not in response.content


def test_anonymous_callers_are_refused_without_data(metrics_settings):
    response = get_metrics(Client())
    assert_refused(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", [
    "Bearer wrong", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN,
    "Bearer ", "Bearer"])
def test_a_wrong_token_is_refused(metrics_settings, header):
    assert_refused(get_metrics(Client(), HTTP_AUTHORIZATION=header), 401)


def test_an_empty_metrics_token_lets_no_token_in(metrics_settings):
    metrics_settings.METRICS_TOKEN = ""
    for header in ("Bearer ", "Bearer", "Bearer  "):
        assert_refused(get_metrics(Client(), HTTP_AUTHORIZATION=header), 401)


def test_the_token_gets_the_metrics(metrics_settings):
    response = get_metrics(Client(), HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    parsed = families(response.content)
    assert samples(parsed["tailboard_lines_sent"], "_total") == {
        (("kind", "log"), ("queue", "tailf")): 3}


def test_a_staff_session_gets_the_metrics(metrics_settings):
    client = Client()
    client.force_login(User.objects.create_user("staff", password="x", is_staff=True))
    response = get_metrics(client)
    assert response.status_code == 200 and b"tailboard_lines_sent_total" in response.content


@pytest.mark.parametrize("flags", [{}, {"is_staff": True, "is_active": False}])
def test_a_non_staff_or_inactive_session_is_refused(metrics_settings, flags):
    client = Client()
    user = User.objects.create_user("someone", password="x", **flags)
    client.force_login(user)
    response = get_metrics(client)
    assert_refused(response, 401 if not user.is_active else 403)


def test_writing_methods_are_refused(metrics_settings):
    response = Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405


def test_the_documented_scrape_config_and_alert_rules_use_only_exposed_metrics():
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    scrape, rules = blocks
    job = scrape["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics" and job["authorization"]["type"] == "Bearer"
    exposed = {"tailboard_" + name for name in ("open_streams", "sources_enabled",
                                                 "workers_online", "metrics_source_up")}
    for found in metrics.METRICS.values():
        suffixes = ("_total",) if found.type == "counter" else ("_bucket", "_sum", "_count")
        exposed |= {f"tailboard_{found.name}{suffix}" for suffix in suffixes}
    alerts = rules["groups"][0]["rules"]
    assert {"TailboardNoWorkerForQueue", "TailboardStreamsRefusedAtLimit",
            "TailboardDroppedLines"} <= {rule["alert"] for rule in alerts}
    for rule in alerts:
        used = set(re.findall(r"tailboard_\w+", rule["expr"]))
        assert used and used <= exposed, (rule["alert"], used - exposed)


def test_a_redis_that_never_answers_costs_a_scrape_seconds_not_minutes(sources, settings):
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        settings.REDIS_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        settings.METRICS_TOKEN = TOKEN
        started = time.monotonic()
        response = get_metrics(Client(), HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        took = time.monotonic() - started
    finally:
        silent.close()
    assert response.status_code == 200
    assert took < metrics_view.READ_TIMEOUT_SECONDS + 2
    parsed = families(response.content)
    assert samples(parsed["tailboard_metrics_source_up"]) == {
        (("source", "database"),): 1, (("source", "redis"),): 0, (("source", "workers"),): 0}
    assert "tailboard_sources_enabled" in parsed
