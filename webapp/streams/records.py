"""Stream records in the database: opened, attributed to a worker, ended, counted."""

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from webapp.models import Stream
from webapp.reach import Reach


def open_streams(user=None):
    """Return the streams not yet ended, optionally only this user's."""
    rows = Stream.objects.filter(ended__isnull=True)
    return rows.filter(user=user) if user is not None else rows


def visible_to(user, rows=None):
    """Return the stream records this user may see: all for a superuser, else those of the
    sources the user may view (`Source.visible_to`, kind by kind)."""
    from webapp.streams.kinds import all_kinds

    rows = Stream.objects.all() if rows is None else rows
    if Reach.of(user).everything:
        return rows
    allowed = Q(pk__in=[])
    for kind in all_kinds():
        allowed |= Q(kind=kind.slug,
                     source_id__in=kind.source_model.objects.visible_to(user).values("pk"))
    return rows.filter(allowed)


def create(user, kind, source, options, task_id, channel_name):
    """Record a new stream and return it."""
    return Stream.objects.create(
        user=user, username=user.get_username(), kind=kind, source_id=source.pk,
        source_name=source.name, queue=source.queue, options=options, task_id=task_id,
        channel_name=channel_name,
    )


def set_worker(stream_id, worker):
    """Remember which worker runs the stream."""
    Stream.objects.filter(pk=stream_id).update(worker=worker[:200])


def end(stream_id, ending, detail="", lines_sent=None):
    """Mark a stream ended (an Ending, a detail text, lines sent when known), once.

    Later calls keep the first ending; the line count is the consumer's, so a record ended
    elsewhere first (admin stop, lost lease) still gets it when its consumer closes.
    """
    with transaction.atomic():
        ended = Stream.objects.filter(pk=stream_id, ended__isnull=True).update(
            ended=timezone.now(), ending=ending, end_reason=str(detail)[:200])
        if lines_sent is not None:
            Stream.objects.filter(pk=stream_id, lines_sent__lt=lines_sent).update(
                lines_sent=lines_sent)
        return ended


def end_many(stream_ids, ending, detail="", lines_sent=None):
    """Mark several open streams ended the same way ({id: lines sent} when known)."""
    with transaction.atomic():
        ended = Stream.objects.filter(pk__in=list(stream_ids), ended__isnull=True).update(
            ended=timezone.now(), ending=ending, end_reason=str(detail)[:200])
        for pk, count in (lines_sent or {}).items():
            Stream.objects.filter(pk=pk, lines_sent__lt=count).update(lines_sent=count)
        return ended


def open_task_ids(user=None):
    """Return (stream id, task id) pairs of open streams."""
    return list(open_streams(user).values_list("pk", "task_id"))
