"""The Alerts page: the last firings of the rules the user may see, as plain text."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from alerts.access import events_visible_to, rules_visible_to

SHOWN = 100


@never_cache
@login_required
def alert_events(request):
    """List the latest events of visible rules (samples and results escaped as text)."""
    rules = list(rules_visible_to(request.user).order_by("name"))
    events = list(events_visible_to(request.user, SHOWN))
    for event in events:
        event.shown_results = shown_results(event.results, request.user.is_staff)
    return render(request, "alerts/events.html", {"events": events, "rules": rules,
                                                  "shown": SHOWN})


def shown_results(results, staff):
    """Each destination's result; viewers who are not staff see only sent/failed/refused
    (the detail may name internal hosts)."""
    return [(name, result if staff else result.split(":", 1)[0].split(" after ")[0])
            for name, result in results.items()]
