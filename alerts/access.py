"""Who sees a rule's firings: those who may see its source (the sources' default-deny rule)
and, when the rule lists groups, belong to one of them."""

from django.db.models import Q

from alerts.models import AlertEvent, AlertRule
from webapp.reach import Reach
from webapp.streams.kinds import all_kinds


def rules_visible_to(user):
    """Return the rules whose firings this user may see."""
    reach = Reach.of(user)
    if reach.nobody:
        return AlertRule.objects.none()
    by_source = Q(pk__in=[])
    for kind in all_kinds():
        visible = kind.source_model.objects.visible_to(user).values("pk")
        by_source |= Q(kind=kind.slug, source_id__in=visible)
    rules = AlertRule.objects.filter(by_source)
    if reach.everything:
        return rules
    return rules.filter(Q(groups__isnull=True) | Q(groups__in=reach.groups)).distinct()


def events_visible_to(user, limit=100):
    """Return the latest events of the rules this user may see, newest first."""
    rules = rules_visible_to(user).values("pk")
    return (AlertEvent.objects.filter(rule__in=rules).select_related("rule")
            .order_by("-time", "-pk")[:limit])
