"""`manage.py streams`: list open streams; `manage.py streams stop ID` ends one."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from webapp.streams import control

COLUMNS = ("id", "user", "source", "started", "worker", "task id")


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


def table(rows, header=COLUMNS):
    """Format rows as left-aligned columns under a header."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in [header, *rows])


class Command(BaseCommand):
    """List open streams, or stop one by id."""

    help = ("List open streams (id, user, source, started, worker, task id); "
            "`streams stop ID` ends one and tells its viewer.")

    def add_arguments(self, parser):
        """Declare the optional `stop ID` subcommand and --json for the listing."""
        parser.add_argument("--json", action="store_true", help="Print the list as JSON.")
        sub = parser.add_subparsers(dest="action", metavar="ACTION")
        stop = sub.add_parser("stop", help="End an open stream; its viewer is told why.")
        stop.add_argument("id", type=int, help="Stream id, as listed.")

    def handle(self, *args, **options):
        """List, or stop the given stream."""
        if options.get("action") == "stop":
            return self.stop(options["id"])
        return self.list_open(options["json"])

    def list_open(self, as_json):
        """Print the open streams (records whose consumer is gone are closed first)."""
        try:
            control.prune_lost()
        except Exception as exc:
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
