"""The Celery app: `celery -A celery_app worker -l info -Q tailf,feeds`."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("tailboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

import webapp.streams.stop  # noqa: E402,F401  (registers the stream_revoke control command)

_stop_announcer = None


@signals.worker_init.connect
def freeze_before_fork(**kwargs):
    """Move everything loaded so far out of the GC's reach, so forked children share it."""
    import gc

    gc.collect()
    gc.freeze()


@signals.worker_init.connect
def warm_pool_processes(**kwargs):
    """Warm each pool process as it starts; connected here, after Celery's Django fix-up has
    connected its own handler (which closes the database connections a child inherits), so
    it runs after that one."""
    signals.worker_process_init.connect(warm_pool_process, weak=False)


def warm_pool_process(**kwargs):
    """Before a pool process takes its first stream: open its database connection, read each
    kind's source table once and make one round trip over the task's async Redis client on a
    throwaway loop (each bounded: `webapp/streams/warm.py`), so the first viewer after a
    start does not wait for that. A failure here is only logged: the first task then does
    the same work itself."""
    import logging

    log = logging.getLogger("tailboard.tasks")
    try:
        from webapp.streams.warm import warm_process

        warm_process()
    except Exception as exc:
        log.warning("pool process %s not warmed (%s: %s); its first stream warms it",
                    os.getpid(), type(exc).__name__, exc)


@signals.worker_ready.connect
def announce_worker(sender=None, **kwargs):
    """Register this worker and its queues in Redis while it runs."""
    global _stop_announcer
    from webapp.streams.workers import start_announcer

    queues = [queue.name for queue in sender.task_consumer.queues]
    _stop_announcer = start_announcer(sender.hostname, queues)


@signals.worker_shutdown.connect
def withdraw_worker(**kwargs):
    """Stop announcing on shutdown."""
    if _stop_announcer:
        _stop_announcer()
