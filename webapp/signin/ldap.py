"""LDAP sign-in (django-auth-ldap): the directory checks the password and gives the groups."""

import logging

import ldap
from django.dispatch import receiver
from django_auth_ldap.backend import LDAPBackend, ldap_error

from webapp.signin.groups import sync_groups
from webapp.streams import internals

log = logging.getLogger("tailboard.signin")


class DirectoryBackend(LDAPBackend):
    """django-auth-ldap's backend, with the user's groups synced at every sign-in."""

    request = None

    def authenticate(self, request, username=None, password=None, **kwargs):
        """Check the password against the directory (Django makes one backend per call)."""
        self.request = request
        return super().authenticate(request, username=username, password=password, **kwargs)

    def get_or_build_user(self, username, ldap_user):
        """Find or build the Django user, but never take over a local account.

        A Django user with a usable password is a local one (an administrator, the emergency
        superuser): a directory entry of the same name must not sign in as it.
        """
        user, built = super().get_or_build_user(username, ldap_user)
        if not built and user.has_usable_password():
            log.warning("LDAP sign-in as %s refused: a local account (with a Django password) "
                        "has that name", user.get_username())
            raise ldap_user.AuthenticationFailed("a local account has this name")
        return user, built

    def authenticate_ldap_user(self, ldap_user, password):
        """Authenticate, then make the user's groups follow the directory's (or refuse)."""
        user = super().authenticate_ldap_user(ldap_user, password)
        if user is None:
            return None
        try:
            names = ldap_user.group_names
        except ldap.LDAPError as exc:
            note_failure(self.request, "reading the user's groups", exc)
            return None
        sync_groups(user, names, "LDAP")
        return user


def recheck(username):
    """Re-read one directory user with the service account; make their groups follow.

    Return ("synced", group names), or ("gone", []) / ("refused", []) when the directory no
    longer has them or LDAP_REQUIRE_GROUP / LDAP_DENY_GROUP turn them away: they then lose
    every group. Raises DirectoryFailed when the directory did not answer.
    """
    from django.contrib.auth import get_user_model

    backend = DirectoryBackend()
    before = len(failures)
    ldap_user = internals.ldap_directory_user(backend, username)
    dn = ldap_user.dn
    if len(failures) > before:
        raise DirectoryFailed(failures[-1])
    user = get_user_model().objects.get(username=username)
    if dn is None:
        sync_groups(user, [], "LDAP (gone from the directory)")
        return "gone", []
    try:
        internals.ldap_check_requirements(ldap_user)
        names = ldap_user.group_names
    except ldap_user.AuthenticationFailed:
        sync_groups(user, [], "LDAP (refused by LDAP_REQUIRE_GROUP/LDAP_DENY_GROUP)")
        return "refused", []
    except ldap.LDAPError as exc:
        raise DirectoryFailed(describe(exc)) from exc
    return "synced", sync_groups(user, names, "LDAP")


class DirectoryFailed(Exception):
    """The directory did not answer (the message says how)."""


failures = []


def note_failure(request, context, exception):
    """Log a directory failure and mark the request so the login page can say what happened."""
    failures.append(describe(exception))
    del failures[:-10]
    log.error("LDAP directory %s failed %s: %s", uri(), context, describe(exception))
    if request is not None:
        request.directory_failure = describe(exception)


def describe(exception):
    """Return a short text for an LDAPError (python-ldap puts a dict in args[0])."""
    detail = exception.args[0] if exception.args else {}
    if isinstance(detail, dict):
        parts = [detail.get("desc", ""), detail.get("info", "")]
        return ": ".join(part for part in parts if part) or type(exception).__name__
    return str(exception) or type(exception).__name__


def uri():
    """Return the configured server URI (it carries no secret)."""
    from django.conf import settings

    return settings.AUTH_LDAP_SERVER_URI


@receiver(ldap_error)
def directory_failed(sender, context, user, request=None, exception=None, **kwargs):
    """django-auth-ldap caught an LDAPError: log it clearly and tell the login page."""
    note_failure(request, context.replace("_", " "), exception)
