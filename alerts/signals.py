"""A saved rule restarts its task (the new settings apply at once); a deleted one is revoked."""

import logging

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from webapp.streams import faults

log = logging.getLogger("tailboard.alerts")


def rule_saved(sender, instance, **kwargs):
    """Restart the rule's task after the save commits (stop only, when it is disabled)."""
    from alerts import control
    from alerts.models import AlertRule

    pk = instance.pk

    def after():
        try:
            rule = AlertRule.objects.filter(pk=pk).first()
            if rule is None:
                control.stop(pk)
            else:
                control.restart(rule)
        except Exception as exc:
            if not isinstance(exc, faults.OUTSIDE):
                faults.contained(log, "alert rule %s: restart failed", pk)
            log.error("alert rule %s: could not restart its task (the supervisor will): %s",
                      instance.pk, exc)

    transaction.on_commit(after)


def rule_deleted(sender, instance, **kwargs):
    """Revoke the rule's task after the delete commits."""
    from alerts import control

    pk = instance.pk

    def after():
        try:
            control.stop(pk)
        except Exception as exc:
            if not isinstance(exc, faults.OUTSIDE):
                faults.contained(log, "alert rule %s: revoke failed", pk)
            log.error("alert rule %s: could not revoke its task (the supervisor will): %s",
                      pk, exc)

    transaction.on_commit(after)


def connect():
    """Connect the handlers to AlertRule's signals."""
    from alerts.models import AlertRule

    post_save.connect(rule_saved, sender=AlertRule, dispatch_uid="alerts.rule_saved")
    post_delete.connect(rule_deleted, sender=AlertRule, dispatch_uid="alerts.rule_deleted")
