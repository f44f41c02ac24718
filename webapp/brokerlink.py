"""The worker's broker connection: after losing Redis, it tries again every 2 s at most.

Celery's consumer retries its broker connection 2, 4, 6, … seconds apart (up to 30 s): a
worker that lost Redis for 7 s read its queues again 12 s after the loss, 5 s after Redis was
back, and after a Sentinel failover the first retry after the promotion was up to 8 s late,
so streams waited that long to run. `Consumer` is Celery's, with the pauses between rounds of
attempts (every sentinel, or the one URL) held at 1 s, then 2 s: a worker reads its queues
again within about 2 s of Redis answering. Configured by `CELERY_WORKER_CONSUMER`.
"""

import functools

from celery.worker.consumer import Consumer as CeleryConsumer

# kombu's ensure_connection pauses interval_start, then + interval_step, up to interval_max
# (it sleeps in whole seconds).
RETRY_PAUSES = {"interval_start": 1, "interval_step": 1, "interval_max": 2}


class Consumer(CeleryConsumer):
    """Celery's worker consumer, reconnecting to the broker at most 2 s apart."""

    def ensure_connected(self, conn):
        """Celery's own, with short pauses between the connection attempts."""
        conn.ensure_connection = functools.partial(conn.ensure_connection, **RETRY_PAUSES)
        try:
            return super().ensure_connected(conn)
        finally:
            del conn.ensure_connection  # the class's method again
