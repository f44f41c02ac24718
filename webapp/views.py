"""HTTP views: the dashboard and the health check."""

import asyncio
import logging

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache

from webapp import redisconf
from webapp.streams import faults, leases, records, workers
from webapp.streams.kinds import all_kinds
from webapp.streams.text import CATALOGUE

log = logging.getLogger("tailboard.health")


@never_cache
@login_required
def dashboard(request):
    """Show the sources this user may open, with the stream pane."""
    user = request.user
    try:
        online = workers.online(leases.sync_client())
    except faults.OUTSIDE as exc:
        log.warning("dashboard: could not read the worker registry: %s", exc)
        online = None
    groups = []
    for kind in all_kinds():
        sources = list(kind.source_model.objects.open_to(user)
                       .prefetch_related("groups").order_by("name"))
        for source in sources:
            source.workers_online = (None if online is None
                                     else len(online.get(source.queue, [])))
            source.where = kind.describe(source)
            source.group_names = "\n".join(sorted(group.name for group in source.groups.all()))
        groups.append({"kind": kind, "sources": sources})
    kinds = [{"slug": kind.slug, "url": kind.url, "label": gettext(kind.label),
              "resumable": kind.resumable} for kind in all_kinds()]
    return render(request, "dashboard.html", {
        "groups": groups, "kinds": kinds, "stream_messages": sorted(CATALOGUE.items()),
        "has_sources": any(group["sources"] for group in groups)})


CHECK_TIMEOUT_SECONDS = 3.0


def check_database():
    """Run a trivial query."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def check_redis():
    """Ping Redis (through Sentinel, the current master) on a short-lived connection."""
    client = redisconf.configured().async_client(socket_timeout=CHECK_TIMEOUT_SECONDS,
                                                 socket_connect_timeout=CHECK_TIMEOUT_SECONDS)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def check_channel_layer():
    """Send a message through the channel layer and receive it back."""
    layer = get_channel_layer()
    channel = await layer.new_channel("healthz.")
    await layer.send(channel, {"type": "healthz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "healthz.ping":
        raise RuntimeError("the channel layer returned another message")


async def run_check(check):
    """Run one check within the time limit; return "ok" or "error: ..."."""
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
        return "ok"
    except asyncio.TimeoutError:
        return f"error: no answer within {CHECK_TIMEOUT_SECONDS:g} s"
    except Exception as exc:
        if not isinstance(exc, faults.OUTSIDE):
            faults.contained(log, "healthz: a check crashed")
        return f"error: {type(exc).__name__}: {exc}"


def workers_by_queue():
    """Return {queue: [worker hostnames]} of the workers online now (the Redis registry)."""
    return workers.online(leases.sync_client())


def enabled_sources(user=None):
    """Return (kind slug, source) for every enabled source this user may view (None: all)."""
    return [(kind.slug, source) for kind in all_kinds()
            for source in (kind.source_model.objects.filter(enabled=True) if user is None
                           else kind.source_model.objects.open_to(user)).order_by("pk")]


def may_see_details(request):
    """Who sees the details: "token" (HEALTHZ_TOKEN: every source), a staff user (the sources
    they may view), or None (only the status)."""
    token = settings.HEALTHZ_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and constant_time_compare(header[7:], token):
        return "token"
    user = getattr(request, "user", None)
    if user and user.is_authenticated and user.is_active and user.is_staff:
        return user
    return None


@never_cache
async def healthz(request):
    """Answer 200 with JSON when database, Redis and channel layer answer; 503 otherwise.

    Anonymous callers get only the status; staff sessions (or `Authorization: Bearer
    $HEALTHZ_TOKEN`) also get each check's result, the workers online per queue, the number
    of open streams and the enabled sources whose queue no worker consumes (for staff, of the
    sources they may view; superusers and the token: all). Async, so a slow
    check never holds the thread that every sync view shares.
    """
    names = ("database", "redis", "channel_layer")
    results = await asyncio.gather(
        run_check(database_sync_to_async(check_database)), run_check(check_redis),
        run_check(check_channel_layer))
    checks = dict(zip(names, results, strict=False))
    healthy = all(result == "ok" for result in results)
    for name, result in checks.items():
        if result != "ok":
            log.error("healthz: %s failed: %s", name, result)
    online = {}
    if checks["redis"] == "ok":
        try:
            online = await asyncio.wait_for(asyncio.to_thread(workers_by_queue),
                                            CHECK_TIMEOUT_SECONDS)
            checks["workers"] = "ok"
        except faults.OUTSIDE as exc:
            checks["workers"] = f"error: {type(exc).__name__}: {exc}"
    status = 200 if healthy else 503
    viewer = await sync_to_async(may_see_details)(request)
    if viewer is None:
        return JsonResponse({"status": "ok" if healthy else "error"}, status=status)
    body = {"status": "ok" if healthy else "error", "checks": checks, "workers": online,
            "workers_online": {queue: len(hosts) for queue, hosts in online.items()}}
    if checks["database"] == "ok":
        body["open_streams"] = await database_sync_to_async(records.open_streams().count)()
        if checks.get("workers") == "ok":
            sources = await database_sync_to_async(enabled_sources)(
                None if viewer == "token" else viewer)
            body["sources_without_worker"] = [
                {"kind": kind, "id": s.pk, "name": s.name, "queue": s.queue}
                for kind, s in sources if not online.get(s.queue)]
    return JsonResponse(body, status=status)
