"""`manage.py directory sync`: re-read every directory user's groups from LDAP now, so that
someone removed from a group, refused by LDAP_REQUIRE_GROUP / LDAP_DENY_GROUP or deleted from
the directory loses its sources without signing in again (run it from cron or a timer)."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Re-read the groups of every directory (LDAP) user now."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("sync", help="re-read every LDAP user's groups; strip those the "
                                    "directory no longer has or refuses")

    def handle(self, *args, action, **options):
        if not settings.LDAP_SERVER_URI:
            raise CommandError("LDAP_SERVER_URI is not set: there is no directory to read")
        if settings.OIDC_ISSUER:
            raise CommandError("OIDC_ISSUER is set too: users signed in through the provider "
                               "are not in LDAP, and this would take their groups; sync "
                               "works with LDAP alone")
        from webapp.signin.ldap import DirectoryFailed, recheck

        users = get_user_model().objects.filter(password__startswith="!").order_by("username")
        counts = {"synced": 0, "gone": 0, "refused": 0}
        for user in users.iterator():
            try:
                outcome, names = recheck(user.username)
            except DirectoryFailed as exc:
                raise CommandError(f"the directory {settings.LDAP_SERVER_URI} failed: {exc}; "
                                   f"nothing more was changed") from exc
            counts[outcome] += 1
            detail = {"synced": "groups " + (", ".join(names) or "none"),
                      "gone": "not in the directory: every group removed",
                      "refused": "refused by LDAP_REQUIRE_GROUP/LDAP_DENY_GROUP: every group "
                                 "removed"}[outcome]
            self.stdout.write(f"{user.username}: {detail}")
        self.stdout.write(f"{counts['synced']} synced, {counts['gone']} gone, "
                          f"{counts['refused']} refused")
