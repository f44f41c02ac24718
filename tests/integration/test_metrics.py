"""/metrics on the real system: Daphne renders what other processes wrote to Redis, the open
streams and the workers online, to the token and staff only."""

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import METRICS_TOKEN, started_installation
from tests.integration.conftest import Client, open_stream

TOKEN = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    """One small worker, Daphne, an admin and a non-staff viewer (group ops)."""
    with started_installation(tmp_path_factory.mktemp("metrics"),
                              workers=[{"concurrency": 2}]) as harness:
        harness.viewer_password = harness.create_user("viewer", groups=["ops"])
        harness.viewer_cookie = harness.login(harness.web.base_url, "viewer",
                                              harness.viewer_password)
        yield harness


def scrape(harness, **headers):
    """GET /metrics from the real Daphne."""
    return httpx.get(harness.web.base_url + "/metrics", headers=headers, timeout=15)


def values(response, name, suffix=""):
    """Return {(sorted label items): value} of one family in a scraped exposition."""
    for family in text_string_to_metric_families(response.text):
        if family.name == name:
            return {tuple(sorted(s.labels.items())): s.value for s in family.samples
                    if s.name == name + suffix}
    return {}


def test_counters_written_by_another_process_are_scraped(installation):
    installation.shell(
        "from webapp import metrics\nfrom webapp.streams.leases import sync_client\n"
        "c = sync_client()\n"
        "assert metrics.record(c, 'dropped_lines', {'kind': 'log', 'queue': 'tailf'}, 250)\n"
        "assert metrics.record(c, 'feed_fetches', {'result': 'gone'})\n"
        "assert metrics.observe(c, 'connect_to_running_seconds', "
        "{'kind': 'feed', 'queue': 'feeds'}, 0.7)\n")
    response = scrape(installation, **TOKEN)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert values(response, "tailboard_dropped_lines", "_total") == {
        (("kind", "log"), ("queue", "tailf")): 250}
    assert values(response, "tailboard_feed_fetches", "_total") == {(("result", "gone"),): 1}
    buckets = values(response, "tailboard_connect_to_running_seconds", "_bucket")
    assert buckets[(("kind", "feed"), ("le", "0.5"), ("queue", "feeds"))] == 0
    assert buckets[(("kind", "feed"), ("le", "1.0"), ("queue", "feeds"))] == 1
    assert values(response, "tailboard_metrics_source_up") == {
        (("source", "database"),): 1, (("source", "redis"),): 1, (("source", "workers"),): 1}


async def test_an_open_stream_and_the_worker_show_in_the_gauges(installation, tmp_path):
    log = tmp_path / "gauge.log"
    log.write_text("")
    source = installation.add_log("gauge-source", log)
    installation.add_log("unserved", tmp_path / "unserved.log", "--queue", "tailf.nobody")
    async with open_stream(installation, f"/ws/tailf/{source}/") as socket:
        client = Client(socket)
        await client.status("running")
        response = await asyncio.to_thread(scrape, installation, **TOKEN)
        assert values(response, "tailboard_open_streams")[
            (("kind", "log"), ("queue", "tailf"))] == 1
    workers = values(response, "tailboard_workers_online")
    assert workers[(("queue", "tailf"),)] == 1 and workers[(("queue", "feeds"),)] == 1
    assert workers[(("queue", "tailf.nobody"),)] == 0
    assert values(response, "tailboard_sources_enabled")[
        (("kind", "log"), ("queue", "tailf.nobody"))] == 1

    def closed():
        gauge = values(scrape(installation, **TOKEN), "tailboard_open_streams")
        return gauge.get((("kind", "log"), ("queue", "tailf"))) == 0

    assert await asyncio.to_thread(installation.wait_for, closed, 10)


def test_only_the_token_and_staff_get_metrics(installation):
    for headers, status in (({}, 401), ({"Authorization": "Bearer nope"}, 401),
                            ({"Cookie": installation.viewer_cookie}, 403)):
        response = scrape(installation, **headers)
        assert response.status_code == status
        assert "tailboard_" not in response.text
    staff = scrape(installation, Cookie=installation.admin_cookie)
    assert staff.status_code == 200 and "tailboard_workers_online" in staff.text
