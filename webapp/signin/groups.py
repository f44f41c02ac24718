"""Directory groups onto Django groups: the one rule every directory sign-in follows."""

import logging

from django.contrib.auth.models import Group

log = logging.getLogger("tailboard.signin")


def sync_groups(user, names, origin):
    """Make the user's Django groups exactly the named groups that exist; return their names.

    A name that no Django group has is left out (groups are created by an administrator,
    who gives sources to them): the directory decides membership, never which groups exist.
    Membership in any other group is removed. `origin` names the directory in the log.
    """
    names = {str(name) for name in names if name}
    wanted = set(Group.objects.filter(name__in=names))
    current = set(user.groups.all())
    added, removed = wanted - current, current - wanted
    if added:
        user.groups.add(*added)
    if removed:
        user.groups.remove(*removed)
    if added or removed:
        log.info("%s groups from %s: added %s, removed %s", user.username, origin,
                 sorted(g.name for g in added) or "none", sorted(g.name for g in removed) or "none")
    return sorted(group.name for group in wanted)
