"""`GET /metrics`: the shared figures in the Prometheus text format, for staff and the token.

At each scrape the view reads the counters and histograms every process keeps in Redis
(`webapp.metrics`), the workers online per queue (the worker registry) and the open streams
and enabled sources per kind and queue (the database), and renders them through a
`prometheus_client` collector on a fresh registry. A part that cannot be read is left out
and `tailboard_metrics_source_up{source=...}` says 0 for it.
"""

import asyncio
import dataclasses
import logging

from channels.db import database_sync_to_async
from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from webapp import metrics
from webapp.streams import faults, leases, workers

log = logging.getLogger("tailboard.metrics")

PREFIX = "tailboard_"
READ_TIMEOUT_SECONDS = 3.0


@dataclasses.dataclass
class Scrape:
    """Everything one scrape read: Redis series, worker counts, database gauges, what failed.

    series: {metric name: parsed series} (webapp.metrics.snapshot); workers_online:
    {queue: n}; open_streams and sources_enabled: {(kind, queue): n}; up: {source: bool}.
    """

    series: dict = dataclasses.field(default_factory=dict)
    workers_online: dict = dataclasses.field(default_factory=dict)
    open_streams: dict = dataclasses.field(default_factory=dict)
    sources_enabled: dict = dataclasses.field(default_factory=dict)
    up: dict = dataclasses.field(default_factory=dict)


def database_gauges():
    """Return ({(kind, queue): open streams}, {(kind, queue): enabled sources})."""
    from webapp.models import Stream
    from webapp.streams.kinds import all_kinds

    open_streams = {(row["kind"], row["queue"]): row["n"] for row in
                    Stream.objects.filter(ended__isnull=True).order_by()
                    .values("kind", "queue").annotate(n=Count("id"))}
    enabled = {}
    for kind in all_kinds():
        for row in (kind.source_model.objects.filter(enabled=True).order_by()
                    .values("queue").annotate(n=Count("pk"))):
            enabled[(kind.slug, row["queue"])] = row["n"]
    return open_streams, enabled


class ScrapeCollector:
    """A prometheus_client collector that turns one Scrape into metric families."""

    def __init__(self, scrape):
        self.scrape = scrape

    def collect(self):
        """Yield the families: gauges from the scrape, then every Redis-kept metric."""
        scrape = self.scrape
        queues = ({queue for _, queue in scrape.sources_enabled}
                  | {queue for _, queue in scrape.open_streams})
        pairs = set(scrape.sources_enabled) | set(scrape.open_streams)
        if scrape.up.get("database"):
            yield self.gauge("open_streams", "Streams not yet ended.", ("kind", "queue"),
                             {pair: scrape.open_streams.get(pair, 0) for pair in pairs})
            yield self.gauge("sources_enabled", "Enabled sources.", ("kind", "queue"),
                             scrape.sources_enabled)
        if scrape.up.get("workers"):
            online = {(queue,): scrape.workers_online.get(queue, 0)
                      for queue in queues | set(scrape.workers_online)}
            yield self.gauge("workers_online", "Workers consuming the queue, seen in the last "
                             f"{workers.TTL_SECONDS} s.", ("queue",), online)
        for found in metrics.METRICS.values():
            if found.name in scrape.series:
                yield self.family(found, scrape.series[found.name])
        yield self.gauge("metrics_source_up", "Whether this scrape could read the source "
                         "(redis: counters, workers: worker registry, database: streams).",
                         ("source",), {(name,): int(ok) for name, ok in scrape.up.items()})

    @staticmethod
    def gauge(name, help_text, labels, values):
        """Return a gauge family from {label values: value}."""
        family = GaugeMetricFamily(PREFIX + name, help_text, labels=labels)
        for label_values, value in sorted(values.items()):
            family.add_metric(list(label_values), value)
        return family

    @staticmethod
    def family(found, series):
        """Return the counter or histogram family of one Redis-kept metric."""
        if found.type == "counter":
            family = CounterMetricFamily(PREFIX + found.name, found.help, labels=found.labels)
            for label_values, value in sorted(series.items()):
                family.add_metric(list(label_values), value)
            return family
        family = HistogramMetricFamily(PREFIX + found.name, found.help, labels=found.labels)
        for label_values, (buckets, total) in sorted(series.items()):
            family.add_metric(list(label_values), buckets, total)
        return family


def render(scrape):
    """Return the Prometheus text exposition of a Scrape (bytes)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ScrapeCollector(scrape))
    return generate_latest(registry)


async def read_redis(scrape):
    """Fill the scrape's Redis series and worker counts on a short-lived client.

    Both reads run at once, each bounded by READ_TIMEOUT_SECONDS, so a Redis that accepts
    but never answers costs the scrape that long and no more.
    """
    client = leases.async_client()
    try:
        series, online = await asyncio.gather(
            asyncio.wait_for(metrics.asnapshot(client), READ_TIMEOUT_SECONDS),
            asyncio.wait_for(workers.aonline(client), READ_TIMEOUT_SECONDS),
            return_exceptions=True)
    finally:
        await client.aclose()
    for source, result in (("redis", series), ("workers", online)):
        scrape.up[source] = not isinstance(result, BaseException)
        if not scrape.up[source]:
            log.error("metrics: could not read %s: %s: %s", source, type(result).__name__,
                      result)
    if scrape.up["redis"]:
        scrape.series = series
    if scrape.up["workers"]:
        scrape.workers_online = {queue: len(hosts) for queue, hosts in online.items()}


async def read_database(scrape):
    """Fill the scrape's open streams and enabled sources from the database."""
    try:
        scrape.open_streams, scrape.sources_enabled = await database_sync_to_async(
            database_gauges)()
        scrape.up["database"] = True
    except faults.OUTSIDE as exc:
        log.error("metrics: could not read the database: %s: %s", type(exc).__name__, exc)
        scrape.up["database"] = False


async def gather():
    """Read everything one scrape shows; return a Scrape."""
    scrape = Scrape()
    await asyncio.gather(read_redis(scrape), read_database(scrape))
    return scrape


def has_token(request):
    """Whether the request carries `Authorization: Bearer $METRICS_TOKEN` (never if unset)."""
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and constant_time_compare(
        given.strip(), token)


def refusal(status):
    """Return a refusal without data: 401 asks for the token, 403 for a non-staff session."""
    response = HttpResponse("forbidden\n" if status == 403 else "authentication required\n",
                            status=status, content_type="text/plain; charset=utf-8")
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@never_cache
@require_safe
async def metrics_view(request):
    """Answer the metrics to staff sessions and the METRICS_TOKEN bearer; 401/403 otherwise."""
    if not has_token(request):
        user = await request.auser()
        if not user.is_authenticated:
            return refusal(401)
        if not (user.is_active and user.is_staff):
            return refusal(403)
    body = await asyncio.to_thread(render, await gather())
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
