"""With AUTH_PASSWORD=0, local passwords are off except for the emergency superusers."""

import logging

from django.conf import settings
from django.contrib.auth.backends import ModelBackend

log = logging.getLogger("tailboard.signin")


class EmergencyBackend(ModelBackend):
    """A local password signs in only an active superuser named in AUTH_EMERGENCY_SUPERUSERS."""

    def user_can_authenticate(self, user):
        return (super().user_can_authenticate(user) and user.is_superuser
                and user.get_username() in settings.AUTH_EMERGENCY_SUPERUSERS)

    def authenticate(self, request, username=None, password=None, **kwargs):
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None:
            log.warning("emergency sign-in with a local password by superuser %s "
                        "(AUTH_PASSWORD=0, AUTH_EMERGENCY_SUPERUSERS)", user.get_username())
        return user
