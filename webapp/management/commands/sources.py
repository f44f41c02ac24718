"""`manage.py sources`: add, list and remove log and feed sources."""

import json

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from feeds.models import FeedSource
from tailf.models import LogSource

KINDS = {"log": LogSource, "feed": FeedSource}


def describe(exc):
    """Turn a ValidationError into one readable line."""
    if hasattr(exc, "error_dict"):
        fields = exc.message_dict.items()
        return " ".join(f"{field}: {' '.join(dict.fromkeys(msgs))}" for field, msgs in fields)
    return " ".join(dict.fromkeys(exc.messages))


def as_dict(kind, source):
    """Return the JSON view of one source."""
    data = {"kind": kind, "id": source.pk, "name": source.name}
    if kind == "log":
        data["path"] = source.path
    else:
        data["url"] = source.url
        data["interval"] = source.interval
    data.update(queue=source.queue, enabled=source.enabled,
                groups=sorted(g.name for g in source.groups.all()))
    return data


class Command(BaseCommand):
    """Add, list and remove log and feed sources."""

    help = "Manage log and feed sources: add-log, add-feed, list, remove."

    def add_arguments(self, parser):
        """Declare the add-log, add-feed, list and remove subcommands."""
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        add_log = sub.add_parser("add-log", help="Add a log source; print its id.")
        add_log.add_argument("name")
        add_log.add_argument("path", help="Absolute path; the file need not exist yet.")

        add_feed = sub.add_parser("add-feed", help="Add a feed source; print its id.")
        add_feed.add_argument("name")
        add_feed.add_argument("url", help="http or https URL of an RSS/Atom feed.")
        add_feed.add_argument("--interval", type=int,
                              help="Seconds between polls (min 5, default 60).")

        for add in (add_log, add_feed):
            add.add_argument("--queue", help="Celery queue serving this source.")
            add.add_argument("--group", action="append", dest="groups", metavar="GROUP",
                             help="Group allowed to view it (repeatable; created if missing).")

        listing = sub.add_parser("list", help="List all sources.")
        listing.add_argument("--json", action="store_true", help="Print a JSON list.")

        remove = sub.add_parser("remove", help="Remove a source.")
        remove.add_argument("kind", choices=sorted(KINDS))
        remove.add_argument("id", type=int)

    def handle(self, *args, **options):
        """Dispatch to the chosen subcommand."""
        action = options["action"]
        if action == "add-log":
            self.add("log", options, path=options["path"])
        elif action == "add-feed":
            fields = {"url": options["url"]}
            if options["interval"] is not None:
                fields["interval"] = options["interval"]
            self.add("feed", options, **fields)
        elif action == "list":
            self.list_sources(options["json"])
        else:
            self.remove(options["kind"], options["id"])

    def add(self, kind, options, **fields):
        """Validate and save a new source, grant its groups, print its id last."""
        if options["queue"] is not None:
            fields["queue"] = options["queue"]
        source = KINDS[kind](name=options["name"], **fields)
        try:
            source.full_clean()
        except ValidationError as exc:
            hint = " (http or https only)" if "url" in exc.message_dict else ""
            raise CommandError(f"Invalid {kind} source: {describe(exc)}{hint}") from None
        with transaction.atomic():
            groups = [self.group(name) for name in options["groups"] or []]
            source.save()
            source.groups.set(groups)
        target = source.path if kind == "log" else f"{source.url} every {source.interval}s"
        self.stdout.write(f"Added {kind} source {source.name!r}: {target} (queue {source.queue})")
        self.stdout.write(str(source.pk))

    def group(self, name):
        """Return the named group, creating it (and saying so on stderr) if missing."""
        existing = Group.objects.filter(name=name).first()
        if existing:
            return existing
        group = Group(name=name)
        try:
            group.full_clean()
        except ValidationError as exc:
            raise CommandError(f"Invalid group {name!r}: {describe(exc)}") from None
        group.save()
        self.stderr.write(f"Created group {name!r}.")
        return group

    def list_sources(self, as_json):
        """Print every source, as a table or as JSON."""
        rows = [as_dict(kind, source) for kind, model in KINDS.items()
                for source in model.objects.prefetch_related("groups").order_by("pk")]
        if as_json:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        table = [("KIND", "ID", "NAME", "QUEUE", "ENABLED", "GROUPS", "TARGET")]
        for r in rows:
            target = r.get("path") or f"{r['url']} every {r['interval']}s"
            table.append((r["kind"], str(r["id"]), r["name"], r["queue"],
                          "yes" if r["enabled"] else "no", ",".join(r["groups"]) or "-", target))
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
        for row in table:
            cells = [cell.ljust(width) for cell, width in zip(row, widths)]
            self.stdout.write("  ".join(cells + [row[-1]]))

    def remove(self, kind, pk):
        """Delete one source by kind and id."""
        source = KINDS[kind].objects.filter(pk=pk).first()
        if source is None:
            raise CommandError(f"No {kind} source with id {pk}.")
        source.delete()
        self.stdout.write(f"Removed {kind} source {pk} ({source.name!r}).")
