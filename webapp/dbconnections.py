"""HTTP requests close their database connections as they end; stream consumers keep theirs.

Under ASGI, Django runs each HTTP request's database work in a thread of its own that ends
with the request, so a connection kept for reuse (`DATABASE_CONN_MAX_AGE`) would only be
left for the garbage collector. The stream consumers' database calls all run in one
long-lived thread per Daphne, and Celery's pool processes run one task after another: there
keeping the connection saves a new one per call.
"""

from django.core.signals import request_finished
from django.db import connections


def close_request_connections(**kwargs):
    """Close the ending request's database connections (its thread's)."""
    for connection in connections.all(initialized_only=True):
        connection.close()


def connect():
    """Close every HTTP request's connections when it finishes."""
    request_finished.connect(close_request_connections,
                             dispatch_uid="tailboard-close-request-connections")
