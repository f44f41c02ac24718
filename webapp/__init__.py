"""Tailboard's Django project. The Celery app is loaded when Django is ready (apps.py), so
the pure modules under `webapp.streams` import without Celery."""
