"""Journal sources: a systemd journal folder on the hosts served by one Celery queue."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from tailf.models import validate_absolute_path
from tailf.roots import OutsideRoots, check_under_roots
from webapp.models import Source, validate_queue

# systemd unit names (systemd.unit(5)): letters, digits and ":-_.\@", at most 256 characters.
UNIT_RE = re.compile(r"^[A-Za-z0-9:_.\\@-]{1,256}$")
MAX_NAMES = 50
MAX_IDENTIFIER = 256


def validate_units(value):
    """Require a list of systemd unit names (journalctl's _SYSTEMD_UNIT values)."""
    if not isinstance(value, list) or len(value) > MAX_NAMES:
        raise ValidationError(f"Give a list of at most {MAX_NAMES} unit names.")
    for unit in value:
        if not isinstance(unit, str) or not UNIT_RE.match(unit):
            raise ValidationError(f"{str(unit)[:80]!r} is not a systemd unit name "
                                  "(letters, digits and ':-_.\\@'; e.g. nginx.service).")


def validate_identifiers(value):
    """Require a list of syslog identifiers (SYSLOG_IDENTIFIER values: text, no '=' or NUL)."""
    if not isinstance(value, list) or len(value) > MAX_NAMES:
        raise ValidationError(f"Give a list of at most {MAX_NAMES} syslog identifiers.")
    for name in value:
        if (not isinstance(name, str) or not name or len(name) > MAX_IDENTIFIER
                or any(ch in name for ch in "\x00\n")):
            raise ValidationError(f"{str(name)[:80]!r} is not a syslog identifier "
                                  f"(1 to {MAX_IDENTIFIER} characters on one line).")


class JournalSource(Source):
    """The systemd journal of a folder, filtered by units, identifiers and priority."""

    directory = models.CharField(max_length=4096, default="/var/log/journal",
                                 validators=[validate_absolute_path],
                                 help_text="Journal folder on the worker's host (under "
                                           "LOG_ROOTS); its machine-id subfolders are read.")
    units = models.JSONField(default=list, blank=True, validators=[validate_units],
                             help_text='Systemd units to show, e.g. ["nginx.service"]; '
                                       "empty: all.")
    identifiers = models.JSONField(default=list, blank=True, validators=[validate_identifiers],
                                   help_text='Syslog identifiers to show, e.g. ["sshd"]; '
                                             "empty: all.")
    priority = models.PositiveSmallIntegerField(
        default=7, choices=[(n, f"{n} ({name})") for n, name in enumerate(
            ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"))],
        help_text="Show entries at this priority or more urgent (0 emerg .. 7 debug).")
    queue = models.CharField(max_length=100, default="tailf", validators=[validate_queue],
                             help_text="Celery queue whose workers can read this journal "
                                       "(the host's log queue).")

    def clean(self):
        """Refuse folders outside LOG_ROOTS (as given and as resolved)."""
        super().clean()
        if not self.directory:
            return
        try:
            check_under_roots(self.directory, settings.LOG_ROOTS)
        except OutsideRoots as exc:
            raise ValidationError({"directory": str(exc)}) from None

    class Meta(Source.Meta):
        verbose_name = "journal source"
