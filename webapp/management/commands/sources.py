"""`manage.py sources`: add, list and remove log and feed sources; import and export OPML."""

import json
import os
import sys
import tempfile

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction

from webapp import opml
from webapp.streams.kinds import all_kinds, get


def describe(exc):
    """Turn a ValidationError into one readable line."""
    if hasattr(exc, "error_dict"):
        fields = exc.message_dict.items()
        return " ".join(f"{field}: {' '.join(dict.fromkeys(msgs))}" for field, msgs in fields)
    return " ".join(dict.fromkeys(exc.messages))


def as_dict(kind, source):
    """Return the JSON view of one source."""
    data = {"kind": kind.slug, "id": source.pk, "name": source.name}
    data.update({name: getattr(source, name) for name in kind.fields})
    data.update(queue=source.queue, enabled=source.enabled,
                groups=sorted(g.name for g in source.groups.all()))
    return data


class Command(BaseCommand):
    """Add, list and remove log and feed sources."""

    help = ("Manage log and feed sources: add-log, add-feed, list, remove, import-opml, "
            "export-opml.")

    def add_arguments(self, parser):
        """Declare the add-<kind>, list, remove, import-opml and export-opml subcommands."""
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        for kind in all_kinds():
            add = sub.add_parser(f"add-{kind.slug}",
                                 help=f"Add a {kind.slug} source; print its id.")
            add.set_defaults(kind=kind.slug)
            add.add_argument("name")
            if kind.add_argument:
                add.add_argument(kind.add_argument[0], help=kind.add_argument[1])
            for flag, field, kind_type, text in kind.add_options:
                if kind_type is list:
                    add.add_argument(flag, dest=field, action="append", help=text)
                else:
                    add.add_argument(flag, dest=field, type=kind_type, help=text)
            add.add_argument("--queue", help="Celery queue serving this source.")
            add.add_argument("--group", action="append", dest="groups", metavar="GROUP",
                             help="Group allowed to view it (repeatable; created if missing).")

        listing = sub.add_parser("list", help="List all sources.")
        listing.add_argument("--json", action="store_true", help="Print a JSON list.")

        remove = sub.add_parser("remove", help="Remove a source.")
        remove.add_argument("kind", choices=[kind.slug for kind in all_kinds()])
        remove.add_argument("id", type=int)

        opml_in = sub.add_parser("import-opml", help="Add every feed of an OPML file, or none.")
        opml_in.add_argument("file", help="OPML file (- reads stdin).")
        opml_in.add_argument("--group", action="append", dest="groups", metavar="GROUP",
                             help="Group allowed to view the feeds (repeatable; created if "
                                  "missing). OPML categories never grant access.")
        opml_in.add_argument("--queue", help="Celery queue serving these feeds.")
        opml_in.add_argument("--interval", type=int, help="Seconds between polls (min 5).")

        opml_out = sub.add_parser("export-opml", help="Write all feed sources as OPML.")
        opml_out.add_argument("file", nargs="?", default="-",
                              help="Where to write (default: stdout).")

    def handle(self, *args, **options):
        """Dispatch to the chosen subcommand."""
        action = options["action"]
        if action.startswith("add-"):
            self.add(get(options["kind"]), options)
        elif action == "list":
            self.list_sources(options["json"])
        elif action == "import-opml":
            self.import_opml(options)
        elif action == "export-opml":
            self.export_opml(options["file"])
        else:
            self.remove(get(options["kind"]), options["id"])

    def add(self, kind, options):
        """Validate and save a new source, grant its groups, print its id last."""
        fields = {kind.add_argument[0]: options[kind.add_argument[0]]} if kind.add_argument else {}
        for _, field, _, _ in kind.add_options:
            if options.get(field) is not None:
                fields[field] = options[field]
        if options["queue"] is not None:
            fields["queue"] = options["queue"]
        source = kind.source_model(name=options["name"], **fields)
        try:
            source.full_clean()
        except ValidationError as exc:
            hint = " (http or https only)" if "url" in exc.message_dict else ""
            raise CommandError(f"Invalid {kind.slug} source: {describe(exc)}{hint}") from None
        with transaction.atomic():
            groups = [self.group(name) for name in options["groups"] or []]
            source.save()
            source.groups.set(groups)
        self.stdout.write(f"Added {kind.slug} source {source.name!r}: {kind.describe(source)} "
                          f"(queue {source.queue})")
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
        rows = [(kind, source, as_dict(kind, source)) for kind in all_kinds()
                for source in kind.source_model.objects.prefetch_related("groups").order_by("pk")]
        if as_json:
            self.stdout.write(json.dumps([row for _, _, row in rows], indent=2))
            return
        table = [("KIND", "ID", "NAME", "QUEUE", "ENABLED", "GROUPS", "TARGET")]
        for kind, source, r in rows:
            table.append((r["kind"], str(r["id"]), r["name"], r["queue"],
                          "yes" if r["enabled"] else "no", ",".join(r["groups"]) or "-",
                          kind.describe(source)))
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
        for row in table:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.stdout.write("  ".join(cells + [row[-1]]))

    def remove(self, kind, pk):
        """Delete one source by kind and id."""
        source = kind.source_model.objects.filter(pk=pk).first()
        if source is None:
            raise CommandError(f"No {kind.slug} source with id {pk}.")
        source.delete()
        self.stdout.write(f"Removed {kind.slug} source {pk} ({source.name!r}).")

    def feed_kind(self):
        """Return the registered feed kind (OPML lists feeds only)."""
        try:
            return get("feed")
        except LookupError as exc:
            raise CommandError(str(exc)) from None

    def import_opml(self, options):
        """Check the whole file and the options first, reporting every problem at once; then
        add every feed in one transaction, or none."""
        kind = self.feed_kind()
        model = kind.source_model
        problems = []
        feeds = self.read_opml(options["file"], problems)
        repeated = opml.duplicates(feeds)
        if repeated:
            problems.append(f"duplicate names in the file: {', '.join(map(repr, repeated))}")
        taken = set(model.objects.filter(name__in=[f.name for f in feeds])
                    .values_list("name", flat=True))
        if taken:
            problems.append(f"sources with these names exist already: "
                            f"{', '.join(repr(f.name) for f in feeds if f.name in taken)}")
        present = dict(model.objects.filter(url__in=[f.url for f in feeds])
                       .values_list("url", "name"))
        first_named = {}
        for feed in feeds:
            other = present.get(feed.url) or first_named.setdefault(feed.url, feed.name)
            if other != feed.name:
                where = "source" if feed.url in present else "feed in the file"
                problems.append(f"{feed.name!r}: {feed.url} is already the {where} {other!r}")
        fields = {key: options[key] for key in ("queue", "interval") if options[key] is not None}
        probe = model(name="probe", url="https://example.org/", **fields)
        try:
            probe.full_clean(exclude=["name", "url"], validate_unique=False)
        except ValidationError as exc:
            problems.append(f"option {describe(exc)}")
        sources = []
        for number, feed in enumerate(feeds, 1):
            source = model(name=feed.name, url=feed.url, **fields)
            try:
                source.full_clean(exclude=list(fields), validate_unique=False)
            except ValidationError as exc:
                problems.append(f"feed {number} ({feed.name!r}, {feed.url!r}): {describe(exc)}")
            sources.append(source)
        for name in options["groups"] or []:
            if not Group.objects.filter(name=name).exists():
                try:
                    Group(name=name).full_clean()
                except ValidationError as exc:
                    problems.append(f"invalid group {name!r}: {describe(exc)}")
        if problems:
            count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
            raise CommandError(f"Nothing imported: {count} in {options['file']}:\n"
                               + "\n".join(f"  - {problem}" for problem in problems))
        try:
            with transaction.atomic():
                groups = [self.group(name) for name in options["groups"] or []]
                for source in sources:
                    source.save()
                    source.groups.set(groups)
        except IntegrityError as exc:
            raise CommandError(f"Nothing imported: a name was taken meanwhile ({exc})") from None
        for source in sources:
            self.stdout.write(f"Added feed source {source.name!r}: {kind.describe(source)} "
                              f"(queue {source.queue}) id {source.pk}")
        self.stdout.write(f"Imported {len(sources)} feed source"
                          f"{'s' if len(sources) != 1 else ''}.")

    def read_opml(self, path, problems=None):
        """Read and parse an OPML file (or stdin), turning a failure to read it into a
        CommandError; feeds with bad URLs go to `problems` (see opml.parse)."""
        try:
            if path == "-":
                data = opml.read_limited(sys.stdin.buffer)
            else:
                with open(path, "rb") as stream:
                    data = opml.read_limited(stream)
            return opml.parse(data, problems)
        except opml.OpmlError as exc:
            raise CommandError(f"Nothing imported: {path}: {exc}") from None
        except OSError as exc:
            raise CommandError(f"Nothing imported: cannot read {path}: "
                               f"{exc.strerror or exc}") from None

    def export_opml(self, path):
        """Write every feed source as OPML, under a category named after its groups."""
        model = self.feed_kind().source_model
        feeds = []
        for source in model.objects.prefetch_related("groups").order_by("name"):
            groups = ", ".join(sorted(group.name for group in source.groups.all()))
            feeds.append(opml.Feed(name=source.name, url=source.url,
                                   categories=(groups,) if groups else ()))
        document = opml.render(feeds)
        if path == "-":
            self.stdout.write(document.decode("utf-8"), ending="")
            return
        self.write_atomically(path, document)
        self.stderr.write(f"Exported {len(feeds)} feed source{'s' if len(feeds) != 1 else ''} "
                          f"to {path}.")

    def write_atomically(self, path, data):
        """Replace the file at path in one step (a symlink there is replaced, not followed)."""
        folder = os.path.dirname(os.path.abspath(path))
        try:
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=".opml-")
        except OSError as exc:
            raise CommandError(f"cannot write to {folder}: {exc.strerror or exc}") from None
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except OSError as exc:
            os.unlink(temporary)
            raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None
