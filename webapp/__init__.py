"""Tailboard's Django project; importing it loads the Celery app so shared tasks use it."""

from celery_app import app as celery_app

__all__ = ("celery_app",)
