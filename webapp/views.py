"""HTTP views: the dashboard and the health check."""

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from feeds.models import FeedSource
from tailf.models import LogSource
from webapp import leases

log = logging.getLogger("tailboard.health")


@never_cache
@login_required
def dashboard(request):
    """Show the sources this user may open, with the stream pane."""
    user = request.user
    logs = LogSource.objects.visible_to(user).filter(enabled=True).order_by("name")
    feeds = FeedSource.objects.visible_to(user).filter(enabled=True).order_by("name")
    return render(request, "dashboard.html", {"logs": logs, "feeds": feeds})


def check_database():
    """Run a trivial query."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis():
    """Ping Redis."""
    leases.sync_client().ping()


async def _layer_roundtrip():
    layer = get_channel_layer()
    channel = await layer.new_channel("healthz.")
    await layer.send(channel, {"type": "healthz.ping"})
    message = await asyncio.wait_for(layer.receive(channel), timeout=3)
    if message.get("type") != "healthz.ping":
        raise RuntimeError("the channel layer returned another message")


def check_channel_layer():
    """Send a message through the channel layer and receive it back."""
    async_to_sync(_layer_roundtrip)()


def workers_by_queue():
    """Return {queue: [worker hostnames]} of the workers answering now."""
    from celery_app import app

    replies = app.control.inspect(timeout=1.0).active_queues() or {}
    queues = {}
    for worker, worker_queues in sorted(replies.items()):
        for queue in worker_queues or []:
            queues.setdefault(queue["name"], []).append(worker)
    return queues


@never_cache
def healthz(request):
    """Answer 200 with JSON when database, Redis and channel layer answer; 503 otherwise."""
    checks = {}
    healthy = True
    for name, check in (("database", check_database), ("redis", check_redis),
                        ("channel_layer", check_channel_layer)):
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:
            healthy = False
            checks[name] = f"error: {exc}"
            log.error("healthz: %s failed: %s", name, exc)
    workers = {}
    if checks["redis"] == "ok":
        try:
            workers = workers_by_queue()
        except Exception as exc:
            checks["workers"] = f"error: {exc}"
    sources = [{"kind": kind, "id": s.pk, "name": s.name, "queue": s.queue,
                "workers_online": len(workers.get(s.queue, []))}
               for kind, model in (("log", LogSource), ("feed", FeedSource))
               for s in model.objects.filter(enabled=True)] if checks["database"] == "ok" else []
    body = {"status": "ok" if healthy else "error", "checks": checks, "workers": workers,
            "sources_without_worker": [s for s in sources if not s["workers_online"]]}
    return JsonResponse(body, status=200 if healthy else 503)
