"""Warming a pool process before its first stream (called from `worker_process_init`)."""

import asyncio

from django.db import connection

from webapp.streams import leases, tasklayer
from webapp.streams.kinds import all_kinds


def warm_process():
    """Open the database connection, read each kind's source table, and make one round trip
    over the async Redis client and the task's channel layer on a throwaway event loop."""
    connection.ensure_connection()
    for kind in all_kinds():
        kind.source_model.objects.filter(pk=0).first()
    asyncio.run(_touch_redis())


async def _touch_redis():
    redis = leases.async_client()
    layer = tasklayer.task_layer()
    try:
        await leases.aheld(redis, "warm-up")
        await layer.new_channel()
    finally:
        await redis.aclose()
        if hasattr(layer, "close_pools"):
            await layer.close_pools()
