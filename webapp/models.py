"""The source base shared by logs and feeds, and the record of every stream."""

import re

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from webapp.reach import Reach

QUEUE_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


def validate_queue(value):
    """Reject queue names that Celery or the shell would misread."""
    if not QUEUE_RE.match(value):
        raise ValidationError("Queue names use letters, digits, '.', '_' and '-' only.")


class SourceQuerySet(models.QuerySet):
    """Queries over sources that apply the default-deny rule (`webapp.reach`)."""

    def visible_to(self, user):
        """Return the sources this user may see: all for a superuser, else by group."""
        return Reach.of(user).filter(self)

    def open_to(self, user):
        """Return the sources this user may stream: those they see that are enabled."""
        return self.visible_to(user).filter(enabled=True)


class Source(models.Model):
    """Fields and access rule common to log and feed sources."""

    name = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=True)
    groups = models.ManyToManyField(Group, blank=True, related_name="+",
                                    help_text="Groups whose members may view this source.")

    objects = SourceQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self):
        return self.name

    def allows(self, user):
        """Tell whether this user may see the source: `visible_to`, for this one source."""
        return type(self).objects.visible_to(user).filter(pk=self.pk).exists()


def may_change_location(user):
    """Tell whether this user may set what a source reads (superuser or the permission)."""
    return bool(user and user.is_active and user.has_perm("webapp.change_source_location"))


class Ending(models.TextChoices):
    """How a stream ended (the detail text says more)."""

    VIEWER_STOP = "viewer_stop", "stopped by the viewer"
    DISCONNECT = "disconnect", "viewer disconnected"
    ADMIN_STOP = "admin_stop", "stopped by an administrator"
    LEASE_LAPSED = "lease_lapsed", "lease lapsed (viewer gone)"
    WORKER_LOST = "worker_lost", "worker lost"
    TOO_SLOW = "too_slow", "viewer too slow (not reading)"
    MAX_DURATION = "max_duration", "duration limit reached"
    ACCESS_LOST = "access_lost", "viewer lost access"
    SOURCE_GONE = "source_gone", "source gone"
    SOURCE_ENDED = "source_ended", "the stream ended"
    ERROR = "error", "error"


class Stream(models.Model):
    """One WebSocket connection and its Celery task, from open to end."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True)
    username = models.CharField(max_length=150)
    kind = models.CharField(max_length=32, help_text="The source kind's slug (log, feed, ...).")
    source_id = models.PositiveBigIntegerField()
    source_name = models.CharField(max_length=100)
    queue = models.CharField(max_length=100)
    options = models.JSONField(default=dict, blank=True)
    task_id = models.CharField(max_length=64, unique=True)
    channel_name = models.CharField(max_length=200)
    worker = models.CharField(max_length=200, blank=True)
    started = models.DateTimeField(default=timezone.now)
    ended = models.DateTimeField(null=True, blank=True, db_index=True)
    ending = models.CharField(max_length=20, choices=Ending.choices, blank=True, db_index=True)
    end_reason = models.CharField("detail", max_length=200, blank=True)
    lines_sent = models.PositiveBigIntegerField(
        default=0, help_text="Lines sent to the viewer, counted by its connection when it "
                             "ended (open streams: see the live figure in Redis).")

    class Meta:
        ordering = ["-started"]
        # Not about streams: the one permission for what any kind's sources read (Kind.location).
        permissions = [("change_source_location",
                        "Can change what a source reads (log path, feed URL, queue)")]

    def __str__(self):
        return f"#{self.pk} {self.username} {self.kind}:{self.source_name}"
