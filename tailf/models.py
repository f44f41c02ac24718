"""Log sources: a file on the hosts served by one Celery queue."""

import os

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from tailf.follow import check_encoding
from tailf.multi import check_glob
from tailf.roots import OutsideRoots, check_under_roots
from webapp.models import Source, validate_queue


def validate_absolute_path(value):
    """Require an absolute, normalised path with no NUL byte."""
    if "\x00" in value or not os.path.isabs(value) or os.path.normpath(value) != value:
        raise ValidationError("Give an absolute, normalised path (no '..', no trailing '/').")


def validate_encoding(value):
    """Require an encoding Python knows and whose lines end in a "\\n" byte (not UTF-16)."""
    try:
        check_encoding(value)
    except LookupError:
        raise ValidationError(f"Unknown encoding {value!r}.") from None
    except ValueError as exc:
        raise ValidationError(f"{exc}.") from None


class LogSource(Source):
    """A log file; it need not exist yet, the stream waits for it."""

    path = models.CharField(max_length=4096, validators=[validate_absolute_path])
    queue = models.CharField(max_length=100, default="tailf", validators=[validate_queue],
                             help_text="Celery queue whose workers can read this file.")
    encoding = models.CharField(max_length=40, default="utf-8", validators=[validate_encoding])
    rotate_wait = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds a renamed (rotated) file keeps being read "
                                         "while it gets lines; empty: TAILF_ROTATE_WAIT.")

    @staticmethod
    def location_help():
        """The admin's help for the path field: which folders a path may be under."""
        roots = ", ".join(settings.LOG_ROOTS)
        return {"path": f"An absolute path under one of the log roots (LOG_ROOTS): {roots}. "
                        "A glob (*, ?, [...]) is allowed in its last part only, e.g. "
                        f"{settings.LOG_ROOTS[0].rstrip('/')}/app/*.log."}

    def clean(self):
        """Refuse paths outside LOG_ROOTS (as given and as resolved) and misplaced globs."""
        super().clean()
        if not self.path:
            return
        try:
            check_glob(self.path)
            check_under_roots(self.path, settings.LOG_ROOTS)
        except (OutsideRoots, ValueError) as exc:
            raise ValidationError({"path": str(exc)}) from None

    class Meta(Source.Meta):
        verbose_name = "log source"
