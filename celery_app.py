"""The Celery app: `celery -A celery_app worker -l info -Q tailf,feeds`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("tailboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["tailf", "feeds"])
