"""`manage.py alerts list [--json]`: rules, their source, state and task; `alerts test RULE`
sends a test message to the rule's destinations and prints each result."""

import json

from django.core.management.base import BaseCommand, CommandError

from alerts import control, leases
from alerts.delivery import SENT
from alerts.models import AlertRule
from alerts.runner import send_test
from webapp.management.commands.streams import printable
from webapp.streams import faults

COLUMNS = ("id", "name", "source", "pattern", "fires", "cooldown", "enabled", "task", "state")


def as_dict(rule, task_id):
    """Return the JSON view of one rule (destinations by name: their URLs hold secrets)."""
    return {"id": rule.pk, "name": rule.name, "kind": rule.kind, "source_id": rule.source_id,
            "source": rule.source_label, "pattern": rule.pattern, "threshold": rule.threshold,
            "window": rule.window, "cooldown": rule.cooldown,
            "resolved_message": rule.resolved_message, "enabled": rule.enabled,
            "destinations": [d.name for d in rule.destinations.all()],
            "groups": [g.name for g in rule.groups.all()], "task_id": task_id,
            "state": rule.state,
            "state_changed": rule.state_changed.isoformat() if rule.state_changed else None}


def as_row(rule, task_id):
    """Return the table cells of one rule."""
    return (str(rule.pk), rule.name, rule.source_label, rule.pattern,
            f"{rule.threshold} in {rule.window}s", f"{rule.cooldown}s",
            "yes" if rule.enabled else "no", task_id or "-", rule.state or "-")


class Command(BaseCommand):
    help = "List alert rules, or send a test message to one rule's destinations."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="List the rules, their state and task.")
        listing.add_argument("--json", action="store_true", help="Print JSON.")
        test = sub.add_parser("test", help="Send a test message to a rule's destinations.")
        test.add_argument("rule", help="The rule's id or name.")

    def handle(self, *args, **options):
        if options["action"] == "list":
            return self.list(options["json"])
        return self.test(options["rule"])

    def list(self, as_json):
        rules = list(AlertRule.objects.prefetch_related("destinations", "groups"))
        try:
            held = leases.holders(control.redis_client(), [rule.pk for rule in rules])
        except faults.OUTSIDE as exc:
            self.stderr.write(f"cannot read the rules' leases from Redis: {exc}")
            held = {}
        if as_json:
            self.stdout.write(json.dumps([as_dict(r, held.get(r.pk)) for r in rules], indent=2))
            return
        rows = [COLUMNS] + [tuple(printable(cell) for cell in as_row(r, held.get(r.pk)))
                            for r in rules]
        widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip())

    def test(self, ref):
        rule = AlertRule.objects.filter(pk=int(ref)).first() if ref.isdigit() else None
        rule = rule or AlertRule.objects.filter(name=ref).first()
        if rule is None:
            raise CommandError(f"no alert rule {ref!r}")
        results = send_test(rule, worker="manage.py alerts test")
        if not results:
            raise CommandError(f"rule {rule.name} has no destinations")
        for name, result in results.items():
            self.stdout.write(f"{printable(name)}: {printable(result)}")
        if any(result != SENT for result in results.values()):
            raise CommandError("some destinations failed")
