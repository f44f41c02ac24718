"""Who may see a source: the one rule, decided once per user and applied two ways.

Default-deny: an anonymous or inactive user sees no source; an active superuser sees every
source; anyone else sees the sources that share at least one group with them (a source
with no groups is seen by superusers only). `Reach.of(user)` is that decision about the
user; `Reach.filter` applies it to a query (`Source.objects.visible_to`, and through it
`Source.allows`, the admin, the dashboard, `/healthz`, stream records and alert rules) and
`Reach.sees` to group ids already read (the bulk re-check of running streams,
`streams.access.lost_many`, which must not query per stream).

Seeing is not opening: a disabled source stays visible (the admin lists it; its stream
records and alert rules stay readable) but cannot be streamed — `SourceQuerySet.open_to`
and `access.verdict` add `enabled` on top of this rule.
"""

NOBODY, GROUPS, EVERYTHING = "nobody", "groups", "everything"


class Reach:
    """What one user may see: nothing, every source, or the sources of some groups."""

    def __init__(self, scope, groups=frozenset()):
        self.scope = scope
        self.groups = groups  # group ids: a set, or a query of them (left to the database)

    @classmethod
    def of(cls, user, group_ids=None):
        """Decide for this user (None and AnonymousUser too); `group_ids` when already read."""
        if user is None or not user.is_authenticated or not user.is_active:
            return cls(NOBODY)
        if user.is_superuser:
            return cls(EVERYTHING)
        if group_ids is None:
            return cls(GROUPS, user.groups.values_list("pk", flat=True))
        return cls(GROUPS, frozenset(group_ids))

    @property
    def nobody(self):
        """True for a user who sees no source whatever its groups (anonymous, inactive)."""
        return self.scope == NOBODY

    @property
    def everything(self):
        """True for a user who sees every source (an active superuser)."""
        return self.scope == EVERYTHING

    def filter(self, rows, field="groups"):
        """The rows this reach covers: `rows` have a many-to-many `field` of groups."""
        if self.everything:
            return rows
        if self.nobody:
            return rows.none()
        return rows.filter(**{f"{field}__in": self.groups}).distinct()

    def sees(self, source_groups):
        """Whether this reach covers a source with these group ids (no query for a set)."""
        if self.everything:
            return True
        if self.nobody:
            return False
        return not set(source_groups).isdisjoint(self.groups)
