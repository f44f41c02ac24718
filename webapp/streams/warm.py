"""Warming a pool process before its first stream (called from `worker_process_init`).

Celery kills a pool process that is not up within its `worker_proc_alive_timeout` (4 s)
and starts another, so every step here is bounded: a database that does not answer, or a
Redis that does not, costs at most WARM_SECONDS each, and the first stream then does the
work itself.
"""

import asyncio

from django.db import connection

from webapp.streams import leases
from webapp.streams.kinds import all_kinds

WARM_SECONDS = 1.5


def warm_process():
    """Open the database connection, read each kind's source table, and make one round trip
    over the task's async Redis client on a throwaway event loop."""
    _connect_database()
    for kind in all_kinds():
        kind.source_model.objects.filter(pk=0).first()
    asyncio.run(asyncio.wait_for(_touch_redis(), WARM_SECONDS))


def _connect_database():
    """Open the connection, with a connect timeout for PostgreSQL (a file for SQLite)."""
    options = connection.settings_dict.setdefault("OPTIONS", {})
    bounded = connection.vendor == "postgresql" and "connect_timeout" not in options
    if bounded:
        options["connect_timeout"] = max(2, int(WARM_SECONDS))  # libpq's least is 2 s
    try:
        connection.ensure_connection()
    finally:
        if bounded:
            del options["connect_timeout"]


async def _touch_redis():
    redis = leases.async_client()
    try:
        await leases.aheld(redis, "warm-up")
    finally:
        await redis.aclose()
