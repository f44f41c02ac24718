"""What a broad `except` may swallow: failures from outside, never our own bugs in tests.

`OUTSIDE` lists the exceptions the world raises at us (I/O, the network, Redis, the database,
the broker); a site that expects those catches them by name. A last-resort guard that keeps a
stream, a loop or a worker thread alive catches everything else too, and calls `contained()`
in its `except` block: the exception is logged with its traceback and, when
RAISE_CONTAINED_ERRORS is on (always under the test suite), raised again, so a bug fails the
test instead of becoming a polite notice.
"""

from django.db import DatabaseError
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

OUTSIDE = (OSError, RedisError, DatabaseError, BrokerError)


def raising():
    """Whether contained errors are raised again (RAISE_CONTAINED_ERRORS)."""
    from django.conf import settings

    return getattr(settings, "RAISE_CONTAINED_ERRORS", False)


def contained(log, what, *args):
    """Log the exception being handled, with its traceback; raise it again under tests.

    Call it only inside an `except` block: `what` and `args` are the log message.
    """
    log.exception(what + " (an unexpected error, contained)", *args)
    if raising():
        raise  # the exception the caller's except block is handling
