"""The Celery app: `celery -A celery_app worker -l info -Q tailf,feeds`."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("tailboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

import webapp.streams.revoke  # noqa: E402,F401  (registers the stream_revoke control command)

_stop_announcer = None


@signals.worker_init.connect
def freeze_before_fork(**kwargs):
    """Move everything loaded so far out of the GC's reach, so forked children share it."""
    import gc

    gc.collect()
    gc.freeze()


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
