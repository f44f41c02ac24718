"""`manage.py streams`: list open streams; `streams stop ID` ends one; `streams history` lists
ended ones with how they ended."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from webapp.models import Ending, Stream
from webapp.streams import control, faults
from webapp.streams.aio import duration_text

COLUMNS = ("id", "user", "source", "started", "worker", "task id")
HISTORY_COLUMNS = ("id", "user", "source", "started", "duration", "lines", "ending", "detail")


def as_dict(stream):
    """Return the JSON view of one open stream."""
    return {"id": stream.pk, "user": stream.username, "kind": stream.kind,
            "source_id": stream.source_id, "source": stream.source_name,
            "queue": stream.queue, "started": stream.started.isoformat(),
            "worker": stream.worker, "task_id": stream.task_id,
            "lines_sent": stream.live_lines_sent}


def as_row(stream):
    """Return the table cells of one open stream."""
    started = timezone.localtime(stream.started).strftime("%Y-%m-%d %H:%M:%S")
    source = f"{stream.kind}:{stream.source_id} {stream.source_name}"
    return (str(stream.pk), stream.username, source, started,
            stream.worker or f"(waiting on {stream.queue})", stream.task_id)


def local_time(moment):
    """A timestamp in the server's time zone, to the second."""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


def history_dict(stream):
    """Return the JSON view of one ended stream."""
    return {"id": stream.pk, "user": stream.username, "kind": stream.kind,
            "source_id": stream.source_id, "source": stream.source_name,
            "queue": stream.queue, "started": stream.started.isoformat(),
            "ended": stream.ended.isoformat(), "worker": stream.worker,
            "task_id": stream.task_id, "lines_sent": stream.lines_sent,
            "ending": stream.ending, "end_reason": stream.end_reason}


def printable(text):
    """Text safe for a terminal: control characters (escape sequences, newlines) shown as \\xNN."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def history_row(stream):
    """Return the table cells of one ended stream."""
    seconds = (stream.ended - stream.started).total_seconds()
    cells = (str(stream.pk), stream.username,
             f"{stream.kind}:{stream.source_id} {stream.source_name}", local_time(stream.started),
             duration_text(seconds), str(stream.lines_sent), stream.ending or "-",
             stream.end_reason or "-")
    return tuple(printable(cell) for cell in cells)


def table(rows, header=COLUMNS):
    """Format rows as left-aligned columns under a header."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
                     for row in [header, *rows])


def positive(text):
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


class Command(BaseCommand):
    """List open streams, or stop one by id."""

    help = ("List open streams (id, user, source, started, worker, task id); "
            "`streams stop ID` ends one and tells its viewer; `streams history` lists ended "
            "streams and how they ended. lines_sent of an open stream is at most about a second "
            "old while lines flow (its consumer publishes it then and with each lease renewal).")

    def add_arguments(self, parser):
        """Declare the optional `stop ID` subcommand and --json for the listing."""
        parser.add_argument("--json", action="store_true", help="Print the list as JSON.")
        sub = parser.add_subparsers(dest="action", metavar="ACTION")
        stop = sub.add_parser("stop", help="End an open stream; its viewer is told why.")
        stop.add_argument("id", type=int, help="Stream id, as listed.")
        history = sub.add_parser("history", help="List ended streams, newest first.")
        history.add_argument("--ending", choices=Ending.values,
                             help="Only streams that ended this way.")
        history.add_argument("--limit", type=positive, default=50,
                             help="At most this many (default 50).")
        history.add_argument("--json", action="store_true", help="Print the list as JSON.")

    def handle(self, *args, **options):
        """List, or stop the given stream."""
        if options.get("action") == "stop":
            return self.stop(options["id"])
        if options.get("action") == "history":
            return self.history(options["ending"], options["limit"], options["json"])
        return self.list_open(options["json"])

    def list_open(self, as_json):
        """Print the open streams (records whose consumer is gone are closed first)."""
        try:
            control.prune_lost()
        except faults.OUTSIDE as exc:
            self.stderr.write(f"could not check leases in Redis ({exc}); listing every open "
                              "record")
        streams = control.open_streams()
        if as_json:
            live = control.live_lines_sent(streams)
            for stream in streams:
                stream.live_lines_sent = live[stream.pk]
            self.stdout.write(json.dumps([as_dict(s) for s in streams], indent=2))
        elif streams:
            self.stdout.write(table([as_row(s) for s in streams]))
        else:
            self.stdout.write("no open streams")

    def stop(self, stream_id):
        """Stop one stream and say what happened."""
        try:
            result = control.stop_stream(stream_id)
        except control.NotOpen as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(result.describe())

    def history(self, ending, limit, as_json):
        """Print the newest ended streams (optionally of one ending), as a table or JSON."""
        streams = Stream.objects.filter(ended__isnull=False)
        if ending:
            streams = streams.filter(ending=ending)
        streams = list(streams.order_by("-ended", "-pk")[:limit])
        if as_json:
            self.stdout.write(json.dumps([history_dict(s) for s in streams], indent=2))
        elif streams:
            self.stdout.write(table([history_row(s) for s in streams], HISTORY_COLUMNS))
        else:
            self.stdout.write("no ended streams" + (f" with ending {ending}" if ending else ""))
