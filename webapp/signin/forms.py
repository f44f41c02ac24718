"""The login form: Django's, plus a clear message when the directory did not answer."""

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _


class LoginForm(AuthenticationForm):
    """Username and password, checked by the configured backends (directory, local)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "directory_failed": _("The company directory did not answer, so your password could "
                              "not be checked. Try again in a minute; if it persists, tell "
                              "your administrator."),
    }

    @property
    def directory_failed(self):
        """True when the password could not be checked because the directory failed."""
        return self.has_error(forms.forms.NON_FIELD_ERRORS, "directory_failed")

    def clean(self):
        """Authenticate; say so when the refusal came from an unreachable directory."""
        try:
            return super().clean()
        except forms.ValidationError as error:
            if getattr(self.request, "directory_failure", None) and self.user_cache is None:
                raise forms.ValidationError(self.error_messages["directory_failed"],
                                            code="directory_failed") from error
            raise
